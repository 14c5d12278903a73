"""The ``--cluster``, ``--cluster-bootstrap`` and ``--replica-id`` options ``run`` and ``status`` share.

Each has an environment variable (what a Kubernetes Deployment sets) and overrides the config file's
``Cluster`` section; see ``triggerfish.cluster.config.from_cli`` for how they combine.
"""

from __future__ import annotations

import typer

from triggerfish.cluster.config import ClusterConfig, from_cli

CLUSTER = typer.Option(
    None, "--cluster", envvar="TRIGGERFISH_CLUSTER", metavar="NAME",
    help="run as a replica of the fleet NAME: definitions and status shared through Kafka (default: the config's "
         "Cluster.Name; none = one process with a SQLite state file)",
)
CLUSTER_BOOTSTRAP = typer.Option(
    None, "--cluster-bootstrap", envvar="TRIGGERFISH_CLUSTER_BOOTSTRAP", metavar="HOST:PORT[,HOST:PORT]",
    help="the Kafka holding the fleet's state (default: the config's Cluster.BootstrapServers)",
)
REPLICA_ID = typer.Option(
    None, "--replica-id", envvar="TRIGGERFISH_REPLICA_ID", metavar="ID",
    help="this replica's name in status (default: host name and pid; on Kubernetes pass the pod name)",
)


def cluster_config(section: ClusterConfig | None, name: str | None, bootstrap: str | None,
                   replica_id: str | None) -> ClusterConfig | None:
    """The fleet to join or show: the flags over the config file's section; None for single-process mode."""
    return from_cli(section, name=name, bootstrap=bootstrap, replica_id=replica_id)
