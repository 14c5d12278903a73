"""SASL/OAUTHBEARER logins for a mapping: Lambda's OAuth and IAM access types turned into librdkafka settings.

    OAUTHBEARER_AUTH      secret {"clientId", "clientSecret", "tokenEndpointUrl"}: librdkafka's own OIDC client
                          (``sasl.oauthbearer.method=oidc``) fetches and refreshes tokens with the
                          client-credentials grant
    OAUTHBEARER_SCOPE     ``sasl.oauthbearer.scope``
    OAUTHBEARER_AUDIENCE  the ``audience`` token-request parameter (librdkafka has no setting for it, so it rides on
                          the token endpoint URL's query); with IAM_OAUTHBEARER_AUTH, the STS token's audience
    OAUTHBEARER_LOGICAL_CLUSTER, OAUTHBEARER_IDENTITY_POOL
                          SASL extensions ``logicalCluster`` and ``identityPoolId`` (Confluent Cloud's names)
    IAM_AUTH              the MSK IAM scheme: a SigV4-signed token from the AWS credential chain (``oauth_cb``)
    IAM_OAUTHBEARER_AUTH  a JWT from STS GetWebIdentityToken for the audience, minted by confluent-kafka's
                          ``aws_iam`` OIDC plug-in (``sasl.oauthbearer.metadata.authentication.type=aws_iam``)

All of them run inside TLS (``SASL_SSL``), as Lambda's logins do. Pure functions: the secret is read by
:mod:`triggerfish.esm.auth`, which calls :func:`settings` with its JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import SetupError
from triggerfish.esm import problems, secret_problems
from triggerfish.esm.access import Access

#: The OAUTHBEARER_AUTH secret's fields (camelCase, like Lambda's other secrets).
SECRET_FIELDS = ("clientId", "clientSecret", "tokenEndpointUrl")
_EXTENSIONS = {"OAUTHBEARER_LOGICAL_CLUSTER": "logicalCluster", "OAUTHBEARER_IDENTITY_POOL": "identityPoolId"}


def settings(access: Access, creds: dict[str, Any] | None, region: str) -> dict[str, Any]:
    """The librdkafka settings of an OAUTHBEARER_AUTH, IAM_AUTH or IAM_OAUTHBEARER_AUTH login."""
    config: dict[str, Any] = {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}
    login = access.login
    if login == "IAM_AUTH":
        config["oauth_cb"] = msk_iam_oauth_cb(_need_region(login, region))
        return config
    if login == "IAM_OAUTHBEARER_AUTH":
        config.update({
            "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.metadata.authentication.type": "aws_iam",
            "sasl.oauthbearer.config": f"region={_need_region(login, region)},"
                                       f"audience={access.oauth['OAUTHBEARER_AUDIENCE']}",
        })
        return config
    assert creds is not None
    endpoint = token_endpoint(access, creds)
    config.update({
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": creds["clientId"],
        "sasl.oauthbearer.client.secret": creds["clientSecret"],
        "sasl.oauthbearer.token.endpoint.url": endpoint,
    })
    if "OAUTHBEARER_SCOPE" in access.oauth:
        config["sasl.oauthbearer.scope"] = access.oauth["OAUTHBEARER_SCOPE"]
    extensions = [f"{name}={access.oauth[kind]}" for kind, name in _EXTENSIONS.items() if kind in access.oauth]
    if extensions:
        config["sasl.oauthbearer.extensions"] = ",".join(extensions)
    return config


def token_endpoint(access: Access, creds: dict[str, Any]) -> str:
    """The secret's tokenEndpointUrl (checked: http or https), with the audience added as a query parameter."""
    url = str(creds["tokenEndpointUrl"])
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        ref = access.secrets.get("OAUTHBEARER_AUTH", "")
        raise SetupError(Diagnosis(
            problems.SASL_AUTHENTICATION, f"tokenEndpointUrl in the OAUTHBEARER_AUTH secret {ref} is not an http(s) URL",
            f"store the identity provider's token endpoint, e.g. https://idp.example.com/oauth2/token, in "
            f"{secret_problems.SECRET_SHAPES['OAUTHBEARER_AUTH']}", "SecretFormat",
        ).at("secret"))
    audience = access.oauth.get("OAUTHBEARER_AUDIENCE")
    if audience:
        url += ("&" if parts.query else "?") + urlencode({"audience": audience})
    return url


def _need_region(login: str, region: str) -> str:
    if region:
        return region
    raise SetupError(Diagnosis(
        problems.ASSUME_ROLE, f"{login} signs with AWS credentials and no AWS region is configured",
        "set AWS_REGION (or a profile with a region) to the region whose STS endpoint should sign", "NoRegion",
    ).at("credentials"))


def msk_iam_oauth_cb(region: str, role_arn: str | None = None) -> Callable[[str], tuple[str, float]]:
    """An ``oauth_cb`` that signs an MSK IAM token with the AWS credential chain (or by assuming ``role_arn``).

    confluent-kafka wants the expiry in seconds since the epoch; the signer returns milliseconds.
    """
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    def oauth_cb(_config: str) -> tuple[str, float]:
        if role_arn:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_role_arn(region, role_arn)
        else:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000.0

    return oauth_cb
