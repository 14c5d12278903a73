"""One invocation's outcome: ``InvokeResult``, Lambda's error payloads and log lines, and the invoke errors.

Shared by the worker-process path (:mod:`.runtime`, :mod:`.pool`) and HTTP functions (:mod:`.http`).
"""

from __future__ import annotations

import itertools
import json
import math
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from triggerfish.functions.config import FunctionConfig
from triggerfish.json_input import loads

_LOG_TAIL_BYTES = 4096


@dataclass
class InvokeResult:
    """The outcome of one invocation, shaped like Lambda's Invoke response."""

    function_name: str
    request_id: str
    #: The handler's result as JSON bytes, or Lambda's error payload when ``function_error`` is set.
    payload: bytes
    #: None on success, ``"Unhandled"`` for errors, timeouts and crashes (X-Amz-Function-Error).
    function_error: str | None
    duration_ms: float
    #: The invocation's log (``logs``), or how to make it: most callers (the engine's batches) never read it.
    _logs: str | Callable[[], str] = field(default="", repr=False)

    @property
    def logs(self) -> str:
        """The invocation's log: START line, the handler's output, END and REPORT lines."""
        logs = self._logs
        if not isinstance(logs, str):
            logs = self._logs = logs()
        return logs

    @logs.setter
    def logs(self, value: str | Callable[[], str]) -> None:
        self._logs = value

    @property
    def ok(self) -> bool:
        return self.function_error is None

    @property
    def error(self) -> dict[str, Any] | None:
        if self.ok:
            return None
        try:
            data = loads(self.payload)
        except ValueError:
            return {"errorMessage": self.payload.decode(errors="replace"), "errorType": "Unknown"}
        return data if isinstance(data, dict) else {"errorMessage": str(data), "errorType": "Unknown"}

    @property
    def error_type(self) -> str | None:
        err = self.error
        return None if err is None else str(err.get("errorType", "Unknown"))

    def result(self) -> Any:
        """The decoded result (or error payload)."""
        return loads(self.payload) if self.payload else None

    def log_tail(self, limit: int = _LOG_TAIL_BYTES) -> str:
        """The last ``limit`` bytes of the log (Lambda's LogType=Tail)."""
        data = self.logs.encode()[-limit:]
        return data.decode(errors="ignore")


# Request ids: one random UUID per process, then a counter in its last 48 bits (still a version-4 UUID's
# shape). uuid4() per invocation read os.urandom and built a UUID object, ~6 us of every small invoke.
_ID_BASE = uuid.uuid4().hex
_ID_PREFIX = f"{_ID_BASE[:8]}-{_ID_BASE[8:12]}-{_ID_BASE[12:16]}-{_ID_BASE[16:20]}-"
_ID_COUNTER = itertools.count(int(_ID_BASE[20:], 16))  # next() is atomic under the GIL


def new_request_id() -> str:
    """A request id unique within this process and across processes (a random base), shaped like a UUID."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFF:012x}"


def timeout_payload(request_id: str, timeout: float) -> bytes:
    return json.dumps({"errorType": "Sandbox.Timedout",
                       "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"}).encode()


_SIGNAL_WORDS = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
                 signal.SIGTERM: "terminated", signal.SIGBUS: "bus error"}


def exit_payload(request_id: str, returncode: int | None) -> bytes:
    if returncode is not None and returncode < 0:
        try:
            sig = signal.Signals(-returncode)
            reason = f"signal: {_SIGNAL_WORDS.get(sig, sig.name.lower())}"
        except ValueError:
            reason = f"signal: {-returncode}"
    else:
        reason = f"exit status {returncode}"
    return json.dumps({"errorType": "Runtime.ExitError",
                       "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {reason}"}).encode()


def report(request_id: str, fn: FunctionConfig, output: str, duration_ms: float, max_rss_mb: int | None,
           extra: str = "") -> str:
    """The invocation's log as Lambda writes it: START, the output, END and REPORT lines."""
    rss = f"\tMax Memory Used: {max_rss_mb} MB" if max_rss_mb else ""
    return (
        f"START RequestId: {request_id} Version: $LATEST\n{output}{extra}"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {fn.memory_size} MB{rss}\t\n"
    )
