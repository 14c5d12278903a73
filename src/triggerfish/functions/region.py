"""A large request's way to a worker process without the pipe: one memfd per worker, shared.

The engine writes a big request body (a packed Kafka batch of ~1 MB) into the worker's memfd through
its own shared mapping of it, piece by piece (``functions.batch.pack_parts``: no join into one block
first), and sends only the frame's header down the pipe; the worker maps the same file and reads the
body in place. That saves the pipe's two kernel copies of the body, the worker's read of it into a new
``bytes`` and the wake-ups of a body larger than the pipe; writing through the mapping saves the join's
copy, its 1 MB allocation and ``pwrite``'s page-cache walk (a plain memcpy into pages mapped once, with
the GIL held: no hand-off of it either). The file is created empty with the worker (no memory until a
big request comes; the pages are shared, so they count in the RSS of both processes but exist once),
only grows (rounded up to ``_GROW`` so the worker re-maps rarely), and is freed when both processes are gone:
nothing is left behind after a SIGKILL. The engine writes only while the worker is idle (a timed-out or
crashed worker is killed, never reused), so the worker never sees a half-written body.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
from collections import deque
from collections.abc import Sequence

#: Bodies at least this long go through the region; smaller ones (every BatchSize 1 event) take the pipe.
REGION_MIN = 64 << 10
_GROW = 1 << 20
# Pieces shorter than this on average are joined first: one join in C costs less than a write call each
# (~80 ns); longer ones (1 KB values) are written one by one, which saves copying them twice.
_JOIN_BELOW = 768
# glibc's mallopt parameters (malloc.h) and the values the worker's heap had when every batch was read into a
# fresh 1.4 MB bytes: freeing that mmapped block raised both thresholds (glibc's dynamic adjustment).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_THRESHOLD, _MMAP_THRESHOLD = 8 << 20, 4 << 20


def _keep_freed_heap() -> None:
    """Stop glibc from giving the heap's top back after every batch.

    A batch read in place allocates no big block any more, so glibc's trim threshold stayed at 128 KB and
    the ~1.4 MB of base64 strings freed after each batch went back to the kernel, to be faulted in again
    by the next one (~300 page faults a batch, ~0.4 us a record).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def new_region() -> int | None:
    """A memfd for one worker's requests (inherited through ``pass_fds``), None where there are none."""
    if not hasattr(os, "memfd_create"):  # not Linux: every body takes the pipe
        return None
    try:
        fd = os.memfd_create("triggerfish-request", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return None
    try:
        # The engine writes through a mapping of it: a handler shrinking the file (its descriptor is in the
        # worker) would make those writes fault (SIGBUS) in the engine. Sealed, such a truncate fails instead.
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    except OSError:
        os.close(fd)
        return None
    return fd


class RegionWriter:
    """The engine's side: writes a body at offset 0 of the worker's memfd, through its own shared mapping."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._size = 0
        self._map: mmap.mmap | None = None

    def write(self, parts: Sequence[bytes], size: int) -> None:
        """Write the body made of ``parts`` (``size`` bytes in all) at offset 0."""
        target = self._map if self._map is not None and size <= len(self._map) else self._grow(size)
        target.seek(0)
        if size < len(parts) * _JOIN_BELOW:
            target.write(b"".join(parts))
        else:
            deque(map(target.write, parts), 0)  # a write call per piece, from C

    def _grow(self, size: int) -> mmap.mmap:
        # Grown once to a round size: the worker re-maps only when the file grew.
        if size > self._size:
            self._size = -(-size // _GROW) * _GROW
            os.ftruncate(self.fd, self._size)
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self.fd, self._size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        try:
            os.close(self.fd)
        except OSError:
            pass


class RegionReader:
    """The worker's side: the first ``length`` bytes of the memfd, read in place."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_inheritable(fd, False)  # not into processes the handler starts
        self._map: mmap.mmap | None = None
        _keep_freed_heap()

    def view(self, length: int) -> memoryview:
        if self._map is None or len(self._map) < length:
            # The old mapping goes when the last view of it does (a view of it may still be alive).
            self._map = mmap.mmap(self.fd, os.fstat(self.fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ)
        return memoryview(self._map)[:length]
