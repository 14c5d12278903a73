"""The function runtime: Lambda's handler contract, error payloads, timeouts, crashes, logs, HTTP functions."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from esm_helpers import function_config, write_handler
from http_fake import Reply, Request, serve
from triggerfish.errors import FunctionNotFound
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime

HANDLERS = """
import json, logging, os, signal, time

def context_info(event, context):
    return {
        "function_name": context.function_name, "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn, "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id, "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name, "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in ("GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")},
        "event": event,
    }

def fail(event, context):
    def inner():
        raise ValueError("bad order " + str(event["id"]))
    inner()

def sleepy(event, context):
    time.sleep(event.get("sleep", 5))
    return "woke"

def exit3(event, context):
    os._exit(3)

def kill9(event, context):
    os.kill(os.getpid(), signal.SIGKILL)

def chatty(event, context):
    print("hello", event["n"])
    logging.getLogger().warning("warned %s", event["n"])
    return event["n"]

def unmarshallable(event, context):
    return object()

def pid(event, context):
    started = time.time()
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "start": started, "end": time.time()}
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    return write_handler(tmp_path, "h", HANDLERS)


@pytest.fixture
def runtime():
    rt = FunctionRuntime()
    yield rt
    rt.close()


def add(rt: FunctionRuntime, code: Path, handler: str, name: str | None = None, **fields) -> str:
    name = name or handler.replace("_", "-")
    rt.add(function_config(code, f"h.{handler}", name=name, **fields))
    return name


def test_context_and_environment(runtime, code):
    name = add(runtime, code, "context_info", Timeout=7, MemorySize=256,
               Environment={"Variables": {"GREETING": "hej"}})
    result = runtime.invoke(name, {"a": [1, 2]}, request_id="req-1")
    assert result.ok and result.function_error is None
    info = result.result()
    assert info["function_name"] == name and info["function_version"] == "$LATEST"
    assert info["invoked_function_arn"].endswith(f":function:{name}")
    assert info["memory_limit_in_mb"] == 256 and info["aws_request_id"] == "req-1"
    assert info["log_group_name"] == f"/aws/lambda/{name}" and info["log_stream_name"]
    assert 5000 < info["remaining"] <= 7000
    assert info["env"] == {"GREETING": "hej", "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}
    assert info["event"] == {"a": [1, 2]}


def test_exception_becomes_lambdas_error_payload(runtime, code):
    name = add(runtime, code, "fail")
    result = runtime.invoke(name, {"id": 7})
    assert result.function_error == "Unhandled"
    err = result.error
    assert err["errorType"] == "ValueError" and err["errorMessage"] == "bad order 7"
    assert err["requestId"] == result.request_id
    assert isinstance(err["stackTrace"], list) and len(err["stackTrace"]) == 2
    assert 'h.py", line' in err["stackTrace"][0] and "in fail" in err["stackTrace"][0]
    assert "in inner" in err["stackTrace"][1]
    assert "[ERROR] ValueError: bad order 7" in result.logs


def test_timeout_is_reported_like_lambda_and_worker_replaced(runtime, code):
    name = add(runtime, code, "sleepy", Timeout=1)
    started = time.monotonic()
    result = runtime.invoke(name, {"sleep": 10})
    took = time.monotonic() - started
    assert 1.0 <= took < 3.0
    assert result.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert "Task timed out after 1.00 seconds" in result.logs
    assert runtime.invoke(name, {"sleep": 0}).result() == "woke"


@pytest.mark.parametrize("handler, reason", [("exit3", "exit status 3"), ("kill9", "signal: killed")])
def test_crashing_worker_is_reported_and_replaced(runtime, code, handler, reason):
    name = add(runtime, code, handler)
    other = add(runtime, code, "chatty", name=f"{name}-ok")
    result = runtime.invoke(name, {})
    assert result.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: {reason}",
    }
    assert runtime.invoke(other, {"n": 1}).ok  # the engine process is unharmed
    assert runtime.invoke(name, {}).error_type == "Runtime.ExitError"  # and a new worker is used


def test_logs_are_captured_per_invocation(runtime, code):
    name = add(runtime, code, "chatty")
    seen = []
    runtime.log_sink = lambda fn, rid, text: seen.append((fn, rid, text))
    first = runtime.invoke(name, {"n": 1})
    second = runtime.invoke(name, {"n": 2})
    assert "hello 1\n" in first.logs and "hello 2" not in first.logs
    assert "hello 2\n" in second.logs and "hello 1" not in second.logs
    assert f"\t{second.request_id}\twarned 2" in second.logs
    lines = second.logs.splitlines()
    assert lines[0] == f"START RequestId: {second.request_id} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {second.request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {second.request_id}\tDuration: ")
    assert [s[1] for s in seen] == [first.request_id, second.request_id]
    long = runtime.invoke(name, {"n": "x" * 10000})
    assert len(long.log_tail().encode()) <= 4096 and long.log_tail().endswith(long.logs[-100:])


def test_init_errors_and_marshal_errors(runtime, code, tmp_path):
    missing = write_handler(tmp_path / "other", "present", "x = 1\n")
    runtime.add(FunctionConfig.from_dict({"FunctionName": "nomod", "CodeUri": str(missing), "Handler": "absent.handler"}))
    runtime.add(FunctionConfig.from_dict({"FunctionName": "nofunc", "CodeUri": str(missing), "Handler": "present.handler"}))
    assert runtime.invoke("nomod").error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'absent'" in runtime.invoke("nomod").error["errorMessage"]
    nofunc = runtime.invoke("nofunc")
    assert nofunc.error == {"errorMessage": "Handler 'handler' missing on module 'present'",
                            "errorType": "Runtime.HandlerNotFound", "requestId": nofunc.request_id, "stackTrace": []}
    name = add(runtime, code, "unmarshallable")
    assert runtime.invoke(name).error["errorType"] == "Runtime.MarshalError"
    with pytest.raises(FunctionNotFound):
        runtime.invoke("does-not-exist")


def test_concurrency_is_bounded_by_reserved_concurrency(runtime, code):
    name = add(runtime, code, "pid", ReservedConcurrentExecutions=2)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: runtime.invoke(name, {"sleep": 0.4}).result(), range(6)))
    assert len({r["pid"] for r in results}) == 2, "two warm workers are reused"
    spans = sorted((r["start"], r["end"]) for r in results)
    for t, _ in spans:
        running = sum(1 for s, e in spans if s <= t < e)
        assert running <= 2


def _echo(request: Request) -> Reply:
    event = json.loads(request.body)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    reply = json.dumps({"received": event, "request_id": request.headers.get("lambda-runtime-aws-request-id")}).encode()
    return Reply(500 if event.get("fail") else 200, {"Content-Type": "application/json"}, reply)


def test_http_endpoint_functions(runtime):
    with serve(_echo) as server:
        url = f"{server.url}/hook"
        runtime.add(FunctionConfig.from_dict({"FunctionName": "web", "Url": url, "Timeout": 1}))
        ok = runtime.invoke("web", {"n": 1})
        assert ok.ok and ok.result() == {"received": {"n": 1}, "request_id": ok.request_id}
        bad = runtime.invoke("web", {"fail": True})
        assert bad.function_error == "Unhandled" and bad.error["errorType"] == "HTTP500"
        slow = runtime.invoke("web", {"sleep": 2})
        assert slow.error["errorMessage"].endswith("Task timed out after 1.00 seconds")
        runtime.add(FunctionConfig.from_dict({"FunctionName": "gone", "Url": "http://127.0.0.1:1/"}))
        assert runtime.invoke("gone", {}).error["errorType"] == "ConnectError"
