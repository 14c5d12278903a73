"""A Strimzi-compatible Kafka HTTP bridge: Strimzi's API, config format and error bodies, on librdkafka.

    triggerfish bridge --config bridge.properties

``create_app`` and ``Services`` are imported on first use (PEP 562): a program that only reads a bridge's
properties (``doctor kafka --bridge-config``) does not load the server, its HTTP stack or the schema
registry libraries.
"""

from typing import TYPE_CHECKING

from triggerfish.bridge.config import BridgeConfig, from_file, from_properties
from triggerfish.lazy import lazy_attributes

if TYPE_CHECKING:
    from triggerfish.bridge.app import create_app
    from triggerfish.bridge.services import Services

__all__ = ["BridgeConfig", "Services", "create_app", "from_file", "from_properties"]

_LAZY = {"create_app": ("triggerfish.bridge.app", "create_app"), "Services": ("triggerfish.bridge.services", "Services")}

if not TYPE_CHECKING:  # type checkers see the imports above instead
    __getattr__ = lazy_attributes(__name__, _LAZY, globals())
