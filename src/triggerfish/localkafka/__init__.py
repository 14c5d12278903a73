"""A real Apache Kafka broker on demand, for development, demos and tests.

``up()`` fetches the broker's jars from Maven Central (once), generates throw-away TLS material and
starts a single-node KRaft broker with PLAINTEXT, SASL_SSL and mTLS listeners and ACLs on.
"""

from triggerfish.localkafka.broker import DEFAULT_PORT_BASE, KafkaEnv, down, status, up

__all__ = ["DEFAULT_PORT_BASE", "KafkaEnv", "down", "status", "up"]
