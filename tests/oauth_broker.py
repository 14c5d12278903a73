"""A private single-node Kafka broker whose SASL_SSL listener takes OAUTHBEARER tokens, validated as JWTs.

Kafka's own ``OAuthBearerValidatorCallbackHandler`` checks each token's signature against a JWKS endpoint
(``sasl.oauthbearer.jwks.endpoint.url``) and its audience and issuer; Kafka 4 only fetches URLs named in the
``org.apache.kafka.sasl.oauthbearer.allowed.urls`` system property. Started by :mod:`private_kafka` (the
shared broker is left alone) with this module's listener settings.

    port_base       PLAINTEXT   for test setup (topics, producing)
    port_base + 1   SASL_SSL    OAUTHBEARER only
    port_base + 3   CONTROLLER
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import private_kafka

_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
_LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"


@dataclass(frozen=True)
class OAuthKafka:
    broker: private_kafka.PrivateKafka

    @property
    def bootstrap(self) -> str:  # PLAINTEXT, for setup
        return self.broker.bootstrap

    @property
    def oauth_bootstrap(self) -> str:  # SASL_SSL + OAUTHBEARER
        return self.broker.listener(1)

    @property
    def ca_file(self) -> Path:
        return self.broker.ca_file


def start(home: Path, port_base: int, *, jwks_url: str, token_url: str, audience: str, issuer: str) -> OAuthKafka:
    """Format and start the broker under ``home``; the JWKS endpoint must already answer."""
    settings = {
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": _LOGIN_MODULE,
        "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class": _HANDLER,
        "sasl.oauthbearer.jwks.endpoint.url": jwks_url,
        "sasl.oauthbearer.expected.audience": audience,
        "sasl.oauthbearer.expected.issuer": issuer,
    }
    return OAuthKafka(private_kafka.start(
        home, port_base, {"SASL_SSL": 1}, settings,
        java_options=[f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={jwks_url},{token_url}"]))


def stop(env: OAuthKafka) -> None:
    private_kafka.stop(env.broker)
