"""Agent zoo of mtf-gym: d3rlpy offline baselines, IntegratedRL, ES, SB3 online agents, DDPG-VA and plug-ins.

Import-light on purpose: nothing heavy (torch, d3rlpy, SB3) is imported until an agent is built. Entry points::

    from agents import build_agent, load_agent, get_registry

See ``docs/agents/README.md``.
"""

from typing import Any

__all__ = ["build_agent", "get_registry", "load_agent"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports: ``import agents.integrated_rl`` should not pay for the registry, and vice versa.
    if name in __all__:
        from agents import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
