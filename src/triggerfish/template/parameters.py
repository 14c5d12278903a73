"""A template's parameter values: ``Parameters`` defaults, ``--parameter-overrides``, pseudo parameters.

``--parameter-overrides`` takes what ``sam`` takes: ``Key=Value`` pairs separated by spaces (quote a
value holding spaces) or ``ParameterKey=Key,ParameterValue=Value``, in one option or several.
Pseudo parameters may be overridden the same way (``AWS::Region=eu-west-1``); the account is
``123456789012`` as under ``sam local``, the region ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` or
``us-east-1``, the stack ``local``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from typing import Any

from triggerfish.errors import ConfigError
from triggerfish.template.physical import Place

ACCOUNT = "123456789012"
STACK = "local"
_PAIR = re.compile(r"ParameterKey=([^,]+),ParameterValue=(.*)")


def parse_overrides(options: Iterable[str]) -> dict[str, str]:
    """``["Env=dev Size=10", "ParameterKey=Name,ParameterValue=a b"]`` -> ``{"Env": "dev", ...}``."""
    out: dict[str, str] = {}
    for option in options:
        try:
            tokens = shlex.split(option)
        except ValueError as exc:
            raise ConfigError("--parameter-overrides", f"cannot read {option!r}: {exc}; quote values with spaces") from None
        for token in tokens:
            pair = _PAIR.fullmatch(token)
            if pair:
                out[pair.group(1)] = pair.group(2)
            elif "=" in token and not token.startswith("="):
                key, value = token.split("=", 1)
                out[key] = value
            else:
                raise ConfigError("--parameter-overrides", f"{token!r} is not Key=Value; write "
                                  "--parameter-overrides Key=Value or ParameterKey=Key,ParameterValue=Value")
    return out


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def pseudo(overrides: dict[str, str]) -> dict[str, Any]:
    """The pseudo parameters, each overridable with ``--parameter-overrides AWS::Name=value``."""
    region = overrides.get("AWS::Region") or os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION") or "us-east-1"
    account = overrides.get("AWS::AccountId", ACCOUNT)
    partition = overrides.get("AWS::Partition", _partition(region))
    stack = overrides.get("AWS::StackName", STACK)
    return {
        "AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": partition, "AWS::StackName": stack,
        "AWS::StackId": f"arn:{partition}:cloudformation:{region}:{account}:stack/{stack}/local",
        "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


def place_of(values: dict[str, Any]) -> Place:
    return Place(partition=values["AWS::Partition"], region=values["AWS::Region"], account=values["AWS::AccountId"])


def resolve(declared: Any, overrides: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(values, unset)``: each parameter's value (pseudo parameters included), and for each parameter
    without one the error to raise where it is used (an unused parameter needs no value)."""
    if declared is None:
        declared = {}
    if not isinstance(declared, dict):
        raise ConfigError("Parameters", "must be a mapping of parameter names to their declarations")
    unknown = [k for k in overrides if k not in declared and not k.startswith("AWS::")]
    if unknown:
        raise ConfigError("--parameter-overrides", f"{', '.join(unknown)} is not a parameter of this template "
                          f"(parameters: {', '.join(declared) or 'none'}); fix the name")
    values = pseudo(overrides)
    unset: dict[str, str] = {}
    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        if name in overrides:
            value: Any = overrides[name]
        elif str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            # its Default names a Parameter Store entry, whose value exists only in AWS
            unset[name] = (f"parameter {name} is read from SSM Parameter Store ({spec.get('Default', 'no Default')}) "
                           f"in AWS; pass --parameter-overrides {name}=VALUE")
            continue
        elif "Default" in spec:
            value = spec["Default"]
        else:
            unset[name] = (f"parameter {name} has no Default and no value; pass --parameter-overrides {name}=VALUE "
                           "(sam deploy's values do not reach a local run)")
            continue
        values[name] = _typed(name, spec, value)
    return values, unset


def _typed(name: str, spec: dict[str, Any], value: Any) -> Any:
    """Check AllowedValues / AllowedPattern and split list types, as CloudFormation does."""
    kind = str(spec.get("Type", "String"))
    where = f"Parameters.{name}"
    is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
    items = [v.strip() for v in str(value).split(",")] if is_list and not isinstance(value, list) else value
    allowed = spec.get("AllowedValues")
    for item in items if isinstance(items, list) else [items]:
        if isinstance(allowed, list) and str(item) not in [str(a) for a in allowed]:
            raise ConfigError(where, f"value '{item}' is not one of AllowedValues ({', '.join(map(str, allowed))}); "
                                     f"pass --parameter-overrides {name}=ONE_OF_THEM")
        pattern = spec.get("AllowedPattern")
        if isinstance(pattern, str) and not re.fullmatch(pattern, str(item)):
            raise ConfigError(where, f"value '{item}' does not match AllowedPattern {pattern}; pass a value that does")
    return items
