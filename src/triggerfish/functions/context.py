"""``LambdaContext``: the ``context`` object handlers receive, with Lambda's attribute names."""

from __future__ import annotations

import time


class LambdaContext:
    """What a Python handler sees as ``context`` (the attributes of Lambda's Python runtime)."""

    def __init__(
        self,
        *,
        function_name: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        deadline_ms: int,
        function_version: str = "$LATEST",
        region: str = "us-east-1",
        account: str = "000000000000",
        log_stream_name: str = "",
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"
