"""Big request bodies reach the worker through its shared region: the handler still sees Lambda's event exactly."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from esm_helpers import function_config, write_handler
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.functions.batch import pack_parts, pack_records
from triggerfish.functions.region import REGION_MIN, RegionWriter, new_region
from triggerfish.functions.runtime import FunctionRuntime

HANDLERS = """
import hashlib, json, time

def digest(event, context):
    if isinstance(event, dict) and event.get("sleep"):
        time.sleep(event["sleep"])
    return hashlib.sha256(json.dumps(event, separators=(",", ":")).encode()).hexdigest()
"""


@pytest.fixture
def runtime(tmp_path: Path):
    rt = FunctionRuntime()
    rt.add(function_config(write_handler(tmp_path, "h", HANDLERS), "h.digest", name="digest", Timeout=2))
    yield rt
    rt.close()


def _batch(count: int, size: int, seed: int) -> list[Record]:
    return [Record("t", 1, seed + i, 1000 + i, "CREATE_TIME", None if i % 5 == 0 else os.urandom(8),
                   os.urandom(size), [("h", b"x")] if i % 7 == 0 else ()) for i in range(count)]


def _invoke(rt: FunctionRuntime, builder: EventBuilder, records: list[Record]) -> str:
    packed = pack_records(builder.envelope, records)
    result = rt.invoke_records("digest", packed, lambda: builder.build(records))
    assert result.function_error is None, result.payload
    return json.loads(result.payload)


def _expected(builder: EventBuilder, records: list[Record]) -> str:
    return hashlib.sha256(builder.build(records)).hexdigest()


def test_big_then_smaller_then_small_batches_are_lambdas_event(runtime: FunctionRuntime) -> None:
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    # 1.4 MB, then a smaller body in the same (already grown) region: no bytes of the first may show through,
    # then one under REGION_MIN through the pipe, then one bigger than the region so far (it grows).
    for count, size in ((1000, 1400), (200, 700), (10, 100), (3000, 1024), (1000, 1400)):
        records = _batch(count, size, count)
        assert (len(pack_records(builder.envelope, records)) >= REGION_MIN) == (count >= 200)
        assert _invoke(runtime, builder, records) == _expected(builder, records)


def test_big_json_payloads_take_the_region_too(runtime: FunctionRuntime) -> None:
    event = {"data": "x" * (3 * REGION_MIN), "n": [1, 2, 3]}
    result = runtime.invoke("digest", json.dumps(event).encode())
    assert json.loads(result.payload) == hashlib.sha256(json.dumps(event, separators=(",", ":")).encode()).hexdigest()


def test_a_timed_out_big_batch_replaces_the_worker_and_the_next_is_intact(runtime: FunctionRuntime) -> None:
    slow = {"sleep": 5, "data": "y" * (2 * REGION_MIN)}
    result = runtime.invoke("digest", json.dumps(slow).encode())
    assert result.function_error == "Unhandled" and b"Task timed out" in result.payload
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    records = _batch(500, 1024, 7)
    assert _invoke(runtime, builder, records) == _expected(builder, records)


def test_a_batch_as_its_unjoined_pieces_is_lambdas_event_on_every_path(runtime: FunctionRuntime) -> None:
    """``pack_parts`` as the engine sends it: written piece by piece into the region (big values), joined first
    (many small pieces), through the pipe (small), and joined for the pipe past writev's buffer limit."""
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    batches = {
        "big values, piece by piece": _batch(1000, 1400, 1),
        "small values, joined into the region": [Record("t", 0, i, 1000 + i, "CREATE_TIME", b"k" if i % 2 else None,
                                                        None if i % 9 == 0 else os.urandom(40)) for i in range(3000)],
        "smaller than before, same region": _batch(100, 1024, 2),
        "through the pipe": _batch(20, 100, 3),
        "through the pipe, more pieces than one writev takes": [
            Record("t", 0, i, 1000 + i, "CREATE_TIME", None, os.urandom(3)) for i in range(1500)],
    }
    for name, records in batches.items():
        parts = pack_parts(builder.envelope, records)
        assert b"".join(parts) == pack_records(builder.envelope, records)
        result = runtime.invoke_records("digest", parts, lambda records=records: builder.build(records))
        assert result.function_error is None, (name, result.payload)
        assert json.loads(result.payload) == _expected(builder, records), name


def test_the_region_grows_but_a_truncate_from_the_worker_side_is_refused() -> None:
    fd = new_region()
    assert fd is not None
    writer = RegionWriter(fd)
    try:
        writer.write([b"x" * REGION_MIN], REGION_MIN)  # the engine maps and grows it
        with pytest.raises(PermissionError):  # what a handler's stray ftruncate gets: no SIGBUS in the engine
            os.ftruncate(fd, 0)
        writer.write([b"y" * (3 * REGION_MIN)], 3 * REGION_MIN)
        assert os.pread(fd, 2, 3 * REGION_MIN - 2) == b"yy"
    finally:
        writer.close()
