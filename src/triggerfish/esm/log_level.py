"""``LoggingConfig.SystemLogLevel``: one mapping's engine log level (``DEBUG``, ``INFO`` or ``WARN``).

Lambda sends a mapping's system logs at the level its ``LoggingConfig`` asks for; triggerfish's engine logs
to ``triggerfish.esm``, so the level is applied there, per mapping: a filter on that logger knows which
mapping a record comes from by the thread that logs it (the runner's ``esm-<uuid>`` thread, its
``esm-<uuid[:8]>_<n>`` batch workers, the engine's ``esm-change-<uuid>``), or else by the UUID its
``"mapping %s: ..."`` message names first, and drops what is below that mapping's level. ``DEBUG`` lowers the
logger so that mapping's debug records are written (handlers with their own level still apply); records
of mappings without a level, and of no mapping, keep the level the logger had.
"""

from __future__ import annotations

import logging
import threading

LOGGER = "triggerfish.esm"
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}
_PREFIX = "esm-"


class MappingLevels(logging.Filter):
    """The filter: mapping UUID -> level, and the level everything else keeps."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger
        self._lock = threading.Lock()
        self._levels: dict[str, int] = {}
        self._baseline: int | None = None  # the logger's own level, while a mapping lowered it

    def set(self, uuid: str, level: int | None) -> None:
        with self._lock:
            if level is None:
                self._levels.pop(uuid, None)
            else:
                self._levels[uuid] = level
            lowest = min(self._levels.values(), default=None)
            if lowest is not None and lowest < self._logger.getEffectiveLevel():
                if self._baseline is None:
                    self._baseline = self._logger.getEffectiveLevel()
                self._logger.setLevel(lowest)
            elif self._baseline is not None and (lowest is None or lowest >= self._baseline):
                self._logger.setLevel(self._baseline)
                self._baseline = None

    def _level_of(self, thread_name: str) -> int | None:
        if not thread_name.startswith(_PREFIX):
            return None
        rest = thread_name[len(_PREFIX):].removeprefix("change-")  # the engine applying a change to it
        if rest in self._levels:
            return self._levels[rest]
        short = rest.split("_", 1)[0]  # a batch worker: esm-<uuid[:8]>_<n>
        for uuid, level in self._levels.items():
            if len(short) == 8 and uuid.startswith(short):
                return level
        return None

    def filter(self, record: logging.LogRecord) -> bool:
        level = self._level_of(record.threadName or "")
        if level is None and isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str):
            level = self._levels.get(record.args[0])  # "mapping %s: ..." logged from another thread
        if level is None:
            return self._baseline is None or record.levelno >= self._baseline
        return record.levelno >= level


_filter: MappingLevels | None = None
_install = threading.Lock()


def _levels() -> MappingLevels:
    global _filter
    with _install:
        if _filter is None:
            logger = logging.getLogger(LOGGER)
            _filter = MappingLevels(logger)
            logger.addFilter(_filter)
        return _filter


def apply(uuid: str, system_log_level: str | None) -> None:
    """Give mapping ``uuid`` the level its ``LoggingConfig.SystemLogLevel`` names (None: the engine's)."""
    if system_log_level is None and _filter is None:
        return  # nothing set anywhere: leave the logger alone
    _levels().set(uuid, LEVELS.get(system_log_level) if system_log_level else None)
