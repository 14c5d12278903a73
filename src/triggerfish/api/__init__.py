"""Lambda's control API over HTTP: event source mappings, functions, Invoke, function URLs,
``/metrics`` and ``/health``, all on one server (``triggerfish run --host/--port``)."""

from triggerfish.api.app import create_app
from triggerfish.api.engine import EngineBackend
from triggerfish.api.server import ApiServer
from triggerfish.api.sigv4 import AccessKey, load_access_key
from triggerfish.api.trust import Trust

__all__ = ["AccessKey", "ApiServer", "EngineBackend", "Trust", "create_app", "load_access_key"]
