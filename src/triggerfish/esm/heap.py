"""Give the heap pages freed while a mapping was busy back to the operating system when it goes idle.

librdkafka and the setup probes (an AdminClient per mapping) allocate from glibc's per-thread arenas; what
they free stays mapped in the arena, so an idle engine of 50 mappings kept several MB it no longer used.
``malloc_trim`` returns every whole free page of every arena. It is called when a mapping's poll loop goes
quiet, at most once a second for the whole process; elsewhere than glibc it does nothing.

    release_free_memory()    -> True when it trimmed now
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from typing import Any

_MIN_INTERVAL_S = 1.0
_lock = threading.Lock()
_last = 0.0


def _trim_function() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_malloc_trim = _trim_function()


def release_free_memory() -> bool:
    """Trim the heap (glibc only); skipped when another call trimmed less than a second ago."""
    global _last
    if _malloc_trim is None:
        return False
    with _lock:
        now = time.monotonic()
        if now - _last < _MIN_INTERVAL_S:
            return False
        _last = now
    _malloc_trim(0)
    return True
