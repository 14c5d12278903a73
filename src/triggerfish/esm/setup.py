"""A mapping's setup before its first poll: run the setup stages until they all pass.

The stages themselves (credentials, secrets, DNS, TCP, TLS, SASL, topic, group) are ``esm/stages.py``;
this is the loop around them. On a failure the status shows Lambda's PROBLEM text, the stop code as
StateTransitionReason, the failed stage's detail and fix, and every stage's result; setup is retried with
capped exponential backoff, so fixing the cause (an ACL, a secret) is enough: no restart.

``first_poll`` and ``first_invoke`` come after the checked stages: ``record_once`` adds them to the
status the first time the runner polls and invokes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from triggerfish.checks import Check
from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import ConfigError, SetupError, TriggerfishError
from triggerfish.esm import auth, problems, stages
from triggerfish.esm.clock import Clock
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.state import ENABLED, ENABLING, USER_INITIATED, MappingStatus

_log = logging.getLogger("triggerfish.esm")

_BACKOFF_MAX_S = 60.0
#: Runs the setup stages of a mapping: their results and, when the secret stage passed, the resolved auth.
SetupCheck = Callable[[MappingConfig], tuple[list[Check], auth.Auth | None]]


def set_up(
    mapping: MappingConfig,
    status: MappingStatus,
    *,
    stop: threading.Event,
    clock: Clock,
    save_status: Callable[[], None] = lambda: None,
    check: SetupCheck = stages.check_mapping,
) -> auth.Auth | None:
    """Run the setup stages until they all pass; the resolved auth (its ``config`` is the consumer's
    librdkafka settings), or None when stopped before setup succeeded."""
    delay = 1.0
    while not stop.is_set():
        results, resolved, problem = _check(mapping, check)
        status.set_stages([r.stage_dict() for r in results])
        if stop.is_set():
            return None
        if problem is None and resolved is not None:
            status.set_state(ENABLED, USER_INITIATED, problem=None)
            save_status()
            return resolved
        assert problem is not None  # check_mapping resolves the auth whenever no stage failed
        _log.error("mapping %s: %s [%s] %s; fix: %s", mapping.uuid, problem.problem, problem.stage,
                  problem.detail, problem.fix)
        # one step: a re-setup after a login failure must not show Enabled with the new PROBLEM
        status.set_state(ENABLING, problems.reason_for(problem.problem), problem=problem)
        save_status()
        clock.sleep(delay)
        delay = min(delay * 2, _BACKOFF_MAX_S)
    return None


def _check(mapping: MappingConfig, check: SetupCheck) -> tuple[list[Check], auth.Auth | None, Diagnosis | None]:
    """One run of the stages: their results, the resolved auth, and the problem of the first failure."""
    try:
        results, resolved = check(mapping)
    except (ConfigError, TriggerfishError) as exc:
        return [], None, _problem_of(exc)
    except Exception as exc:  # noqa: BLE001 - a surprise in a check must not end the retries
        _log.exception("mapping %s: setup check failed unexpectedly", mapping.uuid)
        return [], None, Diagnosis(problems.INTERNAL, f"{type(exc).__name__}: {exc}", "see the engine log", stage="setup")
    return results, resolved, stages.setup_problem(results)


def _problem_of(exc: BaseException) -> Diagnosis:
    """The status problem of an error raised while setting up."""
    if isinstance(exc, SetupError):
        return exc.diagnosis
    if isinstance(exc, ConfigError):
        return Diagnosis(problems.CONNECTION_ERROR, str(exc), "fix the mapping's configuration", stage="config")
    return Diagnosis(problems.CONNECTION_ERROR, str(exc), "", stage="setup")


def record_once(
    status: MappingStatus, stage: str, target: str, ok: bool, detail: str, problem: Diagnosis | None, duration_ms: float
) -> None:
    """Record ``first_poll`` / ``first_invoke`` (after the checked stages) the first time they happen."""
    if any(r.get("stage") == stage for r in status.stages):
        return
    record = Check.of(stage, target, "ok" if ok else "fail", problem.problem if problem else "",
                      detail, problem.fix if problem else "", duration_ms=round(duration_ms, 1))
    status.set_stages([*status.stages, record.stage_dict()])
