"""Agent zoo of mtf-gym: d3rlpy offline baselines, IntegratedRL, ES, SB3 online agents, DDPG-VA and plug-ins.

Import-light on purpose: nothing heavy (torch, d3rlpy, SB3) is imported until an agent is built. Entry points::

    from mtf_agents import build_agent, load_agent, get_registry

See ``docs/agents/README.md``.
"""

from typing import Any

# The folder is agents/, the import name mtf_agents (pyproject.toml maps it): "agents" is a name other distributions
# install, and importing the folder under it from the repository root would load a second copy of the package.
if __name__ != "mtf_agents":
    raise ImportError(f"the agent zoo's import name is mtf_agents, not {__name__!r}: import it as mtf_agents "
                      "(the project must be installed: pip install -e .)")

__all__ = ["build_agent", "get_registry", "load_agent"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports: ``import mtf_agents.integrated_rl`` should not pay for the registry, and vice versa.
    if name in __all__:
        from mtf_agents import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
