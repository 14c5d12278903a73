"""On AWS Lambda, fencing acts only when the function's reserved concurrency is 1; checked once at start.

Why: on Lambda the ``flock`` of :mod:`.lock` holds per execution environment only, so two
environments can decide at the same moment (the fencer's re-read and restore then keeps an endpoint,
but the fence may be undone and need a retry). Reserved concurrency 1 makes Lambda itself run one
call at a time. The check runs at start (``GetFunctionConcurrency``); while it refuses it is
repeated at most once a minute, so setting the concurrency takes effect without a redeploy:

* reserved concurrency is 1 → act;
* it is unset or another number → refuse every alert (424, one clear line) until it is set;
* the role may not read it (AccessDenied) or the call fails → warn once and act: the check is a
  guard, and the re-read after each removal still never leaves the load balancer empty.

Real Lambda is recognised by ``AWS_LAMBDA_RUNTIME_API`` next to ``AWS_LAMBDA_FUNCTION_NAME``;
triggerfish's own runtime sets the latter only, and enforces ``ReservedConcurrentExecutions`` itself.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from triggerfish.functions.fencing.decisions import logger


def on_aws_lambda(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME") and env.get("AWS_LAMBDA_RUNTIME_API"))


def refusal(environ: Mapping[str, str] | None = None, client: Callable[[], Any] | None = None) -> str | None:
    """Why this function must not act (reserved concurrency is not 1 on AWS Lambda), or ``None``."""
    env = os.environ if environ is None else environ
    if not on_aws_lambda(env):
        return None
    name = env["AWS_LAMBDA_FUNCTION_NAME"]
    try:
        lambda_client = client() if client else _client(env)
        reserved = lambda_client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) or type(exc).__name__
        logger.warning(json.dumps({
            "action": "check-concurrency", "result": "unchecked", "function": name, "error": code,
            "reason": "cannot read the reserved concurrency (allow lambda:GetFunctionConcurrency); "
                      "acting anyway, the fence never empties the load balancer",
        }, separators=(",", ":")))
        return None
    if reserved == 1:
        return None
    shown = "not set" if reserved is None else str(reserved)
    return (
        f"reserved concurrency of Lambda function {name} is {shown}; fencing acts only with 1 "
        f"(aws lambda put-function-concurrency --function-name {name} --reserved-concurrent-executions 1)"
    )


class ConcurrencyGuard:
    """:func:`refusal` checked at construction (start-up) and, while refusing, again at most every ``recheck`` s."""

    def __init__(self, check: Callable[[], str | None] = refusal, recheck: float = 60.0) -> None:
        self._check = check
        self._recheck = recheck
        self._refusal = check()
        self._checked_at = time.monotonic()

    def __call__(self) -> str | None:
        if self._refusal is not None and time.monotonic() - self._checked_at >= self._recheck:
            self._refusal = self._check()
            self._checked_at = time.monotonic()
        return self._refusal


def _client(env: Mapping[str, str]) -> Any:
    import boto3

    return boto3.client("lambda", region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
