"""A large request's way to a worker process without the pipe: one memfd per worker, shared.

The engine writes a big request body (a packed Kafka batch of ~1 MB) into the worker's memfd with one
``pwrite`` and sends only the frame's header down the pipe; the worker maps the same file and reads
the body in place. That saves the pipe's two kernel copies of the body, the worker's read of it into a
new ``bytes`` and the wake-ups of a body larger than the pipe. The file is created empty with the
worker (no memory until a big request comes; the engine never maps it, so its RSS does not grow), only
grows (rounded up to ``_GROW`` so the worker re-maps rarely), and is freed when both processes are gone:
nothing is left behind after a SIGKILL. The engine writes only while the worker is idle (a timed-out or
crashed worker is killed, never reused), so the worker never sees a half-written body.
"""

from __future__ import annotations

import ctypes
import mmap
import os

#: Bodies at least this long go through the region; smaller ones (every BatchSize 1 event) take the pipe.
REGION_MIN = 64 << 10
_GROW = 1 << 20
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
        return os.memfd_create("triggerfish-request", os.MFD_CLOEXEC)
    except OSError:
        return None


class RegionWriter:
    """The engine's side: writes a body at offset 0 of the worker's memfd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._size = 0

    def write(self, body: bytes) -> None:
        if len(body) > self._size:
            # Grown once to a round size: the worker re-maps only when the file grew.
            self._size = -(-len(body) // _GROW) * _GROW
            os.ftruncate(self.fd, self._size)
        view = memoryview(body)
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], done)

    def close(self) -> None:
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
