"""The function runtime: run invocations of Lambda handlers in worker processes (or POST to HTTP functions).

    runtime = FunctionRuntime([FunctionConfig.from_dict({...})])
    result = runtime.invoke("orders", b'{"hello": 1}')      # blocking, thread-safe
    result.ok, result.payload, result.error, result.logs

Each Python function has a pool of worker processes (``worker.py``), at most its concurrency
(``ReservedConcurrentExecutions``, else ``_DEFAULT_CONCURRENCY``); callers beyond that wait, or
with ``invoke(..., wait=False)`` get ``FunctionThrottled`` (a function URL's 429). The
outcome is always an ``InvokeResult`` and never an exception: a raised exception becomes Lambda's
``{"errorMessage","errorType","stackTrace"}``, a handler past its Timeout is killed and reported as
``Task timed out after N.NN seconds``, and a worker that dies is reported as ``Runtime.ExitError``
and replaced — the engine process is never taken down by a handler.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from triggerfish.errors import FunctionNotFound, FunctionThrottled
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.http import HttpFunction

# Re-exported only because esm.invoker still imports it from here; its home is functions.invocation.
from triggerfish.functions.invocation import InvokeResult as InvokeResult
from triggerfish.functions.invocation import exit_payload, new_request_id, report, timeout_payload
from triggerfish.functions.memory import oom_payload
from triggerfish.functions.pool import WorkerCrashed, WorkerPool, WorkerTimeout
from triggerfish.functions.readiness import InitReport
from triggerfish.functions.stats import STATS

_DEFAULT_CONCURRENCY = 8
#: How long ``wait_init`` waits for a handler to load (Lambda's init phase gets 10 s; imports here may be slower).
_INIT_TIMEOUT = 60.0

#: Called with (function name, request id, the handler's output) after each invocation that printed something.
LogSink = Callable[[str, str, str], None]
#: What ``invoke`` accepts: bytes as they are, text encoded, anything else as JSON.
_Payload = bytes | str | dict[str, Any] | list[Any] | None


class FunctionRuntime:
    """All configured functions; thread-safe. ``invoke`` blocks until the outcome is known."""

    def __init__(
        self,
        functions: Iterable[FunctionConfig] = (),
        *,
        log_sink: LogSink | None = None,
        region: str | None = None,
        default_concurrency: int = _DEFAULT_CONCURRENCY,
    ) -> None:
        self.log_sink = log_sink
        self.region = region
        self.default_concurrency = default_concurrency
        self._functions: dict[str, FunctionConfig] = {}
        self._pools: dict[str, WorkerPool] = {}
        self._http: dict[str, HttpFunction] = {}
        self._init: dict[str, InitReport] = {}
        self._lock = threading.Lock()
        for fn in functions:
            self.add(fn)

    # -- registry ------------------------------------------------------------------------------
    def add(self, fn: FunctionConfig) -> None:
        """Add or replace a function; invocations already running finish on the old code."""
        with self._lock:
            old_pool = self._pools.pop(fn.function_name, None)
            old_http = self._http.pop(fn.function_name, None)
            self._init.pop(fn.function_name, None)
            self._functions[fn.function_name] = fn
            if fn.is_http:
                self._http[fn.function_name] = HttpFunction(fn, self.concurrency_of(fn))
            else:
                self._pools[fn.function_name] = WorkerPool(fn, self.concurrency_of(fn), self.region)
        if old_pool is not None:
            old_pool.close()
        if old_http is not None:
            old_http.close()

    update = add

    def remove(self, name: str) -> FunctionConfig:
        with self._lock:
            fn = self._functions.pop(name, None)
            pool = self._pools.pop(name, None)
            http = self._http.pop(name, None)
        if fn is None:
            raise FunctionNotFound(name)
        if pool is not None:
            pool.close()
        if http is not None:
            http.close()
        return fn

    def get(self, name: str) -> FunctionConfig:
        try:
            return self._functions[name]
        except KeyError:
            raise FunctionNotFound(name) from None

    def list(self) -> list[FunctionConfig]:
        return list(self._functions.values())

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def concurrency_of(self, fn: FunctionConfig | str) -> int:
        """How many invocations of the function may run at once."""
        if isinstance(fn, str):
            fn = self.get(fn)
        if fn.reserved_concurrent_executions is not None:
            return fn.reserved_concurrent_executions
        return self.default_concurrency

    def warm(self, name: str, count: int = 1) -> None:
        """Start ``count`` workers now (at most the concurrency), so invocations do not pay the interpreter start."""
        pool = self._pools.get(name)
        if pool is not None:
            pool.warm(count)

    def wait_init(self, name: str, timeout: float = _INIT_TIMEOUT) -> InitReport:
        """Wait until a worker of ``name`` has loaded its handler; the report is kept for ``not_ready()``."""
        pool = self._pools.get(name)
        report = pool.wait_init(timeout) if pool is not None else InitReport()
        with self._lock:
            self._init[name] = report
        return report

    def not_ready(self) -> dict[str, str]:
        """Functions whose start failed or that said they cannot work yet (``wait_init``), with the reason."""
        with self._lock:
            reports = {name: r for name, r in self._init.items() if name in self._functions}
        return {name: r.error or r.not_ready or "" for name, r in reports.items() if r.error or r.not_ready}

    # -- invoking ------------------------------------------------------------------------------
    def invoke(self, name: str, payload: _Payload = b"",
               *, request_id: str | None = None, wait: bool = True) -> InvokeResult:
        """Run one invocation and return its outcome. Raises ``FunctionNotFound``, and with
        ``wait=False`` ``FunctionThrottled`` when all of the function's slots are busy (synchronous
        callers such as function URLs are refused, as Lambda does, instead of queueing behind batches)."""
        if not isinstance(payload, bytes):
            payload = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        request_id = request_id or new_request_id()
        with self._lock:
            fn = self._functions.get(name)
            pool = self._pools.get(name)
            http = self._http.get(name)
        if fn is None:
            raise FunctionNotFound(name)
        if self.concurrency_of(fn) == 0:
            STATS.throttled(name)
            body = json.dumps({"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}).encode()
            return InvokeResult(name, request_id, body, "Unhandled", 0.0, "")
        try:
            if http is not None:
                result = http.invoke(payload, request_id, wait=wait)
            else:
                assert pool is not None
                result = self._invoke_worker(fn, pool, payload, request_id, wait=wait)
        except FunctionThrottled:  # wait=False and every slot busy
            STATS.throttled(name)
            raise
        STATS.invoked(name, result.duration_ms, error=result.function_error is not None)
        return result

    def invoke_records(
        self,
        name: str,
        packed: bytes | Sequence[bytes],
        json_payload: Callable[[], bytes],
        *,
        request_id: str | None = None,
    ) -> InvokeResult:
        """Invoke with a Kafka batch packed by ``functions.batch.pack_records`` (or its unjoined ``pack_parts``).

        A Python handler's worker builds the event dict itself (``functions.batch.unpack_event``), so the
        engine process never encodes the JSON nor the worker parses it; HTTP functions get
        ``json_payload()``. The handler sees exactly what ``json.loads`` of that JSON would give.
        """
        # No lock: one dict read is atomic, and a pool carries its function and concurrency. A function being
        # replaced right now may show no pool for a moment: invoke() then looks again under the lock.
        pool = self._pools.get(name)
        if pool is None or pool.size == 0:
            return self.invoke(name, json_payload(), request_id=request_id)
        result = self._invoke_worker(pool.fn, pool, packed, request_id or new_request_id(), kind="records")
        STATS.invoked(name, result.duration_ms, error=result.function_error is not None)
        return result

    def _invoke_worker(self, fn: FunctionConfig, pool: WorkerPool, payload: bytes | Sequence[bytes], request_id: str,
                       kind: str = "json", wait: bool = True) -> InvokeResult:
        worker = pool.acquire(wait)
        started = time.perf_counter()
        deadline = time.time() + fn.timeout
        try:
            head, body = worker.call(request_id, payload, deadline, kind)
        except WorkerTimeout:
            worker.kill()
            pool.release(None)
            duration = (time.perf_counter() - started) * 1000
            line = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()) + \
                f" {request_id} Task timed out after {fn.timeout:.2f} seconds\n"
            return self._done(fn, InvokeResult(fn.function_name, request_id, timeout_payload(request_id, fn.timeout),
                                               "Unhandled", duration), "", line)
        except (WorkerCrashed, OSError):
            code = worker.returncode()
            out_of_memory = worker.out_of_memory()
            peak_mb = worker.peak_mb()
            worker.kill()
            pool.release(None)
            duration = (time.perf_counter() - started) * 1000
            if out_of_memory:
                body = oom_payload(request_id)
                line = json.loads(body)["errorMessage"] + "\nRuntime.OutOfMemory\n"
            else:
                body = exit_payload(request_id, code)
                line = json.loads(body)["errorMessage"] + "\n"
            return self._done(fn, InvokeResult(fn.function_name, request_id, body, "Unhandled", duration), "", line,
                              peak_mb)
        except BaseException:
            worker.kill()
            pool.release(None)
            raise
        if head.get("oom"):
            # Past RLIMIT_DATA: the worker exits after replying; Lambda would have killed it.
            worker.kill()
            pool.release(None)
        else:
            pool.release(worker)
        result = InvokeResult(fn.function_name, request_id, body, None if head["ok"] else "Unhandled",
                              float(head["duration_ms"]))
        extra = ""
        if head.get("oom"):
            extra = json.loads(body)["errorMessage"] + "\nRuntime.OutOfMemory\n"
        elif not head["ok"]:
            err = result.error or {}
            extra = f"[ERROR] {err.get('errorType')}: {err.get('errorMessage')}\n"
        return self._done(fn, result, head.get("logs", ""), extra, head.get("max_rss_mb"))

    def _done(self, fn: FunctionConfig, result: InvokeResult, output: str, extra: str,
              max_rss_mb: int | None = None) -> InvokeResult:
        # Made when read: the engine's batches never read it (a REPORT line's formatting per small invoke)
        result.logs = functools.partial(report, result.request_id, fn, output, result.duration_ms, max_rss_mb, extra)
        if self.log_sink is not None and (output or extra):
            self.log_sink(fn.function_name, result.request_id, output + extra)
        return result

    def close(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
            https = list(self._http.values())
        for pool in pools:
            pool.close()
        for http in https:
            http.close()
