"""The exceptions triggerfish raises, in one tree a user can catch.

    TriggerfishError            base of everything below
    ├── ConfigError             bad configuration; the message names the field, the value and the fix
    ├── SecretError             a secret could not be fetched or parsed (never carries the secret)
    ├── SetupError              a mapping's setup stage failed (stage, Lambda's PROBLEM text, detail, fix)
    ├── FunctionError           a handler raised, timed out or crashed its worker
    └── LocalKafkaError         the local development broker could not be started or found

Each carries a one-line ``str()`` fit to show a user without a traceback.
"""

from __future__ import annotations

from triggerfish.diagnosis import Diagnosed, Diagnosis


class TriggerfishError(Exception):
    """Base class of every error triggerfish raises on purpose."""


class ConfigError(TriggerfishError):
    """Configuration that cannot work; the message says which field and how to fix it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


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

    def __init__(self, error_type: str, message: str, payload: dict | None = None) -> None:
        self.error_type = error_type
        self.message = message
        self.payload = payload or {"errorMessage": message, "errorType": error_type}
        super().__init__(f"{error_type}: {message}")


class LocalKafkaError(TriggerfishError):
    """The local development Kafka broker could not be started, stopped or found."""
