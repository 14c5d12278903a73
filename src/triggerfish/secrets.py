"""Resolve secret references to their JSON content, held in memory only.

A reference is one of:

    arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME   fetched with boto3 (honours AWS_ENDPOINT_URL*)
    file:///absolute/path.json                          read from a file (a mounted Kubernetes secret)
    env:VARIABLE                                        read from an environment variable
    NAME  (only where a region is given)                a Secrets Manager secret by name

Errors name the reference and what went wrong, never the secret's value. Importing this module
also stops botocore's DEBUG logging from printing Secrets Manager response bodies.

``ReferencePolicy`` limits the ``file://`` and ``env:`` references a less trusted source (the control
API) may name to configured directories and variable prefixes; it decides from the reference's text
alone, so its refusal never tells whether the file or variable exists.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from triggerfish import json_input
from triggerfish.errors import ConfigError, SecretError

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


def _file_path(ref: str) -> Path:
    return Path(unquote(urlparse(ref).path))


@dataclass(frozen=True)
class ReferencePolicy:
    """Which ``file://`` and ``env:`` references are allowed: files under ``file_roots``, variables
    starting with one of ``env_prefixes``. The default allows none; Secrets Manager ARNs always pass
    (AWS's own IAM decides what they may read)."""

    file_roots: tuple[str, ...] = ()
    env_prefixes: tuple[str, ...] = ()

    def check(self, ref: str, field: str) -> None:
        """Raise ConfigError naming ``field`` unless ``ref`` is allowed; the same answer whether it exists or not."""
        if ref.startswith("file://"):
            # realpath: neither ``..`` nor a symlink inside a root leads out of it
            path = Path(os.path.realpath(_file_path(ref)))
            if not any(path.is_relative_to(os.path.realpath(root)) for root in self.file_roots):
                roots = ", ".join(self.file_roots) or "none configured"
                raise ConfigError(field, f"secret reference {ref} is outside the directories secret files may "
                                  f"be read from through the API ({roots}); add --secret-file-root DIR")
        elif ref.startswith("env:"):
            if not any(ref[4:].startswith(prefix) for prefix in self.env_prefixes):
                prefixes = ", ".join(self.env_prefixes) or "none configured"
                raise ConfigError(field, f"secret reference {ref} names a variable the API may not read "
                                  f"(allowed prefixes: {prefixes}); add --secret-env-prefix PREFIX")


def read_text(ref: str, region: str | None = None) -> str:
    """Return the raw text of a secret reference; with ``region``, a bare name is a Secrets Manager secret."""
    if ref.startswith(SECRET_ARN_PREFIX):
        return _from_secrets_manager(ref, ref.split(":")[3] or None)
    if region and not is_reference(ref):
        return _from_secrets_manager(ref, region)
    if ref.startswith("file://"):
        path = _file_path(ref)
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
        value = json_input.loads(text)
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
