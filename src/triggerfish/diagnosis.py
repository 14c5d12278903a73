"""The one record of a finding about a mapping's setup: where it is, Lambda's text, what happened, the fix.

The setup stages, the doctor, a mapping's status (``Problem`` and ``LastProcessingResult``) and
:class:`~triggerfish.errors.SetupError` all carry a :class:`Diagnosis`; the builders that turn an
observation into one are in :mod:`triggerfish.esm.problems`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Diagnosis:
    """One finding: which stage, about which broker or resource, and what to do about it.

    ``problem`` is Lambda's own ``PROBLEM: ...`` sentence for setup failures (so runbooks still apply)
    or the doctor's one-line verdict; ``target`` is the broker ``host:port`` it is about (the topic,
    group, secret or other resource for the stages that are not about a broker; "" when none).
    """

    problem: str
    detail: str = ""
    fix: str = ""
    code: str = ""  # the client's own error code: "_SSL", "ECONNREFUSED", "verify 62", ...
    stage: str = ""
    target: str = ""

    def at(self, stage: str, target: str | None = None) -> Diagnosis:
        """This diagnosis placed at ``stage`` (and ``target``, when given)."""
        return dataclasses.replace(self, stage=stage, target=self.target if target is None else target)

    def problem_dict(self) -> dict[str, str]:
        """The shape a mapping's status stores and shows as ``Problem``."""
        return {"text": self.problem, "detail": self.detail, "fix": self.fix, "stage": self.stage}

    @classmethod
    def from_problem_dict(cls, data: dict[str, Any]) -> Diagnosis:
        """Read back :meth:`problem_dict` (as persisted by an older or this version)."""
        return cls(str(data.get("text", "")), str(data.get("detail", "")), str(data.get("fix", "")),
                   stage=str(data.get("stage", "")))


class Diagnosed:
    """Read access to the fields of ``self.diagnosis``, for the records that carry one (a check, an error)."""

    diagnosis: Diagnosis

    @property
    def stage(self) -> str:
        return self.diagnosis.stage

    @property
    def target(self) -> str:
        return self.diagnosis.target

    @property
    def problem(self) -> str:
        return self.diagnosis.problem

    @property
    def detail(self) -> str:
        return self.diagnosis.detail

    @property
    def fix(self) -> str:
        return self.diagnosis.fix

    @property
    def code(self) -> str:
        return self.diagnosis.code
