"""A mapping's observable state, as Lambda reports it, plus per-partition offsets.

``State`` is one of Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting;
``StateTransitionReason`` says who made the last change (``USER_INITIATED``) or Lambda's stop code;
``LastProcessingResult`` is ``No records processed``, ``OK`` or the ``PROBLEM: ...`` of ``problem``, the
:class:`~triggerfish.diagnosis.Diagnosis` behind it; ``stages`` holds the setup stage results (filled by
the setup in ``esm/stages.py``). Thread-safe; ``to_dict``/``from_dict`` is what the store persists.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from triggerfish.diagnosis import Diagnosis

CREATING, ENABLING, ENABLED, DISABLING, DISABLED, UPDATING, DELETING = (
    "Creating", "Enabling", "Enabled", "Disabling", "Disabled", "Updating", "Deleting",
)
_STATES = (CREATING, ENABLING, ENABLED, DISABLING, DISABLED, UPDATING, DELETING)
#: The states of a change still being applied (Lambda refuses another update in them).
TRANSITIONAL = (CREATING, ENABLING, DISABLING, UPDATING, DELETING)
USER_INITIATED = "USER_INITIATED"
NO_RECORDS = "No records processed"
OK = "OK"
_KEEP = object()  # set_state(problem=...) not given: the problem stays as it is


@dataclass
class _PartitionStatus:
    topic: str
    partition: int
    #: Next offset to read after the last commit (Kafka's convention), None before any commit.
    committed: int | None = None
    #: Log end offset last seen by the consumer.
    high_watermark: int | None = None
    assigned: bool = True
    #: Log start offset, for the lag of a partition with nothing committed yet.
    low_watermark: int | None = None

    @property
    def lag(self) -> int | None:
        """Records not yet committed: log end minus committed offset (Lambda's OffsetLag)."""
        if self.high_watermark is None or self.high_watermark < 0:
            return None
        base = self.committed if self.committed is not None else self.low_watermark
        return None if base is None or base < 0 else max(0, self.high_watermark - base)


class MappingStatus:
    """The live status of one mapping; every mutation stamps ``last_modified``."""

    def __init__(self, state: str = CREATING, reason: str = USER_INITIATED) -> None:
        self._lock = threading.Lock()
        self.state = state
        self.state_transition_reason = reason
        self.last_processing_result = NO_RECORDS
        self.last_modified = time.time()
        self.partitions: dict[tuple[str, int], _PartitionStatus] = {}
        self.stages: list[dict[str, Any]] = []
        self.problem: Diagnosis | None = None
        self.invocations = 0
        self.records = 0
        self.errors = 0
        self.host = ""
        #: The brokers cannot be reached: shown over what invokes report until it clears (esm/connection.py).
        self._outage: Diagnosis | None = None
        self._behind: tuple[str, Diagnosis | None] = (NO_RECORDS, None)  # the result the outage covers

    def set_state(self, state: str, reason: str = USER_INITIATED, *, problem: Diagnosis | None | object = _KEEP) -> None:
        """Change State; with ``problem`` (a Diagnosis, or None to clear) set it in the same step, so a
        reader never sees the new State with the old problem (e.g. Enabled with a setup PROBLEM)."""
        with self._lock:
            self.state = state
            self.state_transition_reason = reason
            self.last_modified = time.time()
            if problem is not _KEEP:
                self._set_problem(problem)  # type: ignore[arg-type]

    def ok(self, records: int) -> None:
        with self._lock:
            self.invocations += 1
            self.records += records
            self._result(OK, None)

    def failed_invoke(self, problem: Diagnosis) -> None:
        with self._lock:
            self.invocations += 1
            self.errors += 1
            self._result(problem.problem, problem)

    def _result(self, result: str, problem: Diagnosis | None) -> None:  # with self._lock held
        # A batch of records fetched before the outage says nothing about reaching the brokers now.
        if self._outage is not None:
            self._behind = (result, problem)
            return
        self.last_processing_result = result
        self.problem = problem

    def set_outage(self, problem: Diagnosis | None) -> None:
        """The brokers cannot be reached (``problem``) or can again (None): while set, LastProcessingResult
        is this PROBLEM whatever invokes report; clearing it restores the result it covered."""
        with self._lock:
            if problem is not None:
                if self._outage is None:
                    self._behind = (self.last_processing_result, self.problem)
                if self._outage is None or self.problem is self._outage:
                    self.last_processing_result, self.problem = problem.problem, problem
                self._outage = problem
            elif self._outage is not None:
                if self.problem is self._outage:  # not replaced by a more specific problem meanwhile
                    self.last_processing_result, self.problem = self._behind
                self._outage = None

    @property
    def outage(self) -> Diagnosis | None:
        return self._outage

    def set_problem(self, problem: Diagnosis | None) -> None:
        """A setup/consumer problem (None clears it back to the previous processing result)."""
        with self._lock:
            self._set_problem(problem)

    def _set_problem(self, problem: Diagnosis | None) -> None:  # with self._lock held
        if problem is None:
            if self.problem is not None and self.last_processing_result == self.problem.problem:
                self.last_processing_result = OK if self.invocations > self.errors else NO_RECORDS
            self.problem = None
        else:
            self.problem = problem
            self.last_processing_result = problem.problem

    def set_stages(self, stages: list[dict[str, Any]]) -> None:
        with self._lock:
            self.stages = list(stages)

    def partition(self, topic: str, partition: int) -> _PartitionStatus:
        with self._lock:
            key = (topic, partition)
            ps = self.partitions.get(key)
            if ps is None:
                ps = self.partitions[key] = _PartitionStatus(topic, partition)
            return ps

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "State": self.state,
                "StateTransitionReason": self.state_transition_reason,
                "LastProcessingResult": self.last_processing_result,
                "LastModified": self.last_modified,
                "Partitions": [
                    {**asdict(p), "lag": p.lag} for _, p in sorted(self.partitions.items())
                ],
                "Stages": list(self.stages),
                "Problem": self.problem.problem_dict() if self.problem else None,
                "Invocations": self.invocations,
                "Records": self.records,
                "Errors": self.errors,
                "Host": self.host,
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MappingStatus:
        s = cls(data.get("State", CREATING), data.get("StateTransitionReason", USER_INITIATED))
        s.last_processing_result = data.get("LastProcessingResult", NO_RECORDS)
        s.last_modified = data.get("LastModified", time.time())
        for p in data.get("Partitions", []):
            s.partitions[(p["topic"], p["partition"])] = _PartitionStatus(
                p["topic"], p["partition"], p.get("committed"), p.get("high_watermark"), p.get("assigned", True),
                p.get("low_watermark"),
            )
        s.stages = list(data.get("Stages", []))
        problem = data.get("Problem")
        s.problem = Diagnosis.from_problem_dict(problem) if problem else None
        s.invocations = data.get("Invocations", 0)
        s.records = data.get("Records", 0)
        s.errors = data.get("Errors", 0)
        s.host = data.get("Host", "")
        return s


@dataclass
class EventSourceMapping:
    """A mapping's configuration and status together: what get/list return."""

    config: Any  # MappingConfig
    status: MappingStatus
    origin: str = "config"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return str(self.config.uuid)

    def to_api(self, function_arn: str, region: str = "us-east-1", account: str = "000000000000") -> dict[str, Any]:
        """Lambda's EventSourceMappingConfiguration shape (lambda-kafka-esm.md §1.2): the configuration
        without the request-only members (FunctionName, Enabled, Tags; Lambda never echoes tags) and
        triggerfish's BootstrapServers shorthand, plus the status members."""
        out: dict[str, Any] = self.config.to_dict()
        for request_only in ("FunctionName", "Enabled", "Tags", "BootstrapServers"):
            out.pop(request_only, None)
        status = self.status.to_dict()
        out.update(
            UUID=self.config.uuid,
            EventSourceMappingArn=f"arn:aws:lambda:{region}:{account}:event-source-mapping:{self.config.uuid}",
            FunctionArn=function_arn,
            LastModified=status["LastModified"],
            LastProcessingResult=status["LastProcessingResult"],
            State=status["State"],
            StateTransitionReason=status["StateTransitionReason"],
        )
        return out
