"""Load ``triggerfish.yaml``: the functions and event source mappings to run, with Lambda's field names.

    Functions:            [FunctionConfig fields ...]       (functions/config.py)
    EventSourceMappings:  [MappingConfig fields ...]        (esm/config.py)
    StateFile: .triggerfish/state.db                        (optional; SQLite, relative to this file)
    Cluster:              {Name, BootstrapServers, ...}     (optional; run as a fleet: cluster/config.py)

``load(path)`` validates everything before anything touches Kafka and raises ``ConfigError`` with one
line naming the field (``EventSourceMappings[0].BatchSize``), the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from triggerfish.cluster.config import ClusterConfig
from triggerfish.errors import ConfigError, InvalidParameterError, ParameterConflictError
from triggerfish.esm.config import MappingConfig
from triggerfish.functions.config import KAFKA_MAX_TIMEOUT, FunctionConfig
from triggerfish.validation import Fields

DEFAULT_STATE = ".triggerfish/state.db"


@dataclass
class ProjectConfig:
    """Everything ``triggerfish run`` needs from a config file."""

    path: Path | None
    functions: dict[str, FunctionConfig] = field(default_factory=dict)
    mappings: list[MappingConfig] = field(default_factory=list)
    state_path: Path = Path(DEFAULT_STATE)
    #: The fleet this config's replicas form, or None: one process with the SQLite ``state_path``.
    cluster: ClusterConfig | None = None


def _default_state_path(config_path: Path | None) -> Path:
    base = config_path.parent if config_path is not None else Path.cwd()
    return (base / DEFAULT_STATE).resolve()


def read_text(path: Path, what: str) -> str:
    """A config file's text; ``ConfigError`` naming the file otherwise (``what``: the option and kind of file)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ConfigError(str(path), f"file not found; pass {what}") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None


def yaml_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    """A YAML syntax error as one line naming the file, line and column."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return ConfigError(str(path), f"{where}{problem} (not valid YAML)")


def load(path: str | Path) -> ProjectConfig:
    """Read and validate a config file."""
    path = Path(path)
    text = read_text(path, "--config PATH to a triggerfish.yaml")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from None
    except RecursionError:  # PyYAML recurses once per nesting level
        raise ConfigError(str(path), "nested too deeply to read; a triggerfish.yaml is a few levels deep: check "
                                     "that --config names the right file") from None
    return parse(data, base_dir=path.resolve().parent, path=path.resolve())


def parse(data: Any, *, base_dir: Path | None = None, path: Path | None = None) -> ProjectConfig:
    """Validate an already-parsed config document."""
    base_dir = base_dir or Path.cwd()
    top = Fields(data, "", ("Functions", "EventSourceMappings", "StateFile", "Cluster"))
    functions: dict[str, FunctionConfig] = {}
    for i, item in enumerate(top.list_("Functions", default=[])):
        fn = FunctionConfig.from_dict(item, where=f"Functions[{i}]", base_dir=base_dir)
        if fn.function_name in functions:
            raise InvalidParameterError(f"Functions[{i}].FunctionName",
                                        f"Function already exist: {fn.function_name}", "give each function its own name")
        functions[fn.function_name] = fn
    if not functions:
        # mappings need a function, and the API cannot create one: an engine started now would do nothing
        raise ConfigError("Functions", "none declared, so there is nothing to run; declare a function "
                                       "(FunctionName, Handler, CodeUri) and EventSourceMappings that invoke it")
    mappings: list[MappingConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(top.list_("EventSourceMappings", default=[])):
        where = f"EventSourceMappings[{i}]"
        mapping = MappingConfig.from_dict(item, where=where)
        target = functions.get(mapping.function)
        if target is None:
            known = ", ".join(functions) or "none"
            raise InvalidParameterError(f"{where}.FunctionName", f"Function does not exist: {mapping.function_name}",
                                        f"declare it under Functions (declared: {known})")
        if target.timeout > KAFKA_MAX_TIMEOUT:
            raise InvalidParameterError(
                f"Functions[{list(functions).index(target.function_name)}].Timeout",
                f"Timeout {target.timeout} is above {KAFKA_MAX_TIMEOUT} seconds, the limit for functions invoked by a "
                "Kafka event source mapping", f"use at most {KAFKA_MAX_TIMEOUT}",
            )
        key = mapping.identity()
        if key in seen:
            raise ParameterConflictError(
                where,
                f'An event source mapping with event source ("{mapping.event_source_arn or ",".join(mapping.bootstrap_servers)}"), '
                f'function ("{mapping.function}"), topics ("{mapping.topic}") already exists.',
                f"it repeats EventSourceMappings[{seen[key]}]; merge them",
            )
        seen[key] = i
        mappings.append(mapping)
    state = top.str_("StateFile", min_len=1)
    section = top.raw("Cluster")
    cluster = ClusterConfig.from_dict(section, where="Cluster") if section is not None else None
    top.done()
    if state is not None:
        state_path = Path(state).expanduser()
        if not state_path.is_absolute():
            state_path = (base_dir / state_path).resolve()
    else:
        state_path = _default_state_path(path)
    return ProjectConfig(path=path, functions=functions, mappings=mappings, state_path=state_path, cluster=cluster)
