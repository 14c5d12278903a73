"""Functions that are HTTP endpoints (``Url:``): the event is POSTed as JSON; a 2xx reply is success.

The reply body is the function's result. A non-2xx status, a connection failure or a reply slower
than the function's ``Timeout`` is a function error, reported with Lambda's error payload shape.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING

from triggerfish.errors import FunctionThrottled
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.invocation import InvokeResult, report, timeout_payload

if TYPE_CHECKING:
    import httpx


class HttpFunction:
    """One HTTP-endpoint function: a pooled client, at most ``concurrency`` requests in flight."""

    def __init__(self, fn: FunctionConfig, concurrency: int) -> None:
        self.fn = fn
        self._limit = max(concurrency, 1)
        self._slots = threading.BoundedSemaphore(self._limit)
        import httpx  # on the first HTTP function: every engine paid ~4 MB and 0.1 s of start-up for it

        self._httpx = httpx
        self._client: httpx.Client = httpx.Client(timeout=httpx.Timeout(fn.timeout), follow_redirects=False,
                                    limits=httpx.Limits(max_connections=max(concurrency, 1)))

    def invoke(self, payload: bytes, request_id: str, *, wait: bool = True) -> InvokeResult:
        fn, httpx = self.fn, self._httpx
        started = time.perf_counter()
        headers = {"Content-Type": "application/json", "Lambda-Runtime-Aws-Request-Id": request_id,
                   "X-Amz-Request-Id": request_id}
        if not self._slots.acquire(blocking=wait):
            raise FunctionThrottled(fn.function_name, self._limit)
        error: str | None
        try:
            try:
                resp = self._client.post(fn.url or "", content=payload or b"null", headers=headers)
            except httpx.TimeoutException:
                body, error = timeout_payload(request_id, fn.timeout), "Unhandled"
                note = f"Task timed out after {fn.timeout:.2f} seconds\n"
            except httpx.HTTPError as exc:
                body = json.dumps({"errorType": type(exc).__name__,
                                   "errorMessage": f"POST {fn.url} failed: {exc}"}).encode()
                error, note = "Unhandled", f"POST {fn.url} failed: {exc}\n"
            else:
                if 200 <= resp.status_code < 300:
                    body, error, note = resp.content or b"null", None, ""
                else:
                    text = resp.text[:512]
                    body = json.dumps({"errorType": f"HTTP{resp.status_code}",
                                       "errorMessage": f"POST {fn.url} returned {resp.status_code}: {text}"}).encode()
                    error, note = "Unhandled", f"POST {fn.url} returned {resp.status_code}\n"
        finally:
            self._slots.release()
        duration = (time.perf_counter() - started) * 1000
        result = InvokeResult(fn.function_name, request_id, body, error, duration)
        result.logs = report(request_id, fn, "", duration, None, note)
        return result

    def close(self) -> None:
        self._client.close()
