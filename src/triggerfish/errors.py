"""The exceptions triggerfish raises, in one tree a user can catch.

    TriggerfishError                  base of everything below
    ├── ConfigError                   bad configuration (.field, .message)
    │   └── InvalidParameterError     a value Lambda would reject (.lambda_message, .hint)
    │       ├── ValidationError       it breaks a shape constraint (length, range, enum, pattern)
    │       └── ParameterConflictError  it repeats an existing resource (also a ConflictError)
    ├── SecretError                   a secret could not be fetched or parsed (never carries the secret)
    ├── SetupError                    a mapping's setup stage failed (.diagnosis: stage, target, code, PROBLEM text, detail, fix)
    ├── FunctionError                 a handler raised, timed out or crashed its worker
    ├── FunctionResponseError         a handler's result is not an HTTP response a function URL can send
    ├── DestinationError              an on-failure destination did not take the records (nothing is committed)
    ├── LocalKafkaError               the local development broker could not be started or found
    ├── NotFoundError                 no such resource (.resource)
    │   ├── MappingNotFound           (.uuid)
    │   ├── FunctionNotFound          (.name)
    │   ├── ConsumerNotFound          a bridge consumer instance (.group, .name)
    │   └── UnknownOperationError     the control API has no such operation
    ├── ConflictError                 the resource exists or is in a conflicting state (.resource)
    │   ├── MappingConflict
    │   │   └── ConcurrentChange      another replica changed the mapping while this change was applied
    │   ├── ConsumerExists            (.group, .name)
    │   └── ParameterConflictError
    ├── InUseError                    the resource is busy changing (.resource)
    │   └── MappingInUse
    ├── ThrottledError                too many requests (.reason, .retry_after)
    │   └── FunctionThrottled         every reserved concurrency slot is busy (.name, .limit)
    ├── InvalidRequestError           the request cannot be read (.errors: what is wrong, one per item)
    │   ├── InvalidRequestContentError  the body is not the JSON object it must be
    │   ├── UnsupportedMediaTypeError   the body's Content-Type is not one the operation takes
    │   ├── NotAcceptableError          no response in the media type the Accept header asks for
    │   └── UnprocessableError          well-formed, but its content cannot be acted on
    ├── RequestTooLargeError          the body is over the limit (.limit)
    ├── AuthenticationError           the caller is not who it must be
    │   ├── MissingAuthenticationTokenError
    │   ├── IncompleteSignatureError
    │   ├── UnrecognizedClientError
    │   └── InvalidSignatureError
    ├── RequestRefusedError           the server's policy refuses the request (a cross-site browser request, no key)
    ├── AccessDeniedError             Kafka denied the bridge an ACL operation (.principal, .operation, .resource)
    ├── UnavailableError              a dependency (Kafka) or a disabled part cannot serve now; retry later
    ├── KafkaClientError              the Kafka client failed in a way no other class describes (.code)
    ├── ClusterError                  cluster mode cannot use its Kafka topics (.stage, .fix, .commands)
    └── FencingError                  a site-fencing step could not complete
        ├── TransientFencingError     a retry soon can succeed
        │   └── FencingBusyError      another fencing call holds the lock (.lock_file)
        └── PermanentFencingError     retrying cannot help until a human fixes something

Each carries a one-line ``str()`` fit to show a user without a traceback. How an error looks on a
wire (Lambda's ``x-amzn-ErrorType``, Strimzi's ``error_code``) is the business of the HTTP layer
that answers it: ``triggerfish.api.errors`` and ``triggerfish.bridge.errors`` each keep a table
keyed by these classes.
"""

from __future__ import annotations

from collections.abc import Iterable

from triggerfish.diagnosis import Diagnosed, Diagnosis


class TriggerfishError(Exception):
    """Base class of every error triggerfish raises on purpose."""


class ConfigError(TriggerfishError):
    """Configuration that cannot work; the message says which field and how to fix it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class InvalidParameterError(ConfigError):
    """A field Lambda would reject (Lambda's ``InvalidParameterValueException``).

    ``field`` is the config path (``EventSourceMappings[0].BatchSize``, empty when the whole
    request is at fault), ``lambda_message`` Lambda's own text, ``hint`` the fix.
    """

    def __init__(self, field: str, lambda_message: str, hint: str = "") -> None:
        self.lambda_message = lambda_message
        self.hint = hint
        super().__init__(field, f"{lambda_message} ({hint})" if hint else lambda_message)


class ValidationError(InvalidParameterError):
    """A field breaks the service model's constraints (Lambda's ``ValidationException``)."""


class SecretError(TriggerfishError):
    """A secret could not be read. The message names the secret's reference, never its value."""


