"""triggerfish: Lambda's Kafka trigger, anywhere.

The public API is what ``__all__`` lists, plus the command line (``triggerfish --help``):

- ``App``: the state store, function runtime, event source mapping engine and control API, started
  and stopped together (``with App(functions, mappings) as app: ...``);
- ``FunctionConfig``, ``MappingConfig``: a function and an event source mapping, from Lambda's field
  names (``from_dict``); ``load_project`` reads and validates a ``triggerfish.yaml`` into a
  ``ProjectConfig``; ``AccessKey`` is the key pair the control API can require (``load_access_key``
  reads it as ``triggerfish run --require-auth`` does);
- the exception tree rooted at ``TriggerfishError``: the kinds a caller tells apart are here, every
  subclass is in ``triggerfish.errors``; ``SetupError.diagnosis`` is a ``Diagnosis`` (stage, target,
  code, Lambda's PROBLEM text, detail, fix), the record status and the doctor report too.

The rest is organised by part (``esm`` the engine, ``functions`` the function runtime, ``api`` the
control API, ``bridge`` the Kafka HTTP bridge, ``doctor``, ``localkafka``) and may change.

Only the exceptions are imported with the package. Every handler's worker process imports this package
too, and must not pay for the engine and the HTTP server (0.06 s -> 0.4 s per worker start), so the
other names are imported on first use (PEP 562) from the fixed table below.
"""

from typing import TYPE_CHECKING

from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    DestinationError,
    FencingError,
    FunctionError,
    InUseError,
    InvalidParameterError,
    LocalKafkaError,
    NotFoundError,
    SecretError,
    SetupError,
    ThrottledError,
    TriggerfishError,
)
from triggerfish.lazy import lazy_attributes

if TYPE_CHECKING:
    from triggerfish.api.sigv4 import AccessKey, load_access_key
    from triggerfish.app import App
    from triggerfish.config import ProjectConfig
    from triggerfish.config import load as load_project
    from triggerfish.esm.config import MappingConfig
    from triggerfish.functions.config import FunctionConfig

__version__ = "0.1.0"
__all__ = [
    "AccessKey",
    "App",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "DestinationError",
    "Diagnosis",
    "FencingError",
    "FunctionConfig",
    "FunctionError",
    "InUseError",
    "InvalidParameterError",
    "LocalKafkaError",
    "MappingConfig",
    "NotFoundError",
    "ProjectConfig",
    "SecretError",
    "SetupError",
    "ThrottledError",
    "TriggerfishError",
    "__version__",
    "load_access_key",
    "load_project",
]

#: Public name -> (module, attribute), imported on first access.
_LAZY = {
    "AccessKey": ("triggerfish.api.sigv4", "AccessKey"),
    "App": ("triggerfish.app", "App"),
    "FunctionConfig": ("triggerfish.functions.config", "FunctionConfig"),
    "MappingConfig": ("triggerfish.esm.config", "MappingConfig"),
    "ProjectConfig": ("triggerfish.config", "ProjectConfig"),
    "load_access_key": ("triggerfish.api.sigv4", "load_access_key"),
    "load_project": ("triggerfish.config", "load"),
}

if not TYPE_CHECKING:  # type checkers see the imports above instead
    __getattr__ = lazy_attributes(__name__, _LAZY, globals())

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
