"""The result of one check, made by the ESM's setup stages and by the doctor: a status around a Diagnosis.

The doctor's ``--json`` rows are :meth:`Check.to_dict` (stage, target, status, problem, detail, fix);
a mapping's ``Stages`` list in its status is :meth:`Check.stage_dict`, which adds the duration and the
client's error code.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Literal, get_args

from triggerfish.diagnosis import Diagnosed, Diagnosis

Status = Literal["ok", "fail", "warn", "skip"]
STATUSES: tuple[Status, ...] = get_args(Status)


@dataclass(frozen=True)
class Check(Diagnosed):
    """How one checked thing went (``status``, how long it took) and what was found (``diagnosis``)."""

    status: Status
    diagnosis: Diagnosis
    duration_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    @classmethod
    def of(cls, stage: str, target: str, status: Status, problem: str = "", detail: str = "", fix: str = "", *,
           code: str = "", duration_ms: float = 0.0) -> Check:
        """A check from its fields, in the order the doctor's JSON lists them."""
        return cls(status, Diagnosis(problem, detail, fix, code, stage, target), duration_ms)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def replace(self, *, status: Status | None = None, **diagnosis: str) -> Check:
        """A copy with another status and/or other diagnosis fields (``target=``, ``detail=``, ...)."""
        return Check(status or self.status, dataclasses.replace(self.diagnosis, **diagnosis), self.duration_ms)

    def to_dict(self) -> dict[str, object]:
        d = self.diagnosis
        return {"stage": d.stage, "target": d.target, "status": self.status, "problem": d.problem,
                "detail": d.detail, "fix": d.fix}

    def stage_dict(self) -> dict[str, object]:
        return {**self.to_dict(), "duration_ms": self.duration_ms, "code": self.code}


def timed(stage: str, target: str, started: float, diagnosis: Diagnosis | None = None, *,
          status: Status | None = None, detail: str = "") -> Check:
    """A check timed from ``started`` (a ``time.monotonic()`` value); failed when a diagnosis is given."""
    ms = round((time.monotonic() - started) * 1000, 1)
    if diagnosis is None:
        return Check.of(stage, target, status or "ok", detail=detail, duration_ms=ms)
    return Check(status or "fail", diagnosis.at(stage, target), ms)
