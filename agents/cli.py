"""``mtf-agents``: inspect the agent registry.

    mtf-agents list          every agent with its kind and source (builtin / plug-in distribution), then failed plug-ins
    mtf-agents show NAME     one agent's config fields, types and defaults
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
import warnings
from collections.abc import Sequence

from mtf_agents.registry import ENTRY_POINT_GROUP, get_registry

__all__ = ["main"]


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _list() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # failures are printed below, in full
        registry = get_registry()
    rows = [("NAME", "KIND", "SOURCE", "DESCRIPTION")]
    rows += [(spec.name, spec.kind, spec.source, spec.summary) for spec in registry]
    print(_table(rows))
    if registry.failed_plugins:
        print(f"\nfailed plug-ins (entry-point group {ENTRY_POINT_GROUP!r}, skipped):")
        for failed in registry.failed_plugins:
            print(f"  {failed.entry_point}  [{failed.distribution}]\n    {failed.error}")
    return 0


def _show(name: str) -> int:
    spec = get_registry().get(name)
    config_class = spec.config_class
    hints = typing.get_type_hints(config_class)
    print(f"{spec.name} ({spec.kind}, {spec.source}): {spec.summary}")
    print(f"config: {config_class.__module__}.{config_class.__qualname__}")
    rows = [("FIELD", "TYPE", "DEFAULT")]
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        hint = hints[f.name]
        type_name = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
        rows.append((f.name, type_name, repr(default)))
    print(_table(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mtf-agents", description="Inspect the mtf-gym agent registry.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list agents with kind and source, and failed plug-ins")
    show = commands.add_parser("show", help="show an agent's config fields and defaults")
    show.add_argument("name")
    args = parser.parse_args(argv)
    try:
        return _list() if args.command == "list" else _show(args.name)
    except (ValueError, ImportError) as exc:
        print(f"mtf-agents: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