class SetupError(Diagnosed, TriggerfishError):
    """A setup stage of an event source mapping failed; ``diagnosis`` says where, why and the fix.

    ``problem`` is Lambda's own ``PROBLEM: ...`` text so runbooks still apply; ``detail`` and
    ``fix`` add what Lambda leaves out.
    """

    def __init__(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis
        super().__init__(f"{diagnosis.problem} [{diagnosis.stage}] {diagnosis.detail}".strip())


class FunctionError(TriggerfishError):
    """A function invocation failed: the handler raised, timed out or crashed."""

    def __init__(self, error_type: str, message: str, payload: dict[str, object] | None = None) -> None:
        self.error_type = error_type
        self.message = message
        self.payload = payload or {"errorMessage": message, "errorType": error_type}
        super().__init__(f"{error_type}: {message}")


class FunctionResponseError(TriggerfishError):
    """A handler's result cannot be sent as the HTTP response a function URL must give (a 502)."""


class DestinationError(TriggerfishError):
    """The on-failure destination did not accept the records; nothing may be committed."""


class LocalKafkaError(TriggerfishError):
    """The local development Kafka broker could not be started, stopped or found."""


# ---------------------------------------------------------------- what a request asked for cannot be done


class NotFoundError(TriggerfishError):
    """The resource a request names does not exist. ``resource`` names it (a UUID, an ARN, a topic)."""

    def __init__(self, message: str, resource: str = "") -> None:
        self.message = message
        self.resource = resource
        super().__init__(message)


class MappingNotFound(NotFoundError):
    """No event source mapping has this UUID."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__("The resource you requested does not exist.", uuid)


class FunctionNotFound(NotFoundError):
    """No function of that name is configured."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Function not found: {name}", name)


class ConsumerNotFound(NotFoundError):
    """The bridge has no consumer instance ``name`` in ``group`` (never created, deleted or expired)."""

    def __init__(self, group: str, name: str) -> None:
        self.group = group
        self.name = name
        super().__init__("The specified consumer instance was not found.", f"{group}/{name}")


class UnknownOperationError(NotFoundError):
    """The control API implements no operation at this method and path."""


class ConflictError(TriggerfishError):
    """The resource already exists, or its state conflicts with the request."""

    def __init__(self, message: str, resource: str = "") -> None:
        self.message = message
        self.resource = resource
        super().__init__(message)


class MappingConflict(ConflictError):
    """An event source mapping with the same source, function and topic, or consumer group, exists."""


class ConcurrentChange(MappingConflict):
    """Another request (on any replica) changed the mapping between reading it and writing the change."""


class ConsumerExists(ConflictError):
    """A bridge consumer instance of that name already exists in the group."""

    def __init__(self, group: str, name: str) -> None:
        self.group = group
        self.name = name
        super().__init__("A consumer instance with the specified name already exists in the Kafka Bridge.",
                         f"{group}/{name}")


class ParameterConflictError(ConflictError, InvalidParameterError):
    """A configured resource repeats one declared before it (Lambda's ``ResourceConflictException``)."""

    def __init__(self, field: str, lambda_message: str, hint: str = "") -> None:
        InvalidParameterError.__init__(self, field, lambda_message, hint)
        self.resource = field


class InUseError(TriggerfishError):
    """The resource is changing (creating, updating, deleting); retry when it settles."""

    def __init__(self, message: str, resource: str = "") -> None:
        self.message = message
        self.resource = resource
        super().__init__(message)


class MappingInUse(InUseError):
    """The event source mapping is in a transitional state."""


class ThrottledError(TriggerfishError):
    """Too many requests: ``reason`` is Lambda's throttle reason, ``retry_after`` the seconds to wait."""

    def __init__(
        self,
        message: str = "Rate Exceeded.",
        reason: str = "ReservedFunctionConcurrentInvocationLimitExceeded",
        retry_after: int = 1,
    ) -> None:
        self.message = message
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(message)


