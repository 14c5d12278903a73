"""Resolve secret references to their JSON content, held in memory only.

A reference is one of:

    arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME   fetched with boto3 (honours AWS_ENDPOINT_URL*)
    file:///absolute/path.json                          read from a file (a mounted Kubernetes secret)
    env:VARIABLE                                        read from an environment variable
    NAME  (only where a region is given)                a Secrets Manager secret by name

Errors name the reference and what went wrong, never the secret's value. Importing this module
also stops botocore's DEBUG logging from printing Secrets Manager response bodies.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from triggerfish.errors import SecretError

SECRET_ARN_PREFIX = "arn:aws:secretsmanager:"


class _DropSecretBodies(logging.Filter):
    """botocore logs request params and response bodies at DEBUG: drop the ones carrying a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to judge
            return True
        return "SecretString" not in text and "SecretBinary" not in text


for _logger in ("botocore.endpoint", "botocore.parsers"):
    logging.getLogger(_logger).addFilter(_DropSecretBodies())


def is_reference(value: str) -> bool:
    return value.startswith((SECRET_ARN_PREFIX, "file://", "env:"))


def read_text(ref: str, region: str | None = None) -> str:
    """Return the raw text of a secret reference; with ``region``, a bare name is a Secrets Manager secret."""
    if ref.startswith(SECRET_ARN_PREFIX):
        return _from_secrets_manager(ref, ref.split(":")[3] or None)
    if region and not is_reference(ref):
        return _from_secrets_manager(ref, region)
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


def _from_secrets_manager(secret_id: str, region: str | None) -> str:
    import boto3
    import botocore.exceptions

    arn = secret_id if secret_id.startswith(SECRET_ARN_PREFIX) else f"{secret_id} in {region}"
    client = boto3.client("secretsmanager", region_name=region)
    try:
        response = client.get_secret_value(SecretId=secret_id)
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
