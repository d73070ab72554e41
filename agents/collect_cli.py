"""``mtf-collect``: the dataset CLI of :mod:`mtf_gym.datasets.cli`, with the agent zoo plugged in.

``mtf_gym`` never imports ``agents``, so the base CLI cannot train the learned exploration centres of the
``progressive`` recipe by itself; this entry point hands it :func:`mtf_agents.progressive.registry_trainer`, so
``mtf-collect progressive --agent integrated_rl`` trains any offline agent of the registry (plug-ins included).
"""

from __future__ import annotations

from collections.abc import Sequence

from mtf_agents.progressive import registry_trainer

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from mtf_gym.datasets.cli import main as collect_main

    return collect_main(argv, make_trainer=registry_trainer)


if __name__ == "__main__":
    raise SystemExit(main())
