"""A fast local copy of :class:`TransitionData`: its arrays as one uncompressed ``.npz`` plus a JSON datasheet.

Minari's HDF5 layout (one group per session, :mod:`mtf_gym.datasets.storage`) is the published format; writing it
takes ~30 s and reading it ~10 s per 1000 sessions, which would dominate a benchmark grid that reads two datasets per
job. A working copy holds the same arrays and metadata and reads back in well under a second. It is not a
publication format: it carries no env spec and Minari cannot read it. Layout of a working-copy directory::

    data.npz          every array of TransitionData (ARRAY_FIELDS), uncompressed
    datasheet.json    TransitionData.metadata

Both files are written atomically (temporary file in the same directory, then ``os.replace``), and
:func:`load_working_copy` checks the content hash against the one the writer returned when it is given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from mtf_gym.atomic import atomic_path, atomic_write_text

from .transitions import ARRAY_FIELDS, TransitionData

__all__ = ["DATASHEET_FILE", "DATA_FILE", "load_working_copy", "save_working_copy"]

DATA_FILE = "data.npz"
DATASHEET_FILE = "datasheet.json"
_OPTIONAL_FIELDS = ("reward_components",)


def save_working_copy(data: TransitionData, directory: str | os.PathLike[str]) -> str:
    """Write ``data`` into ``directory`` (created if missing); returns its content hash (SHA-256 hex)."""
    if not isinstance(data, TransitionData):
        raise TypeError(f"data must be a TransitionData, got {type(data).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / DATA_FILE) as tmp:
        np.savez(tmp, **data.arrays())
    atomic_write_text(directory / DATASHEET_FILE, json.dumps(data.metadata, indent=1, sort_keys=True, default=str))
    return data.content_hash()


def load_working_copy(directory: str | os.PathLike[str], content_sha256: str | None = None) -> TransitionData:
    """Read a working copy back; with ``content_sha256``, a copy whose arrays differ from it is an error.

    Raises:
        FileNotFoundError: no ``data.npz`` in ``directory``.
        ValueError: the content hash differs from ``content_sha256`` (a damaged or replaced file).
    """
    directory = Path(directory)
    with np.load(directory / DATA_FILE) as arrays:
        # Copies written before per-group rewards existed have no reward_components: they load with one component.
        missing = [key for key in ARRAY_FIELDS if key not in arrays.files and key not in _OPTIONAL_FIELDS]
        if missing:
            raise ValueError(f"{directory / DATA_FILE}: not a TransitionData working copy (missing {missing})")
        fields = {key: arrays[key] for key in ARRAY_FIELDS if key in arrays.files}
    sheet = directory / DATASHEET_FILE
    metadata = json.loads(sheet.read_text()) if sheet.is_file() else {}
    data = TransitionData(**fields, metadata=metadata)
    if content_sha256 is not None and data.content_hash() != content_sha256:
        raise ValueError(f"{directory / DATA_FILE} does not match the content hash {content_sha256[:12]}... it was "
                         "written with; the file is damaged or was replaced")
    return data
