"""The worker process: imports one Lambda handler and runs invocations sent over a pipe.

Started by ``pool.py`` as ``python -m triggerfish.functions.worker SPEC_JSON`` with an inherited
pipe (requests in) and socket (replies out). Each request is a frame (see ``frames``); the reply carries
the result (or Lambda's error payload) and everything the handler printed or logged during that
invocation, capped per character (``capture``). ``MemorySize`` is applied before the handler is imported
(``memory``): the worker joins its cgroup, or sets RLIMIT_DATA; a ``MemoryError`` out of the handler is Lambda's
``Runtime.OutOfMemory`` and the worker exits after replying. The worker exits when the request pipe
closes, so an engine killed with SIGKILL leaves no workers behind. Its first frame, before any
request, reports how loading the handler went (:mod:`.readiness`), so a start-up can fail on it.
Workers run as SCHED_BATCH (``_batch_scheduling``), as do the processes a handler starts.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, BinaryIO

from triggerfish.functions.batch import unpack_event
from triggerfish.functions.capture import FdCapture, OutputCapture
from triggerfish.functions.context import LambdaContext
from triggerfish.functions.frames import read_frame, write_frame
from triggerfish.functions.memory import PeakRss, join_cgroup, limit_data, oom_payload
from triggerfish.functions.readiness import init_frame
from triggerfish.functions.region import RegionReader


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _error(exc: BaseException, request_id: str, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        # the first frame is this module calling the handler: not the user's concern
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]),
    }


def _load(handler: str) -> Any:
    module_name, _, func_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from None
    except MemoryError:
        raise
    except Exception as exc:
        raise _InitError(type(exc).__name__, str(exc)) from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{module_name}'")
    return func


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _serve(spec: dict[str, Any], requests: BinaryIO, replies: BinaryIO) -> None:
    capture = OutputCapture()
    fds = FdCapture(capture)
    peak_rss = PeakRss()
    request_filter = _capture_output(capture)
    # Before the handler is imported, so its import counts against MemorySize too.
    try:
        join_cgroup(spec["cgroup"])
    except (KeyError, TypeError, OSError):  # no cgroup for this worker (or it vanished): the resource limit
        limit_data(spec["memory_size"])
    func, init_error = _load_handler(spec)
    # Before any request: App.start waits for this to fail the start of a function that cannot load.
    write_frame(replies, init_frame(func, init_error.error_type if init_error else None, str(init_error or "")), b"")
    region = RegionReader(spec["region_fd"]) if spec.get("region_fd") is not None else None

    while True:
        frame = read_frame(requests)
        if frame is None:
            return
        header, body_bytes = frame
        payload: bytes | memoryview = body_bytes
        if region is not None and "region" in header:
            payload = region.view(header["region"])  # a big body, written by the engine into the shared region
        request_id = header["id"]
        request_filter.request_id = request_id
        started = time.perf_counter()
        if init_error is not None:
            body, ok, out_of_memory = _init_failure(init_error, request_id), False, _is_oom(init_error)
        else:
            body, ok, out_of_memory = _invoke(func, spec, header, payload)
        duration = (time.perf_counter() - started) * 1000
        rss_mb = peak_rss.mb()
        if fds.seen:
            fds.sync()
        head = {"ok": ok, "duration_ms": duration, "logs": capture.take(), "max_rss_mb": rss_mb}
        if out_of_memory:
            # The engine replaces this worker: its state after a failed allocation is anyone's guess.
            head["oom"] = True
        write_frame(replies, head, body)
        if out_of_memory:
            return


def _capture_output(capture: OutputCapture) -> _RequestIdFilter:
    """Send print, sys.stdout/stderr and logging (in Lambda's log line format) to ``capture``."""
    sys.stdout = capture
    sys.stderr = capture
    request_filter = _RequestIdFilter()
    handler_ = logging.StreamHandler(capture)
    formatter = logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                                  "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler_.setFormatter(formatter)
    handler_.terminator = ""
    handler_.addFilter(request_filter)
    logging.getLogger().addHandler(handler_)
    return request_filter


def _load_handler(spec: dict[str, Any]) -> tuple[Any, _InitError | None]:
    """Import the handler from the function's code directory; a failure is reported per invocation."""
    sys.path.insert(0, spec["code_uri"])
    os.chdir(spec["code_uri"])
    try:
        return _load(spec["handler"]), None
    except _InitError as exc:
        return None, exc
    except MemoryError:
        return None, _InitError("Runtime.OutOfMemory", "")
    except BaseException as exc:  # noqa: BLE001 - any init failure is reported per invocation
        return None, _InitError(type(exc).__name__, str(exc))


def _is_oom(error: _InitError) -> bool:
    return error.error_type == "Runtime.OutOfMemory"


def _init_failure(error: _InitError, request_id: str) -> bytes:
    if _is_oom(error):
        return oom_payload(request_id)
    return json.dumps({"errorMessage": str(error), "errorType": error.error_type,
                       "requestId": request_id, "stackTrace": []}).encode()


def _invoke(func: Any, spec: dict[str, Any], header: dict[str, Any],
            payload: bytes | memoryview) -> tuple[bytes, bool, bool]:
    """Run the handler on one request: (the reply body, ok, out of memory)."""
    request_id = header["id"]
    context = LambdaContext(
        function_name=spec["function_name"], memory_limit_in_mb=spec["memory_size"],
        aws_request_id=request_id, deadline_ms=header["deadline_ms"], region=spec["region"],
        log_stream_name=spec["log_stream_name"],
    )
    event: Any
    try:
        if header.get("kind") == "records":
            # A Kafka batch packed by the engine (our own pipe, our own pickle).
            event = unpack_event(payload)
        else:
            event = json.loads(bytes(payload)) if payload else None
        result = func(event, context)
    except MemoryError:
        # Past RLIMIT_DATA: where Lambda's OOM killer would have ended the process.
        return oom_payload(request_id), False, True
    except Exception as exc:  # the handler's own error: reported as Lambda reports it
        return json.dumps(_error(exc, request_id)).encode(), False, False
    if result is None:  # the usual no-op return: json.dumps(None) without the encoder's call (~2 us)
        return b"null", True, False
    try:
        return json.dumps(result).encode(), True, False
    except MemoryError:
        return oom_payload(request_id), False, True
    except (TypeError, ValueError) as exc:
        return json.dumps({"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError",
                           "requestId": request_id, "stackTrace": []}).encode(), False, False


def _batch_scheduling() -> None:
    """Run as Linux's SCHED_BATCH: a request that wakes the worker then does not preempt the engine thread
    that wrote it (which goes on to wait for the reply anyway), a context switch pair less per invocation
    (~15 % of the CPU of a small invocation, both sides). The CPU share stays the same as SCHED_OTHER's."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or refused by a seccomp profile: the default policy then
        pass


def _main() -> None:
    _batch_scheduling()
    spec = json.loads(sys.argv[1])
    requests = os.fdopen(spec["request_fd"], "rb", buffering=1 << 16)
    replies = os.fdopen(spec["reply_fd"], "wb", buffering=1 << 16)
    try:
        _serve(spec, requests, replies)
    except (ConnectionError, KeyboardInterrupt):  # the engine went away (a broken pipe, a reset socket)
        pass
    os._exit(0)  # skip interpreter teardown: handlers may leave threads behind


if __name__ == "__main__":
    _main()
