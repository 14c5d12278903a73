"""The one record both the ESM's setup stages and the doctor produce: what was checked, how it went, the fix.

The doctor's ``--json`` schema is exactly these six fields; the ESM's ``StageResult`` adds timing to it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, get_args

Status = Literal["ok", "fail", "warn", "skip"]
STATUSES: tuple[Status, ...] = get_args(Status)


@dataclass(frozen=True)
class Check:
    """One checked thing: which stage, against what, how it went, and what to do about it."""

    stage: str
    target: str
    status: Status
    problem: str = ""
    detail: str = ""
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def as_check(self) -> Check:
        """Just the six shared fields (drops what a subclass adds)."""
        return Check(self.stage, self.target, self.status, self.problem, self.detail, self.fix)
