"""Fetch the real Strimzi Kafka Bridge from Maven Central (for the side-by-side benchmark).

Maven resolves ``io.strimzi:kafka-bridge:<version>`` with its runtime dependencies into
``~/.cache/triggerfish/strimzi-bridge/<version>/libs`` (never into the repository). 0.32.0 is the
last release that runs on Java 17 (1.x needs Java 21).

    python bench/bridge_fetch_strimzi.py [--version 0.32.0]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from triggerfish.localkafka.jars import cache_root, require_tools

DEFAULT_VERSION = "0.32.0"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.triggerfish</groupId>
  <artifactId>strimzi-bridge-bench</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>kafka-bridge</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""


def fetch(version: str = DEFAULT_VERSION) -> Path:
    """Return the ``libs`` directory of Strimzi bridge ``version``, downloading it once."""
    home = cache_root() / "strimzi-bridge" / version
    libs = home / "libs"
    marker = home / ".complete"
    if marker.exists():
        return libs
    require_tools()
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM.format(version=version))
    cmd = ["mvn", "-B", "-q", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
    if subprocess.run(cmd).returncode != 0:
        sys.exit(f"Maven could not resolve io.strimzi:kafka-bridge:{version} from Maven Central (see above). "
                 "Alternatively unpack the release tarball from the Strimzi GitHub releases and pass its libs/ "
                 "to bench/bridge_compare.py --strimzi-libs.")
    if not any(libs.glob("kafka-bridge-*.jar")):
        sys.exit(f"kafka-bridge-{version}.jar is missing from {libs}")
    marker.write_text(version)
    return libs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION)
    args = parser.parse_args()
    print(fetch(args.version))


if __name__ == "__main__":
    main()
