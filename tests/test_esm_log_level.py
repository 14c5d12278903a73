"""``LoggingConfig.SystemLogLevel`` sets the engine's log level for that mapping alone: against the real
broker and engine, and the per-thread rule on its own."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from esm_helpers import (
    RECORDER,
    RunningEngine,
    delivered,
    function_config,
    mapping_config,
    produce,
    wait_until,
    write_handler,
)
from triggerfish.esm.log_level import LOGGER, MappingLevels
from triggerfish.localkafka import KafkaEnv


def _of(caplog: pytest.LogCaptureFixture, uuid: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and uuid in r.getMessage()
            or (r.threadName or "").startswith((f"esm-{uuid}", f"esm-{uuid[:8]}_"))]


@pytest.mark.kafka
def test_a_warn_mapping_logs_no_info_while_its_neighbour_does(
    kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    quiet_topic, chatty_topic = make_topic(), make_topic()
    out = tmp_path / "out.jsonl"
    code = write_handler(tmp_path, "rec", RECORDER)
    fn = function_config(code, "rec.handler", Environment={"Variables": {"OUT": str(out)}})
    quiet = mapping_config(quiet_topic, kafka.bootstrap, LoggingConfig={"SystemLogLevel": "WARN"})
    chatty = mapping_config(chatty_topic, kafka.bootstrap, LoggingConfig={"SystemLogLevel": "INFO"})
    produce(kafka.bootstrap, quiet_topic, [b"q"])
    produce(kafka.bootstrap, chatty_topic, [b"c"])
    with RunningEngine([fn], [quiet, chatty], tmp_path) as eng:
        wait_until(lambda: sorted(v for _, _, v in delivered(out)) == [b"c", b"q"], timeout=40, message="both delivered")
        by_topic = {eng.engine.get(u).config.topic: u for u in eng.uuids}
    quiet_uuid, chatty_uuid = by_topic[quiet_topic], by_topic[chatty_topic]
    assert [r.getMessage() for r in _of(caplog, quiet_uuid) if r.levelno < logging.WARNING] == []
    chatty_info = [r.getMessage() for r in _of(caplog, chatty_uuid) if r.levelno == logging.INFO]
    assert any("assigned" in m for m in chatty_info), chatty_info
    assert any("OK in" in r.getMessage() and r.threadName.startswith(f"esm-{chatty_uuid[:8]}_")
               for r in caplog.records), "the batch worker's INFO line of the INFO mapping"


def test_levels_follow_the_thread_of_each_mapping() -> None:
    logger = logging.getLogger("test.triggerfish.esm.levels")
    logger.setLevel(logging.INFO)
    levels = MappingLevels(logger)
    logger.addFilter(levels)
    seen: list[tuple[str, int]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.threadName or "", record.levelno))

    logger.addHandler(Keep())
    logger.propagate = False
    debug, warn, plain = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "33333333-cccc"
    levels.set(debug, logging.DEBUG)
    levels.set(warn, logging.WARNING)
    assert logger.level == logging.DEBUG  # lowered for the DEBUG mapping

    def log_from(name: str) -> None:
        def run() -> None:
            for level in (logging.DEBUG, logging.INFO, logging.WARNING):
                logger.log(level, "x")
        thread = threading.Thread(target=run, name=name)
        thread.start()
        thread.join()

    for name in (f"esm-{debug}", f"esm-{debug[:8]}_0", f"esm-{warn}", f"esm-change-{warn}", f"esm-{plain}", "other"):
        log_from(name)
    assert seen == [
        (f"esm-{debug}", logging.DEBUG), (f"esm-{debug}", logging.INFO), (f"esm-{debug}", logging.WARNING),
        (f"esm-{debug[:8]}_0", logging.DEBUG), (f"esm-{debug[:8]}_0", logging.INFO), (f"esm-{debug[:8]}_0", logging.WARNING),
        (f"esm-{warn}", logging.WARNING), (f"esm-change-{warn}", logging.WARNING),
        (f"esm-{plain}", logging.INFO), (f"esm-{plain}", logging.WARNING),  # no level: the logger's INFO
        ("other", logging.INFO), ("other", logging.WARNING),
    ]
    levels.set(debug, None)
    assert logger.level == logging.INFO  # restored once no mapping needs DEBUG
