"""Enforcing a function's ``MemorySize`` on its worker processes, and Lambda's out-of-memory error.

Two mechanisms, chosen once per engine process by ``cgroup_parent``:

- **cgroup v2**, when the engine's own cgroup has the memory controller and lets it be delegated to
  children (``memory`` in ``cgroup.subtree_control``, or writable there). Each worker gets a child
  cgroup with ``memory.max`` = MemorySize MB and no swap; it joins it before importing the handler, and
  past the limit the kernel's OOM killer sends SIGKILL, as in Lambda. The worker's resident memory
  counts, interpreter included, as Lambda counts it.
- **RLIMIT_DATA** otherwise (no cgroup v2, the memory controller held by v1, or not writable): set in
  the worker before importing the handler to the interpreter's own data size measured at that moment
  plus MemorySize MB. It counts what the process *reserves* as private writable memory (heap,
  anonymous mmaps, each thread's stack at its full reserved size), not what is resident; an allocation
  past it fails with ``MemoryError`` instead of a kill. The worker reports that as Lambda's OOM and exits.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import resource
import uuid
from pathlib import Path

_MB = 1 << 20


def oom_payload(request_id: str) -> bytes:
    """Lambda's error payload for a function that ran out of memory."""
    return json.dumps({"errorType": "Runtime.OutOfMemory",
                       "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"}).encode()


# -- cgroup v2 (engine side) ------------------------------------------------------------------------


def _own_cgroup_dir(mountinfo: Path, proc_cgroup: Path) -> Path | None:
    """The directory of this process's cgroup v2, or None without a cgroup v2 mount."""
    mount = None
    for line in mountinfo.read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            mount = left.split(" ")[4]
            break
    if mount is None:
        return None
    for line in proc_cgroup.read_text().splitlines():
        if line.startswith("0::"):
            return Path(mount) / line[3:].lstrip("/")
    return None


def find_cgroup_parent(mountinfo: Path = Path("/proc/self/mountinfo"),
                       proc_cgroup: Path = Path("/proc/self/cgroup")) -> Path | None:
    """The cgroup under which workers get their own memory-limited child, or None to fall back to RLIMIT."""
    try:
        base = _own_cgroup_dir(mountinfo, proc_cgroup)
        if base is None or "memory" not in (base / "cgroup.controllers").read_text().split():
            return None
        if "memory" not in (base / "cgroup.subtree_control").read_text().split():
            _delegate_memory(base)
        probe = base / f"triggerfish-probe-{os.getpid()}"
        probe.mkdir()
        try:
            if not (probe / "memory.max").exists():
                return None
        finally:
            probe.rmdir()
    except OSError:
        return None
    return base


def _delegate_memory(base: Path) -> None:
    """Turn the memory controller on for ``base``'s children (raises OSError when it cannot be)."""
    subtree = base / "cgroup.subtree_control"
    try:
        subtree.write_text("+memory")
    except OSError as exc:
        # EBUSY: a cgroup other than the root may not both hold processes and hand controllers down.
        # When the engine is alone in its cgroup (a container's init, a systemd unit with Delegate=yes)
        # it steps into a leaf of its own first, as systemd asks of delegated units; never others.
        if exc.errno != errno.EBUSY or (base / "cgroup.procs").read_text().split() != [str(os.getpid())]:
            raise
        leaf = base / "triggerfish-engine"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        subtree.write_text("+memory")


@functools.cache
def cgroup_parent() -> Path | None:
    """``find_cgroup_parent`` for this process, looked up once."""
    return find_cgroup_parent()


class WorkerCgroup:
    """One worker's child cgroup: ``memory.max`` = MemorySize, no swap, removed with the worker."""

    def __init__(self, parent: Path, memory_mb: int) -> None:
        self.path = parent / f"triggerfish-worker-{uuid.uuid4().hex[:12]}"
        self.path.mkdir()
        (self.path / "memory.max").write_text(str(memory_mb * _MB))
        try:
            (self.path / "memory.swap.max").write_text("0")
        except OSError:  # no swap accounting: nothing to turn off
            pass

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this cgroup for exceeding ``memory.max``."""
        try:
            for line in (self.path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value) > 0
        except (OSError, ValueError):
            pass
        return False

    def peak_mb(self) -> int | None:
        try:
            return int((self.path / "memory.peak").read_text()) // _MB
        except (OSError, ValueError):  # memory.peak needs Linux 5.19
            return None

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


# -- in the worker ----------------------------------------------------------------------------------


def join_cgroup(path: str) -> None:
    """Move this process into its cgroup (before the handler is imported, so all of it is charged)."""
    Path(path, "cgroup.procs").write_text(str(os.getpid()))


def _data_size() -> int:
    """This process's private writable memory (VmData) in bytes: what RLIMIT_DATA is compared with."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def limit_data(memory_mb: int) -> int:
    """Cap this process's data at its current size plus ``memory_mb``; return the limit in bytes."""
    limit = _data_size() + memory_mb * _MB
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY and hard < limit:
        limit = hard
    # Hard limit too: a handler must not raise its own allowance.
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    return limit


class PeakRss:
    """This process's peak resident memory in MB: the REPORT line's ``Max Memory Used``.

    ``ru_maxrss`` is cheap, but Linux carries the spawning process's peak over ``exec``, so a worker
    starts at the engine's peak. Until the worker's own peak passes that, ``VmHWM`` is read instead
    (``exec`` resets it), but only when a page fault happened since the last read: without one no page
    came in, so the peak cannot have moved (reading ``/proc/self/status`` costs ~8 us an invocation).
    """

    def __init__(self) -> None:
        self._inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            self._status = os.open("/proc/self/status", os.O_RDONLY)
        except OSError:
            self._status = -1
        self._exact = self._status < 0
        self._faults = -1
        self._kb = 0

    def mb(self) -> int:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # Past the inherited peak, ru_maxrss is this process's own from now on.
        if self._exact or usage.ru_maxrss > self._inherited:
            self._exact = True
            return usage.ru_maxrss // 1024
        faults = usage.ru_minflt + usage.ru_majflt
        if faults != self._faults:
            try:
                data = os.pread(self._status, 4096, 0)
                at = data.find(b"VmHWM:")
                self._kb = int(data[at + 6: data.index(b"kB", at)])
            except (OSError, ValueError):
                self._exact = True
                return self.mb()
            after = resource.getrusage(resource.RUSAGE_SELF)  # the read's own faults are not the handler's
            self._faults = after.ru_minflt + after.ru_majflt
        return self._kb // 1024
