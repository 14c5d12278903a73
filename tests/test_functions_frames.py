"""The engine-worker pipe framing: headers through orjson, with json for what orjson refuses."""

from __future__ import annotations

import io

from triggerfish.functions.frames import PREFIX_SIZE, decode_header, encode_head, read_frame, split_lengths, write_frame


def test_a_frame_round_trips_its_header_and_body() -> None:
    stream = io.BytesIO()
    header = {"ok": True, "duration_ms": 1.25, "logs": "é\n\"quoted\"\t\x00", "max_rss_mb": 31}
    write_frame(stream, header, b"\x00\xffbody")
    stream.seek(0)
    assert read_frame(stream) == (header, b"\x00\xffbody")
    assert read_frame(stream) is None


def test_a_lone_surrogate_in_captured_output_survives_the_pipe() -> None:
    # orjson refuses lone surrogates; a handler printing bytes decoded with surrogateescape makes them
    header = {"ok": True, "logs": b"caf\xe9".decode("utf-8", "surrogateescape")}
    frame = encode_head(header, 0)
    head_len, body_len = split_lengths(frame[:PREFIX_SIZE])
    assert body_len == 0
    assert decode_header(frame[PREFIX_SIZE:PREFIX_SIZE + head_len]) == header


def test_the_head_announces_the_body_that_is_written_after_it() -> None:
    frame = encode_head({"id": "r1", "deadline_ms": 5, "kind": "records"}, 1 << 20)
    head_len, body_len = split_lengths(frame[:PREFIX_SIZE])
    assert (head_len, body_len) == (len(frame) - PREFIX_SIZE, 1 << 20)
    assert decode_header(frame[PREFIX_SIZE:]) == {"id": "r1", "deadline_ms": 5, "kind": "records"}
