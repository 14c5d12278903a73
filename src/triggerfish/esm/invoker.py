"""Invoke a mapping's function with one batch and classify the outcome for the retry policy."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from triggerfish.errors import FunctionNotFound
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.esm.retry import Outcome
from triggerfish.functions.batch import pack_parts
from triggerfish.functions.runtime import FunctionRuntime, InvokeResult
from triggerfish.json_input import loads

_log = logging.getLogger("triggerfish.esm")


class Invoker:
    def __init__(self, runtime: FunctionRuntime, function: str, builder: EventBuilder, *, parse_response: bool) -> None:
        self.runtime = runtime
        self.function = function
        self.builder = builder
        #: Only ReportBatchItemFailures needs the response decoded; otherwise skip the cost.
        self.parse_response = parse_response

    def invoke(self, records: Sequence[Record]) -> tuple[Outcome, InvokeResult | None]:
        started = time.perf_counter()
        try:
            result = self.runtime.invoke_records(self.function, pack_parts(self.builder.envelope, records),
                                                 lambda: self.builder.build(records))
        except FunctionNotFound as exc:
            return Outcome(True, error_type="ResourceNotFoundException", error_message=str(exc)), None
        if result.ok:
            if _log.isEnabledFor(logging.INFO):  # the size walks every record: only when it is logged
                _log.info("%s <- %s (%d records, %d bytes) OK in %.0f ms", self.function, _span(records), len(records),
                          self.builder.size(records), (time.perf_counter() - started) * 1000)
            if not self.parse_response:
                return _SUCCEEDED, result
            try:
                body = loads(result.payload) if result.payload else None
            except ValueError:
                body = None
            return Outcome(False, payload=body), result
        err = result.error or {}
        _log.warning("%s <- %s (%d records) failed in %.0f ms: %s: %s", self.function, _span(records), len(records),
                     (time.perf_counter() - started) * 1000, err.get("errorType"), err.get("errorMessage"))
        return Outcome(True, error_type=str(err.get("errorType", "Unknown")),
                       error_message=str(err.get("errorMessage", ""))), result


#: A success whose response is not read (no ReportBatchItemFailures): one frozen instance for every batch.
_SUCCEEDED = Outcome(False)


def _span(records: Sequence[Record]) -> str:
    first, last = records[0], records[-1]
    return f"{first.topic}-{first.partition}@{first.offset}" + (f"..{last.offset}" if len(records) > 1 else "")
