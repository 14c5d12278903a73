"""Fetch the real Strimzi Kafka Bridge from Maven Central (for the side-by-side benchmark).

Maven resolves ``io.strimzi:kafka-bridge:<version>`` with its runtime dependencies into
``~/.cache/triggerfish/strimzi-bridge/<version>/libs`` (never into the repository). 0.32.0 is the
last release that runs on Java 17 (1.x needs Java 21).

    python bench/bridge_fetch_strimzi.py [--version 0.32.0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from triggerfish.errors import LocalKafkaError
from triggerfish.localkafka.jars import cache_root, copy_dependencies

DEFAULT_VERSION = "0.32.0"


def fetch(version: str = DEFAULT_VERSION) -> Path:
    """Return the ``libs`` directory of Strimzi bridge ``version``, downloading it once."""
    home = cache_root() / "strimzi-bridge" / version
    marker = home / ".complete"
    if marker.exists():
        return home / "libs"
    try:
        libs = copy_dependencies(home, "strimzi-bridge-bench", [("io.strimzi", "kafka-bridge", version)],
                                 on_line=lambda line: print(line, file=sys.stderr))
    except LocalKafkaError as exc:
        sys.exit(f"{exc}\nAlternatively unpack the release tarball from the Strimzi GitHub releases and pass its "
                 "libs/ to bench/bridge_compare.py --strimzi-libs.")
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
