"""The probes behind a mapping's setup stages and ``triggerfish doctor kafka``: each looks at one thing.

    kafka_wire   the Kafka ApiVersions request and the check of its answer (protocol only)
    network      DNS and TCP, per broker
    tls          the TLS handshake as librdkafka would do it, and the broker certificate
    admin        librdkafka's AdminClient: SASL login, topic, consumer group, advertised brokers
    aws          AWS credentials and the mapping's secrets

Each probe returns a :class:`~triggerfish.checks.Check`; the order they run in, and which failure
becomes the mapping's problem, is :mod:`triggerfish.esm.stages`'s.
"""
