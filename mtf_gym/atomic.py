"""Atomic file output: every result, JSON, CSV, model, plot and dataset file appears whole or not at all.

The project's one implementation (datasets, the benchmark harness and every script write through it). A killed run
must never leave a half-written ``result.json`` that a rerun would trust, so every writer goes through
a temporary file in the *same directory* (``os.replace`` is atomic only within one file system) and renames it over
the target. Temporary names start with ``.tmp-`` so that they are easy to recognise and clean up.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TMP_PREFIX",
    "atomic_dir",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "clean_temporaries",
    "jsonable",
    "read_json",
    "replace_dir",
]

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed to ``target``, on error removed.

    For writers that insist on a file name of their own (``np.savez``, ``matplotlib.savefig``): the temporary name
    keeps ``target``'s suffix so format detection by extension still works.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.stem}-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes the file private; results and datasets are for sharing
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def replace_dir(source: str | Path, target: str | Path) -> None:
    """Move directory ``source`` to ``target`` (same file system), replacing whatever is there.

    A directory cannot be renamed over a non-empty one, so the old copy is moved aside first, put back if the move
    fails, and removed once the new one is in place: a reader sees the old directory or the new one, never neither
    for longer than between two renames, and never a mix.
    """
    source, target = Path(source), Path(target)
    if not target.exists():
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}old-{target.name}-", dir=target.parent))
    os.replace(target, old / target.name)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(old / target.name, target)  # put the previous directory back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; on success it replaces ``target`` (:func:`replace_dir`)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent))
    try:
        yield tmp
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays, tuples and paths made JSON-friendly; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def atomic_write_json(target: str | Path, data: Any) -> Path:
    """Write ``jsonable(data)`` as indented JSON (strict: NaN/inf are stored as null, so any parser reads it)."""
    return atomic_write_text(target, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any | None:
    """Parsed JSON, or None when the file is missing or unreadable (a rerun then redoes whatever wrote it)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def clean_temporaries(root: str | Path, keep: Callable[[Path], bool] | None = None) -> int:
    """Remove the ``.tmp-*`` leftovers of killed writers under ``root``; returns how many were removed."""
    removed = 0
    root = Path(root)
    if not root.exists():
        return 0
    for path in sorted(root.rglob(f"{TMP_PREFIX}*"), key=lambda p: len(p.parts), reverse=True):
        if keep is not None and keep(path):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
