"""triggerfish: Lambda's Kafka trigger, anywhere.

The public surface is small: the exception tree in :mod:`triggerfish.errors` and the command line
(`triggerfish --help`). Everything else is organised by part: ``esm`` (the event-source-mapping
engine), ``functions`` (the Lambda-compatible function runtime), ``api`` (the control API),
``bridge`` (the Kafka HTTP bridge), ``doctor`` and ``localkafka`` (a real broker for development).
"""

from triggerfish.errors import ConfigError, LocalKafkaError, TriggerfishError

__version__ = "0.1.0"
__all__ = ["ConfigError", "LocalKafkaError", "TriggerfishError", "__version__"]
