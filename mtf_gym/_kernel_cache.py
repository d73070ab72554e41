"""Drop numba's on-disk kernel cache when any kernel source changed (numba only watches a kernel's own file).

numba invalidates a cached kernel when *its* file changes, not when a kernel it calls from another module does: after
an edit of ``fusion.py`` or ``rng.py`` the simulator's cached kernels would still run the old code. This module
stamps the cache with a hash of every kernel source and clears it when the hash differs. It matters for editable
installs (an installed wheel's sources do not change in place, and pip rewrites every file on upgrade).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

KERNEL_SOURCES = (
    "rng.py", "fusion.py", "simulator.py", "sim/layout.py", "sim/funnel.py", "sim/users.py", "sim/retrieval.py",
    "sim/ranker.py", "sim/response.py", "sim/transition.py", "sim/kernels.py", "sim/diagnostics.py",
)
# Folders whose __pycache__ holds compiled kernels.
_CACHE_DIRS = ("", "sim")
_STAMP = "mtf_gym_kernels.sha256"


def invalidate_stale_kernel_cache(package_dir: Path | None = None) -> bool:
    """Delete ``__pycache__/*.nbi|*.nbc`` of the package if the kernel sources changed; return True if it did."""
    package_dir = package_dir or Path(__file__).resolve().parent
    cache_dir = package_dir / "__pycache__"
    cache_dirs = [package_dir / sub / "__pycache__" for sub in _CACHE_DIRS]
    digest = hashlib.sha256()
    try:
        for name in KERNEL_SOURCES:
            digest.update(name.encode() + b"\0" + (package_dir / name).read_bytes())
        stamp = cache_dir / _STAMP
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return False
        if not cache_dir.is_dir():
            cache_dir.mkdir()
        for folder in cache_dirs:
            if folder.is_dir():
                for path in folder.iterdir():
                    if path.suffix in (".nbi", ".nbc"):
                        path.unlink(missing_ok=True)
        tmp = cache_dir / f".{_STAMP}.{os.getpid()}.tmp"
        tmp.write_text(digest.hexdigest())
        os.replace(tmp, stamp)  # atomic: concurrent imports see the old stamp or the new one
    except OSError:
        return False  # read-only install: numba caches elsewhere (or not at all); nothing here can go stale
    return True


invalidate_stale_kernel_cache()
