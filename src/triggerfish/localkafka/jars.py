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

KAFKA_VERSION = os.environ.get("TRIGGERFISH_KAFKA_VERSION", "4.1.1")
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.triggerfish</groupId>
  <artifactId>local-kafka</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>{slf4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

MISSING_TOOLS = (
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
            raise LocalKafkaError(MISSING_TOOLS.format(tool=tool))


def fetch(version: str = KAFKA_VERSION, on_line: Callable[[str], None] | None = None) -> Path:
    """Return the directory holding Kafka's jars, downloading them with Maven if needed.

    ``on_line`` receives each line Maven prints, so a caller can show progress.
    """
    home = cache_root() / "kafka" / version
    libs = home / "libs"
    marker = home / ".complete"
    if marker.exists():
        return libs
    require_tools()
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM.format(kafka=version, slf4j=SLF4J_VERSION, log4j=LOG4J_VERSION))
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
        raise LocalKafkaError(
            f"Maven could not fetch org.apache.kafka:kafka_2.13:{version} from Maven Central "
            f"(exit {proc.returncode}). Last lines:\n" + "\n".join(tail)
        )
    # slf4j 1.x from Kafka's own tree would shadow the 2.x binding we asked for.
    for old in libs.glob("slf4j-api-1.*.jar"):
        old.unlink()
    marker.write_text(version)
    return libs
