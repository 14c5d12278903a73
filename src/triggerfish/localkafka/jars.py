"""Fetch the Apache Kafka broker jars from Maven Central with Maven, once, into a cache directory.

Kafka's broker is published to Maven Central as ``org.apache.kafka:kafka_2.13``; Maven resolves its
dependency tree and copies every jar into ``<cache>/libs``. A marker file records a complete fetch
so an interrupted download is retried rather than half-used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from triggerfish.errors import LocalKafkaError

# 4.2+ has share groups (Queue-mode mappings) on by default: formatting at the release's metadata version
# finalizes the share.version feature at 1; group.coordinator.rebalance.protocols need not list "share".
_KAFKA_VERSION = os.environ.get("TRIGGERFISH_KAFKA_VERSION", "4.3.1")
_LOG4J_VERSION = "2.24.3"
_SLF4J_VERSION = "2.0.17"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.triggerfish</groupId>
  <artifactId>{project}</artifactId>
  <version>1</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
_DEPENDENCY = "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>"

_MISSING_TOOLS = (
    "{tool} was not found on PATH. The local Kafka broker needs Java 17+ and Maven "
    "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven). "
    "You do not need them to use triggerfish itself: any existing Kafka works, "
    "point KAFKA_BOOTSTRAP_SERVERS at it."
)


def cache_root() -> Path:
    return Path(os.environ.get("TRIGGERFISH_CACHE", Path.home() / ".cache" / "triggerfish"))


def require_tools() -> None:
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise LocalKafkaError(_MISSING_TOOLS.format(tool=tool))


def copy_dependencies(
    home: Path, project: str, artifacts: list[tuple[str, str, str]], on_line: Callable[[str], None] | None = None
) -> Path:
    """Have Maven copy the runtime dependency trees of ``artifacts`` (group, artifact, version) into ``home/libs``.

    ``on_line`` receives each line Maven prints, so a caller can show progress.
    """
    require_tools()
    libs = home / "libs"
    home.mkdir(parents=True, exist_ok=True)
    dependencies = "\n".join(_DEPENDENCY.format(*artifact) for artifact in artifacts)
    (home / "pom.xml").write_text(_POM.format(project=project, dependencies=dependencies))
    cmd = [
        "mvn", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-15:]
        if on_line:
            on_line(line)
    if proc.wait() != 0:
        group, artifact, version = artifacts[0]
        raise LocalKafkaError(
            f"Maven could not fetch {group}:{artifact}:{version} from Maven Central "
            f"(exit {proc.returncode}). Last lines:\n" + "\n".join(tail)
        )
    return libs


def fetch(version: str = _KAFKA_VERSION, on_line: Callable[[str], None] | None = None) -> Path:
    """Return the directory holding Kafka's jars, downloading them with Maven if needed.

    ``on_line`` receives each line Maven prints, so a caller can show progress.
    """
    home = cache_root() / "kafka" / version
    marker = home / ".complete"
    if marker.exists():
        return home / "libs"
    libs = copy_dependencies(home, "local-kafka", [
        ("org.apache.kafka", "kafka_2.13", version),
        ("org.slf4j", "slf4j-api", _SLF4J_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j2-impl", _LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-core", _LOG4J_VERSION),
    ], on_line)
    # slf4j 1.x from Kafka's own tree would shadow the 2.x binding we asked for.
    for old in libs.glob("slf4j-api-1.*.jar"):
        old.unlink()
    marker.write_text(version)
    return libs
