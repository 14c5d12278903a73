"""The engine-worker pipe: framing (headers through orjson, json for what orjson refuses) and large requests."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.frames import PREFIX_SIZE, decode_header, encode_head, read_frame, split_lengths, write_frame
from triggerfish.functions.runtime import FunctionRuntime


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


def test_a_request_larger_than_the_pipe_reaches_the_worker_whole(tmp_path: Path) -> None:
    # 3 MB: the request pipe holds 1 MB, so the head and payload go out over several partial writevs
    (tmp_path / "h.py").write_text(
        "import hashlib\n\ndef digest(event, context):\n"
        "    return [len(event['blob']), hashlib.sha256(event['blob'].encode()).hexdigest()]\n")
    runtime = FunctionRuntime([FunctionConfig.from_dict({"FunctionName": "digest", "CodeUri": str(tmp_path),
                                                         "Handler": "h.digest"})])
    try:
        blob = "".join(chr(48 + i % 75) for i in range(3 << 20))
        result = runtime.invoke("digest", {"blob": blob})
        assert result.ok, result.payload
        assert result.result() == [len(blob), hashlib.sha256(blob.encode()).hexdigest()]
    finally:
        runtime.close()
