"""Diagnoses for credentials and secrets: AWS credentials missing, a secret unreadable or of the wrong shape.

The ``PROBLEM:`` texts are Lambda's, from :mod:`triggerfish.esm.problems`; these builders add the detail and the
fix. They get secret references and field names, never secret values.
"""

from __future__ import annotations

from triggerfish.diagnosis import Diagnosis
from triggerfish.esm.problems import (
    ASSUME_ROLE,
    CONNECTION_ERROR_VPC,
    INVALID_CERTIFICATE,
    NOT_PEM,
    SASL_AUTHENTICATION,
)


def no_credentials(error: str) -> Diagnosis:
    return Diagnosis(
        ASSUME_ROLE,
        f"no usable AWS credentials: {error}",
        "give triggerfish AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IRSA or "
        "an instance role); they are needed to read Secrets Manager secrets and for MSK IAM auth "
        "(`triggerfish doctor aws-credentials` shows where each source stopped)",
        "NoCredentials",
    )


def secret_unreachable(ref: str, error: str) -> Diagnosis:
    return Diagnosis(
        CONNECTION_ERROR_VPC,
        error,
        f"check that Secrets Manager is reachable and that the secret {ref} exists in the function's region "
        "and can be read (secretsmanager:GetSecretValue, plus kms:Decrypt for a customer-managed key)",
        "SecretError",
    )


def secret_field_missing(kind: str, ref: str, fields: list[str]) -> Diagnosis:
    problem = NOT_PEM if kind in ("CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE") else SASL_AUTHENTICATION
    shape = SECRET_SHAPES.get(kind, "")
    return Diagnosis(
        problem,
        f"the {kind} secret {ref} has no {' or '.join(repr(f) for f in fields)} field",
        f"store the secret as JSON {shape}",
        "SecretFormat",
    )


def not_pem(kind: str, ref: str, what: str) -> Diagnosis:
    return Diagnosis(
        NOT_PEM,
        f"the {what} in the {kind} secret {ref} is not PEM",
        f"put the {what} in PEM form (lines starting with -----BEGIN {_PEM_LABEL.get(what, 'CERTIFICATE')}-----) "
        f"into the secret's JSON {SECRET_SHAPES.get(kind, '')}",
        "NotPEM",
    )


def invalid_key(kind: str, ref: str, why: str) -> Diagnosis:
    return Diagnosis(
        INVALID_CERTIFICATE,
        f"the private key in the {kind} secret {ref} cannot be used: {why}",
        "store the key as PKCS#8 PEM (-----BEGIN PRIVATE KEY----- or -----BEGIN ENCRYPTED PRIVATE KEY----- with "
        "privateKeyPassword); convert a PKCS#1 key with `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
        "InvalidKey",
    )


def invalid_certificate(kind: str, ref: str, why: str) -> Diagnosis:
    return Diagnosis(
        INVALID_CERTIFICATE,
        f"the certificate in the {kind} secret {ref} cannot be used: {why}",
        "store the client certificate first, then any intermediates and the root, each as a PEM block",
        "InvalidCertificate",
    )


SECRET_SHAPES = {
    "BASIC_AUTH": '{"username": "...", "password": "..."}',
    "SASL_SCRAM_256_AUTH": '{"username": "...", "password": "..."}',
    "SASL_SCRAM_512_AUTH": '{"username": "...", "password": "..."}',
    "CLIENT_CERTIFICATE_TLS_AUTH": '{"certificate": "<PEM chain>", "privateKey": "<PKCS#8 PEM>", "privateKeyPassword": "<optional>"}',
    "SERVER_ROOT_CA_CERTIFICATE": '{"certificate": "<root CA PEM>"}',
    "OAUTHBEARER_AUTH": '{"clientId": "...", "clientSecret": "...", "tokenEndpointUrl": "https://..."}',
}
_PEM_LABEL = {"certificate": "CERTIFICATE", "private key": "PRIVATE KEY"}
