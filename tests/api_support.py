"""Helpers for the control-API tests: a boto3 Lambda client whose every response is checked
against botocore's own output shape for the operation."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from triggerfish.api.shapes import response_problems


def check_shape(http_response: Any, model: Any, **_: Any) -> None:
    """botocore ``after-call`` hook: every JSON body must fit the operation's output shape."""
    if http_response.status_code >= 300 or model.output_shape is None:
        return
    if model.output_shape.serialization.get("payload"):
        return  # Invoke: the body is the function's payload, not a shape
    body = json.loads(http_response.content) if http_response.content else {}
    problems = response_problems(model.name, body)
    assert not problems, f"{model.name} response departs from botocore's model: {problems}"


def lambda_client(url: str, key: str = "x", secret: str = "y", **config: Any):
    client = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30, **config),
    )
    client.meta.events.register("after-call.lambda", check_shape)
    return client
