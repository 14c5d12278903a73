"""Resolve secret references to their JSON content, held in memory only.

A reference is one of:

    arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME   fetched with boto3 (honours AWS_ENDPOINT_URL*)
    file:///absolute/path.json                          read from a file (a mounted Kubernetes secret)
    env:VARIABLE                                        read from an environment variable

Errors name the reference and what went wrong, never the secret's value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from triggerfish.errors import SecretError

SECRET_ARN_PREFIX = "arn:aws:secretsmanager:"


def is_reference(value: str) -> bool:
    return value.startswith((SECRET_ARN_PREFIX, "file://", "env:"))


def read_text(ref: str) -> str:
    """Return the raw text of a secret reference."""
    if ref.startswith(SECRET_ARN_PREFIX):
        return _from_secrets_manager(ref)
    if ref.startswith("file://"):
        path = Path(unquote(urlparse(ref).path))
        try:
            return path.read_text()
        except OSError as exc:
            raise SecretError(f"secret {ref}: cannot read the file ({exc.strerror})") from None
    if ref.startswith("env:"):
        name = ref[4:]
        if name not in os.environ:
            raise SecretError(f"secret {ref}: environment variable {name} is not set")
        return os.environ[name]
    raise SecretError(
        f"secret reference {ref!r} is not understood; use a Secrets Manager ARN, file:///path.json or env:VAR"
    )


def read_json(ref: str) -> dict[str, Any]:
    """Return a secret reference's content parsed as a JSON object."""
    text = read_text(ref)
    try:
        value = json.loads(text)
    except ValueError:
        raise SecretError(f"secret {ref}: its content is not valid JSON") from None
    if not isinstance(value, dict):
        raise SecretError(f"secret {ref}: its content must be a JSON object")
    return value


def _from_secrets_manager(arn: str) -> str:
    import boto3
    import botocore.exceptions

    region = arn.split(":")[3] or None
    client = boto3.client("secretsmanager", region_name=region)
    try:
        response = client.get_secret_value(SecretId=arn)
    except botocore.exceptions.NoCredentialsError:
        raise SecretError(f"secret {arn}: no AWS credentials found to call Secrets Manager") from None
    except botocore.exceptions.EndpointConnectionError as exc:
        raise SecretError(f"secret {arn}: cannot reach Secrets Manager at {exc.kwargs.get('endpoint_url')}") from None
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise SecretError(f"secret {arn}: Secrets Manager answered {error.get('Code')}: {error.get('Message')}") from None
    if "SecretString" in response:
        return str(response["SecretString"])
    return bytes(response["SecretBinary"]).decode("utf-8", errors="replace")