class FunctionThrottled(ThrottledError):
    """``invoke(..., wait=False)`` found every one of the function's concurrency slots busy
    (Lambda's TooManyRequestsException, reason ReservedFunctionConcurrentInvocationLimitExceeded)."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        super().__init__(f"Rate Exceeded: function {name} already runs {limit} invocation(s) at once "
                         "(ReservedConcurrentExecutions); retry later or raise the limit")


class InvalidRequestError(TriggerfishError):
    """The request cannot be read as sent. ``errors`` lists each problem when there are several."""

    def __init__(self, message: str, errors: Iterable[str] = ()) -> None:
        self.message = message
        self.errors = list(errors)
        super().__init__(message)


class InvalidRequestContentError(InvalidRequestError):
    """The body is not JSON, or not the JSON object the operation takes."""


class UnsupportedMediaTypeError(InvalidRequestError):
    """The body's Content-Type is not one the operation takes."""


class NotAcceptableError(InvalidRequestError):
    """The response cannot be given in the media type the Accept header asks for."""


class UnprocessableError(InvalidRequestError):
    """The request is well-formed, but what it asks for cannot be done (a bad value, an invalid record)."""


class RequestTooLargeError(TriggerfishError):
    """The request body is larger than ``limit`` bytes."""

    def __init__(self, message: str, limit: int) -> None:
        self.message = message
        self.limit = limit
        super().__init__(message)


class AuthenticationError(TriggerfishError):
    """The caller did not prove who it is (no credentials, or wrong ones)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class MissingAuthenticationTokenError(AuthenticationError):
    """The request is not signed at all."""


class IncompleteSignatureError(AuthenticationError):
    """The signature is malformed or leaves out what must be signed."""


class UnrecognizedClientError(AuthenticationError):
    """The signature names an access key the server does not know."""


class InvalidSignatureError(AuthenticationError):
    """The signature does not match the request (wrong secret, altered request, clock skew)."""


class RequestRefusedError(TriggerfishError):
    """The server's policy refuses the request: a header a browser sent cross-site, or no key to check it."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class AccessDeniedError(TriggerfishError):
    """Kafka denied ``operation`` on ``resource`` to ``principal``; the message names the ACL to add."""

    def __init__(self, message: str, principal: str, operation: str, resource: str) -> None:
        self.message = message
        self.principal = principal
        self.operation = operation
        self.resource = resource
        super().__init__(message)


class UnavailableError(TriggerfishError):
    """What the request needs cannot serve it now (Kafka unreachable or refusing, a part disabled)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class KafkaClientError(TriggerfishError):
    """The Kafka client failed in a way no other class describes. ``code`` is librdkafka's, when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.message = message
        self.code = code
        super().__init__(message)


class ClusterError(TriggerfishError):
    """Cluster mode cannot use the Kafka that holds its state: ``stage`` says where (topics, configs,
    status), ``fix`` what to do; ``commands`` the shell lines that fix it, when there are some."""

    def __init__(self, stage: str, message: str, fix: str = "", commands: Iterable[str] = ()) -> None:
        self.stage = stage
        self.message = message
        self.fix = fix
        self.commands = list(commands)
        text = f"cluster {stage}: {message}" + (f"; {fix}" if fix else "")
        super().__init__(text + "".join(f"\n    {line}" for line in self.commands))


# ---------------------------------------------------------------- site fencing


class FencingError(TriggerfishError):
    """A fencing step could not complete. ``str()`` is safe to log: it never carries a secret.

    Raised as is only for the unexpected; the two subclasses say whether Alertmanager should retry.
    """


class TransientFencingError(FencingError):
    """A retry soon can succeed: timeouts, throttling, 5xx from a dependency, a cache not yet offline."""


class PermanentFencingError(FencingError):
    """Retrying now cannot help (wrong names, rejected credentials, missing permission)."""


class FencingBusyError(TransientFencingError):
    """Another fencing call holds the single-flight lock at ``lock_file``; the retry decides from its result."""

    def __init__(self, lock_file: str) -> None:
        self.lock_file = lock_file
        super().__init__(f"another fencing call holds {lock_file}")
