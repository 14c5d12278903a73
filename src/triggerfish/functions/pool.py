"""Worker processes of one function: ``_Worker`` (one process, its pipe and its socket) and ``WorkerPool``.

A worker runs :mod:`triggerfish.functions.worker` in its own session and exchanges length-prefixed
frames (:mod:`.frames`): requests over a pipe, replies over a Unix socket. ``_Worker.call`` raises
``WorkerTimeout`` past the deadline and ``WorkerCrashed`` when the process dies; the runtime turns both
into Lambda's error payloads.

The replies' socket is for its timeout: with ``SO_RCVTIMEO`` set to what is left of the deadline, ``call``
is one write and one blocking read, and the kernel ends a read that waits past the deadline. Reading a
pipe, each invocation also took a ``poll()`` first (a syscall more, and one more release and take-back
of the GIL, often a context switch, among the engine's threads). Requests stay on a pipe: a socket pair
used both ways wakes the side blocked in its read each time the other consumes what it was sent (one
wait queue for "readable" and "writable"), a context switch more per invocation on each side.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from triggerfish.errors import FunctionThrottled
from triggerfish.functions.batch import Parts
from triggerfish.functions.capture import LOG_LIMIT
from triggerfish.functions.config import FunctionConfig, worker_environment
from triggerfish.functions.frames import PREFIX_SIZE, decode_header, encode_head, split_lengths
from triggerfish.functions.memory import WorkerCgroup, cgroup_parent
from triggerfish.functions.readiness import InitReport
from triggerfish.functions.region import REGION_MIN, RegionWriter, new_region


class WorkerTimeout(Exception):
    """The invocation passed its deadline."""


#: The request pipe's and the reply socket's buffers: a 1 MB batch in one write and wake-up, not 16 of
#: a default 64 KB pipe.
_BUFFER = 1 << 20
#: How far a socket timeout may be off the deadline before it is set again (one setsockopt): the deadline
#: of each invocation moves with it, but by microseconds from one to the next with the same Timeout.
_TIMEOUT_SLACK = 0.001
# A reply's header carries at most LOG_LIMIT characters of output, JSON-escaped (up to 12 bytes each):
# anything longer did not come from the worker's own framing.
_MAX_HEAD = 12 * LOG_LIMIT + (64 << 10)


#: The most buffers one writev takes (Linux's UIO_MAXIOV).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


class WorkerCrashed(Exception):
    """The worker process closed its reply socket (it died)."""


class _Frame:
    """One reply frame as its bytes arrive from the worker's pipe (the framing is :mod:`.frames`)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need = PREFIX_SIZE
        self._head_len = -1

    @property
    def missing(self) -> int:
        return self._need - len(self._buf)

    @property
    def complete(self) -> bool:
        return self._head_len >= 0 and len(self._buf) >= self._need

    def add(self, chunk: bytes) -> None:
        if not chunk:
            raise WorkerCrashed()  # the worker closed its reply socket: it died
        self._buf += chunk
        if self._head_len < 0 and len(self._buf) >= PREFIX_SIZE:
            self._head_len, body_len = split_lengths(bytes(self._buf[:PREFIX_SIZE]))
            if self._head_len > _MAX_HEAD:
                raise WorkerCrashed()
            self._need = PREFIX_SIZE + self._head_len + body_len

    def head(self) -> dict[str, Any]:
        return decode_header(bytes(self._buf[PREFIX_SIZE: PREFIX_SIZE + self._head_len]))

    def body(self) -> bytes:
        return bytes(self._buf[PREFIX_SIZE + self._head_len: self._need])


def _unwritten(buffers: Sequence[bytes | memoryview], written: int) -> Sequence[bytes | memoryview]:
    """What is left of ``buffers`` after a writev wrote ``written`` bytes of them."""
    if written >= sum(map(len, buffers)):  # all of it, as usual: no walk in Python
        return ()
    i = 0
    while written >= len(buffers[i]):
        written -= len(buffers[i])
        i += 1
    rest = list(buffers[i:])
    rest[0] = memoryview(rest[0])[written:]
    return rest


def _whole_frame(chunk: bytes) -> tuple[dict[str, Any], bytes] | None:
    """The reply's head and body when ``chunk`` (the first read) is exactly one frame, as a small reply is:
    parsed without ``_Frame``'s copies (a few microseconds of every small invoke)."""
    if len(chunk) < PREFIX_SIZE:
        return None
    head_len, body_len = split_lengths(chunk[:PREFIX_SIZE])
    if len(chunk) != PREFIX_SIZE + head_len + body_len:
        return None
    return decode_header(chunk[PREFIX_SIZE: PREFIX_SIZE + head_len]), chunk[PREFIX_SIZE + head_len:]


