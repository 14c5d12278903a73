"""A large request's way to a worker process without the pipe: one memfd per worker, shared.

The engine writes a big request body (a packed Kafka batch of ~1 MB) into the worker's memfd with
``pwritev`` of its pieces (no join of them into one block first) and sends only the frame's header down the pipe; the worker maps the same file and reads
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
from collections.abc import Sequence

#: Bodies at least this long go through the region; smaller ones (every BatchSize 1 event) take the pipe.
REGION_MIN = 64 << 10
_GROW = 1 << 20
#: The most buffers one writev/pwritev takes (Linux's UIO_MAXIOV).
IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
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

    def write(self, parts: Sequence[bytes], size: int) -> None:
        """Write the body made of ``parts`` (``size`` bytes in all) at offset 0."""
        if size > self._size:
            # Grown once to a round size: the worker re-maps only when the file grew.
            self._size = -(-size // _GROW) * _GROW
            os.ftruncate(self.fd, self._size)
        done = 0
        for i in range(0, len(parts), IOV_MAX):
            chunk: Sequence[bytes | memoryview] = parts[i:i + IOV_MAX] if len(parts) > IOV_MAX else parts
            left = sum(map(len, chunk)) if len(parts) > IOV_MAX else size
            while left:
                written = os.pwritev(self.fd, chunk, done)
                done += written
                left -= written
                if left:  # a short write (a regular file does not, but may)
                    chunk = unwritten(chunk, written)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def unwritten(buffers: Sequence[bytes | memoryview], written: int) -> list[bytes | memoryview]:
    """What is left of ``buffers`` after a (p)writev wrote ``written`` bytes of them."""
    if written >= sum(map(len, buffers)):  # all of it, as usual: no walk in Python
        return []
    i = 0
    while i < len(buffers) and written >= len(buffers[i]):
        written -= len(buffers[i])
        i += 1
    rest = list(buffers[i:])
    if rest and written:
        rest[0] = memoryview(rest[0])[written:]
    return rest


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
