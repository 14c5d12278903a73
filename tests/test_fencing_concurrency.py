"""On AWS Lambda the fencing function acts only with reserved concurrency 1 (moto's Lambda API)."""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile

import boto3
import pytest

from fencing_support import alert as site_offline
from fencing_support import decisions, fire, results
from triggerfish.functions.fencing import reserved

pytestmark = pytest.mark.timeout(60)
REGION = "eu-west-1"


@pytest.fixture
def on_lambda(moto_server, monkeypatch):
    """A function in moto's Lambda and the variables AWS Lambda's runtime sets; yields its name."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName=f"fencing-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    name = f"site-fencing-{uuid.uuid4().hex[:8]}"
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="triggerfish.functions.fencing.handler",
        Code={"ZipFile": code.getvalue()},
    )
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", name)
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    monkeypatch.setenv("AWS_REGION", REGION)
    return name


def test_without_reserved_concurrency_one_the_function_refuses_to_act(make_world, on_lambda):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    handler = world.handler()

    response = fire(handler, site_offline("site-b", "site-a"))

    assert response["statusCode"] == 424  # a human must set it; Alertmanager re-sends at the next group_interval
    assert results(response) == [("check-concurrency", "refused")]
    error = decisions(response)[0]["error"]
    assert "is not set" in error and f"--function-name {on_lambda} --reserved-concurrent-executions 1" in error
    assert world.ga.calls == [] and world.sites_left() == ["site-a", "site-b"]
    assert all(f.actions == [] for f in world.ispn.values())

    boto3.client("lambda", region_name=REGION).put_function_concurrency(FunctionName=on_lambda, ReservedConcurrentExecutions=5)
    assert "is 5" in decisions(fire(world.handler(), site_offline("site-b", "site-a")))[0]["error"]


def test_with_reserved_concurrency_one_the_function_acts(make_world, on_lambda):
    boto3.client("lambda", region_name=REGION).put_function_concurrency(FunctionName=on_lambda, ReservedConcurrentExecutions=1)
    world = make_world(["site-a", "site-b"], other_accelerators=0)

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200, response["body"]
    assert world.sites_left() == ["site-a"]


def test_setting_the_concurrency_takes_effect_without_a_restart(make_world, on_lambda):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    handler = world.handler()
    handler.fencer.guard = reserved.ConcurrencyGuard(recheck=0)  # the default re-checks once a minute
    assert fire(handler, site_offline("site-b", "site-a"))["statusCode"] == 424

    boto3.client("lambda", region_name=REGION).put_function_concurrency(FunctionName=on_lambda, ReservedConcurrentExecutions=1)

    assert fire(handler, site_offline("site-b", "site-a"))["statusCode"] == 200
    assert world.sites_left() == ["site-a"]


def test_a_concurrency_that_cannot_be_read_is_logged_and_the_function_acts(make_world, on_lambda, monkeypatch, caplog):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "not-readable")  # moto answers ResourceNotFoundException
    world = make_world(["site-a", "site-b"], other_accelerators=0)

    with caplog.at_level(logging.INFO, logger="triggerfish.functions.fencing"):
        response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200
    line = next(json.loads(r.getMessage()) for r in caplog.records if "check-concurrency" in r.getMessage())
    assert line["result"] == "unchecked" and "lambda:GetFunctionConcurrency" in line["reason"]


def test_only_real_lambda_is_checked():
    # triggerfish's runtime sets the function name too, but enforces ReservedConcurrentExecutions itself.
    assert not reserved.on_aws_lambda({"AWS_LAMBDA_FUNCTION_NAME": "site-fencing"})
    assert reserved.on_aws_lambda({"AWS_LAMBDA_FUNCTION_NAME": "site-fencing", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})
    assert reserved.refusal({"AWS_LAMBDA_FUNCTION_NAME": "site-fencing"}) is None