class _Worker:
    """One worker process, its request pipe and its reply socket."""

    def __init__(self, fn: FunctionConfig, region: str | None) -> None:
        #: Peak RSS in MB as of the last reply (the REPORT line of an invocation that kills the worker).
        self.max_rss_mb: int | None = None
        #: How loading the handler went: the worker's first frame, read by ``wait_init`` (or the first ``call``).
        self.init: InitReport | None = None
        parent = cgroup_parent()
        self.cgroup: WorkerCgroup | None = None
        if parent is not None:
            try:
                self.cgroup = WorkerCgroup(parent, fn.memory_size)
            except OSError:  # the cgroup went away or read-only since the probe: RLIMIT_DATA then
                pass
        req_r, self._req_w = os.pipe()
        os.set_blocking(self._req_w, False)
        try:
            fcntl.fcntl(self._req_w, fcntl.F_SETPIPE_SZ, _BUFFER)
        except (OSError, AttributeError):  # not Linux, or above /proc/sys/fs/pipe-max-size
            pass
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:  # the sender's buffer is what bounds a Unix socket
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
        except OSError:  # above net.core.wmem_max: the kernel's cap then
            pass
        self._rep_r = self._sock.fileno()
        #: The socket's SO_RCVTIMEO in seconds (-1: not set yet, the kernel's "never").
        self._timeout = -1.0
        #: The deadline of the invocation in progress (``time.time()`` seconds).
        self._deadline = 0.0
        region_fd = new_region()
        self._region = RegionWriter(region_fd) if region_fd is not None else None
        spec = {
            "function_name": fn.function_name, "handler": fn.handler, "code_uri": str(fn.code_uri or os.getcwd()),
            "memory_size": fn.memory_size, "region": region or os.environ.get("AWS_REGION", "us-east-1"),
            "log_stream_name": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            "request_fd": req_r, "reply_fd": theirs.fileno(),
            "cgroup": str(self.cgroup.path) if self.cgroup else None, "region_fd": region_fd,
        }
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "triggerfish.functions.worker", json.dumps(spec)],
                pass_fds=(req_r, theirs.fileno()) if region_fd is None else (req_r, theirs.fileno(), region_fd),
                env=worker_environment(fn, region), stdin=subprocess.DEVNULL,
                # own session: a Ctrl-C meant for the engine must not kill handlers mid-batch
                start_new_session=True,
            )
        except BaseException:
            self._sock.close()
            os.close(self._req_w)
            raise
        finally:
            theirs.close()
            os.close(req_r)

    def wait_init(self, deadline: float) -> InitReport:
        """Wait for the worker's first frame, which says whether its handler loaded."""
        if self.init is None:
            self._deadline = deadline
            frame = _Frame()
            while not frame.complete:
                frame.add(self._recv(frame.missing))  # exactly the frame: nothing follows it unasked
            self.init = InitReport.from_frame(frame.head())
        return self.init

    def call(self, request_id: str, payload: bytes | Sequence[bytes], deadline: float,
             kind: str = "json") -> tuple[dict[str, Any], bytes]:
        """One invocation: ``payload`` is the request body, whole or as the pieces it is made of (a packed
        batch: they are written where they go without being joined first)."""
        if self.init is None:
            self.wait_init(deadline)
        self._deadline = deadline
        parts: Sequence[bytes] = (payload,) if isinstance(payload, bytes) else payload
        size = len(payload) if isinstance(payload, bytes) else \
            payload.nbytes if isinstance(payload, Parts) else sum(map(len, parts))
        header: dict[str, Any] = {"id": request_id, "deadline_ms": int(deadline * 1000), "kind": kind}
        if self._region is not None and size >= REGION_MIN:
            # A big body goes through the shared region (one copy); the pipe carries only the head.
            self._region.write(parts, size)
            header["region"] = size
            parts, size = (), 0
        elif len(parts) >= _IOV_MAX:  # one writev takes the head and at most IOV_MAX - 1 pieces
            parts = (b"".join(parts),)
        # The frame's head and the payload's pieces as the buffers of one writev: never copied into a frame.
        self._send([encode_head(header, size), *parts])
        chunk = self._recv(1 << 16)
        whole = _whole_frame(chunk)
        if whole is None:
            frame = _Frame()
            frame.add(chunk)
            while not frame.complete:
                frame.add(self._recv(max(frame.missing, 1 << 16)))
            whole = frame.head(), frame.body()
        self.max_rss_mb = whole[0].get("max_rss_mb")
        return whole

    def _remaining(self) -> float:
        """Seconds left until the deadline; ``WorkerTimeout`` once it has passed."""
        remaining = self._deadline - time.time()
        if remaining <= 0:
            raise WorkerTimeout()
        return remaining

    def _recv(self, size: int) -> bytes:
        """What the worker sent, up to ``size`` bytes, waiting until the deadline at most (b"": it died)."""
        while True:
            remaining = self._remaining()
            if abs(remaining - self._timeout) > _TIMEOUT_SLACK:
                # timeval; never 0, which is the kernel's "no timeout"
                timeval = struct.pack("@ll", int(remaining), max(1, int(remaining % 1 * 1_000_000)))
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
                self._timeout = remaining
            try:
                return os.read(self._rep_r, size)
            except BlockingIOError:  # SO_RCVTIMEO passed: the deadline, unless the timeout was set early
                continue

    def _send(self, out: Sequence[bytes | memoryview]) -> None:
        """Write ``out`` whole, waiting until the deadline at most (nothing more once the worker is gone: its
        closed socket then says so on the read)."""
        while True:
            try:
                written = os.writev(self._req_w, out)
            except BlockingIOError:  # the pipe is full: the worker has yet to read what is in it
                written = 0
            except BrokenPipeError:
                return
            out = _unwritten(out, written)
            if not out:  # at once, as a request that fits in the pipe always is
                return
            select.select([], [self._req_w], [], self._remaining())

    def returncode(self) -> int | None:
        try:
            return self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def out_of_memory(self) -> bool:
        """Whether the kernel killed the worker for passing MemorySize (cgroup v2 only)."""
        return self.cgroup is not None and self.cgroup.oom_killed()

    def peak_mb(self) -> int | None:
        """The dead worker's peak: its cgroup's, else what it last reported."""
        peak = self.cgroup.peak_mb() if self.cgroup is not None else None
        return peak or self.max_rss_mb

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.close()

    def close(self) -> None:
        self._sock.close()
        try:
            os.close(self._req_w)
        except OSError:
            pass
        if self._region is not None:
            self._region.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.cgroup is not None:
            self.cgroup.remove()


