"""A Strimzi-compatible Kafka HTTP bridge: Strimzi's API, config format and error bodies, on librdkafka.

    triggerfish bridge --config bridge.properties
"""

from triggerfish.bridge.app import create_app
from triggerfish.bridge.config import BridgeConfig, from_file, from_properties
from triggerfish.bridge.services import Services

__all__ = ["BridgeConfig", "Services", "create_app", "from_file", "from_properties"]
