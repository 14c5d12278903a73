"""The probes that need AWS or the mapping's secrets: usable AWS credentials, and each secret's content.

The secret stage ends by building the librdkafka settings (:func:`triggerfish.esm.auth.build`), which is
where PEM and key material is checked; a failure there is blamed on the secret that held it.
"""

from __future__ import annotations

import time
from typing import Any

from triggerfish.checks import Check, timed
from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import SetupError
from triggerfish.esm import auth, problems, secret_problems
from triggerfish.esm.access import Access, bootstrap_servers


def check_credentials(access: Access) -> Check:
    """Are AWS credentials usable (STS GetCallerIdentity)? Skipped when nothing needs AWS."""
    started = time.monotonic()
    if not access.needs_aws:
        return timed("credentials", "aws", started, status="skip", detail="no AWS secret or MSK cluster used")
    import boto3
    import botocore.exceptions

    try:
        # a fresh session: credentials may have been fixed since the last attempt (the default one caches them)
        session = boto3.session.Session()
        identity = session.client("sts", region_name=access.region or session.region_name or "us-east-1").get_caller_identity()
    except botocore.exceptions.NoCredentialsError as exc:
        return timed("credentials", "aws", started, secret_problems.no_credentials(str(exc)))
    except botocore.exceptions.EndpointConnectionError as exc:
        d = Diagnosis(
            problems.CONNECTION_ERROR_VPC, f"cannot reach STS: {exc}",
            "let this machine reach sts.<region>.amazonaws.com (PrivateLink endpoint or NAT), or set AWS_ENDPOINT_URL_STS",
            "EndpointConnectionError",
        )
        return timed("credentials", "aws", started, d)
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        d = Diagnosis(
            problems.ASSUME_ROLE, f"STS GetCallerIdentity answered {err.get('Code')}: {err.get('Message')}",
            "check the credentials (expired session? wrong profile?) and the role's trust policy", str(err.get("Code", "")),
        )
        return timed("credentials", "aws", started, d)
    except botocore.exceptions.BotoCoreError as exc:  # partial credentials, TLS to the endpoint, ...
        d = Diagnosis(problems.ASSUME_ROLE, f"AWS credentials could not be used: {exc}",
                      "check the AWS credential chain (`triggerfish doctor aws-credentials` shows each source)",
                      type(exc).__name__)
        return timed("credentials", "aws", started, d)
    return timed("credentials", "aws", started, detail=f"as {identity.get('Arn', '?')}")


def check_secrets(mapping: Any, access: Access) -> tuple[list[Check], auth.Auth | None]:
    """Fetch and check every secret, then build the librdkafka config (one result per secret)."""
    results: list[Check] = []
    loaded: dict[str, dict[str, Any]] = {}
    for kind, ref in access.secrets.items():
        started = time.monotonic()
        try:
            loaded[kind] = auth.load_secret(kind, ref)
        except SetupError as exc:
            results.append(_from_error(exc, ref, started))
            return results, None
        results.append(timed("secret", ref, started, detail=kind))
    started = time.monotonic()
    try:
        bootstrap = bootstrap_servers(mapping)
        if not bootstrap and access.msk_arn:
            bootstrap, access = auth.msk_bootstrap(access)
        built = auth.build(bootstrap, access, loaded)
    except SetupError as exc:
        # PEM and key checks happen while building; blame the secret that held the bad material.
        target = next((r for k, r in access.secrets.items() if k in exc.detail), "secret")
        results = [r for r in results if r.target != target]
        results.append(_from_error(exc, target, started))
        return results, None
    if not access.secrets:
        results.append(timed("secret", "-", started, status="skip", detail="no secret configured"))
    for d in auth.lambda_parity(built):
        results.append(timed("secret", "lambda-parity", started, d, status="warn"))
    return results, built


def _from_error(exc: SetupError, target: str, started: float) -> Check:
    return timed(exc.stage, target, started, exc.diagnosis)
