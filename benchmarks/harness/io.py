"""Transitional: the harness's atomic writers now live in :mod:`mtf_gym.atomic` (removed once every import moved)."""

from mtf_gym.atomic import (  # noqa: F401
    TMP_PREFIX,
    atomic_dir,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    clean_temporaries,
    jsonable,
    read_json,
)