class WorkerPool:
    """Worker processes of one function: at most ``size`` busy at once, idle ones are reused."""

    def __init__(self, fn: FunctionConfig, size: int, region: str | None) -> None:
        self.fn = fn
        self.size = size
        self.region = region
        # One token per slot: a SimpleQueue (C) instead of a BoundedSemaphore (Python, a Condition inside),
        # taken and given back once per invocation.
        self._slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(max(size, 1)):
            self._slots.put(None)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self.closed = False

    def acquire(self, wait: bool = True) -> _Worker:
        """A worker for one invocation; with ``wait=False`` raise FunctionThrottled instead of queueing."""
        try:
            self._slots.get(block=wait)
        except queue.Empty:
            raise FunctionThrottled(self.fn.function_name, self.size) from None
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            return _Worker(self.fn, self.region)
        except BaseException:
            self._slots.put(None)
            raise

    def release(self, worker: _Worker | None) -> None:
        if worker is not None:
            with self._lock:
                keep = not self.closed
                if keep:
                    self._idle.append(worker)
            if not keep:
                worker.close()
        self._slots.put(None)

    def warm(self, count: int = 1) -> None:
        workers = [self.acquire() for _ in range(max(1, min(count, self.size)))]
        for worker in workers:
            self.release(worker)

    def wait_init(self, timeout: float) -> InitReport:
        """How loading the handler went in one worker (a warm one if there is one), waiting up to ``timeout`` s."""
        worker = self.acquire()
        try:
            report = worker.wait_init(time.time() + timeout)
        except WorkerTimeout:
            worker.kill()
            self.release(None)
            return InitReport(error=f"Runtime.InitError: the handler did not load within {timeout:g}s")
        except (WorkerCrashed, OSError):
            code = worker.returncode()
            worker.kill()
            self.release(None)
            return InitReport(error=f"Runtime.ExitError: the worker exited with code {code} while loading the handler")
        self.release(worker)
        return report

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        for w in idle:
            w.close()
