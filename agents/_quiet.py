"""Keep the CLIs' output to their own words: d3rlpy 2.8 imports the old ``gym`` package, whose ``__init__`` prints a
multi-line "Gym has been unmaintained" banner to stderr (a ``print``, not a warning, so warning filters cannot
catch it).

:func:`import_gym_quietly` imports ``gym`` once with stderr captured and passes on everything except that banner.
It is called right before ``d3rlpy`` or Stable-Baselines3 (which imports ``gym`` too when it is installed) is
imported (``agents/d3rlpy_agents.py``, ``agents/integrated_rl/__init__.py``, ``agents/sb3_agents.py``) and nowhere
else: a program that imports ``gym`` itself, before any agent, still sees the banner.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator

__all__ = ["d3rlpy_logs_quiet", "import_gym_quietly"]

_BANNER_START = "Gym has been unmaintained"


def _without_banner(text: str) -> str:
    """``text`` minus the banner paragraph (its first line and the lines up to the next blank line)."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(_BANNER_START):
            skipping = True
        elif skipping and not line.strip():
            skipping = False
            continue
        if not skipping:
            kept.append(line)
    return "".join(kept)


def import_gym_quietly() -> None:
    """Import ``gym`` (if installed and not imported yet) without its deprecation banner."""
    if "gym" in sys.modules:
        return
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        try:
            import gym  # noqa: F401
        except ImportError:
            pass
    rest = _without_banner(captured.getvalue())
    if rest:
        sys.stderr.write(rest)


@contextlib.contextmanager
def d3rlpy_logs_quiet() -> Iterator[None]:
    """Inside the block, d3rlpy's per-epoch INFO logs (structlog) are not printed; warnings still are. The previous
    structlog configuration is restored afterwards, so a caller's own logging is left as it was."""
    import structlog

    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)
