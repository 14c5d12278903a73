"""Configs that cannot work are one line naming the field and the fix, never a traceback: a StateFile that
is not a database, not writable or under /proc; YAML nested thousands deep; a bootstrap port outside
1..65535; a config that declares nothing to run. ``triggerfish run`` exits 1 with that line, as for every
other config error, before anything is started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from triggerfish import config as project_config
from triggerfish.errors import ConfigError, InvalidParameterError
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.store import Store

FUNCTION = "Functions:\n  - {FunctionName: f, CodeUri: ., Handler: h.handler}\n"
MAPPING = ("EventSourceMappings:\n  - {FunctionName: f, Topics: [orders], StartingPosition: LATEST,"
           " SelfManagedEventSource: {Endpoints: {KAFKA_BOOTSTRAP_SERVERS: ['%s']}}}\n")
FIX = "point StateFile (or --state) at a writable file on a local disk, e.g. .triggerfish/state.db"


def run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--no-api"],
                          capture_output=True, text=True, timeout=60, cwd=config.parent,
                          env={**os.environ, "COLUMNS": "1000"})


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: "):]


def project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "h.py").write_text("def handler(event, context):\n    return None\n")
    path = tmp_path / "triggerfish.yaml"
    path.write_text(text)
    return path


def state_file_config(tmp_path: Path, state: str) -> Path:
    return project(tmp_path, FUNCTION + MAPPING % "127.0.0.1:1" + f"StateFile: {state}\n")


def test_a_state_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    line = one_line_error(run(state_file_config(tmp_path, "notes.txt")))
    assert line == (f"StateFile: {tmp_path / 'notes.txt'} is not a triggerfish state file (SQLite: file is not a "
                    f"database); move that file away, or {FIX}")
    assert (tmp_path / "notes.txt").read_text() == "not a database\n" * 100  # left untouched


@pytest.mark.parametrize("state", ["/proc/state.db", "/proc/self/status", "/sys/state.db", "/dev/state.db"])
def test_a_state_file_on_a_virtual_file_system(tmp_path: Path, state: str) -> None:
    line = one_line_error(run(state_file_config(tmp_path, state)))
    virtual = "/" + state.split("/")[1]
    assert line == f"StateFile: {state} is under {virtual}, a virtual file system that cannot hold a database; {FIX}"


def test_a_state_file_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = one_line_error(run(state_file_config(tmp_path, "file/state.db")))
    assert line.startswith(f"StateFile: {tmp_path / 'file' / 'state.db'}: cannot create the directory "
                           f"{tmp_path / 'file'} (")
    assert line.endswith(f"); {FIX}")
    (tmp_path / "dir.db").mkdir()
    line = one_line_error(run(state_file_config(tmp_path, "dir.db")))
    assert line == (f"StateFile: {tmp_path / 'dir.db'} cannot be opened for writing (SQLite: unable to open database "
                    f"file); {FIX}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_state_file(tmp_path: Path) -> None:
    Store(tmp_path / "ro" / "state.db").close()
    for path in (tmp_path / "ro").iterdir():
        path.chmod(0o444)
    (tmp_path / "ro").chmod(0o555)
    try:
        with pytest.raises(ConfigError) as info:
            Store(tmp_path / "ro" / "state.db")
        assert info.value.field == "StateFile" and "cannot be opened for writing (SQLite: " in str(info.value)
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_store_errors_name_the_state_file(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_bytes(b"\0" * 4096)
    for path in (tmp_path / "x.db", "/proc/1/state.db", tmp_path / "x.db" / "below.db"):
        with pytest.raises(ConfigError) as info:
            Store(path)
        assert info.value.field == "StateFile" and str(path) in str(info.value) and FIX in str(info.value)
    Store(":memory:").close()
    Store(tmp_path / "new" / "state.db").close()


def test_yaml_nested_thousands_deep(tmp_path: Path) -> None:
    flow = project(tmp_path, FUNCTION + "Extra: " + "[" * 5000 + "]" * 5000 + "\n")
    message = f"{flow}: nested too deeply to read; a triggerfish.yaml is a few levels deep: check that --config names the right file"
    with pytest.raises(ConfigError) as info:
        project_config.load(flow)
    assert str(info.value) == message
    block = tmp_path / "block.yaml"
    block.write_text("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 5000)))
    with pytest.raises(ConfigError, match="nested too deeply to read"):
        project_config.load(block)
    assert one_line_error(run(flow)) == message


@pytest.mark.parametrize("endpoint, port", [("127.0.0.1:99999", 99999), ("broker:0", 0), ("b.example.com:65536", 65536)])
def test_a_bootstrap_port_outside_the_tcp_range(tmp_path: Path, endpoint: str, port: int) -> None:
    field = "EventSourceMappings[0].SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[0]"
    expected = (f"{field}: Value '{endpoint}' has port {port}, which is not a TCP port "
                "(use a port in 1..65535, e.g. 127.0.0.1:9092)")
    assert one_line_error(run(project(tmp_path, FUNCTION + MAPPING % endpoint))) == expected
    body = {"FunctionName": "f", "Topics": ["orders"], "StartingPosition": "LATEST",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["b:9092", endpoint]}}}
    with pytest.raises(InvalidParameterError) as info:
        MappingConfig.from_dict(body)  # the control API's Create validates the same way
    assert info.value.field == "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[1]"
    body["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] = ["b:1", "c:65535"]  # type: ignore[index]
    assert MappingConfig.from_dict(body).bootstrap_servers == ("b:1", "c:65535")


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "{}\n", "Functions: []\nEventSourceMappings: []\n",
                                  "StateFile: s.db\n"])
def test_a_config_with_nothing_to_run(tmp_path: Path, text: str) -> None:
    expected = ("Functions: none declared, so there is nothing to run; declare a function (FunctionName, Handler, "
                "CodeUri) and EventSourceMappings that invoke it")
    path = project(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        project_config.load(path)
    assert info.value.field == "Functions" and str(info.value) == expected
    assert one_line_error(run(path)) == expected
    assert not (tmp_path / ".triggerfish").exists() and not (tmp_path / "s.db").exists(), "nothing was started"
