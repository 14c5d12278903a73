"""Cluster mode: replicas that share one cluster name keep their state in compacted Kafka topics.

Kafka Connect's distributed workers are the model: no coordination service of our own, only Kafka.

* ``config``    the ``Cluster:`` section (name, the state Kafka's bootstrap and client properties)
* ``topics``    the two compacted topics: created or checked, and the commands to pre-create them
* ``configlog`` mapping definitions in one total order, written by compare-and-set (a fenced
  transactional writer shared by the cluster) and applied by every replica from a reader thread
* ``board``     each replica's heartbeat and per-mapping status; everyone's, read back, for fleet status
* ``fleet``     the pure rules that merge the live replicas' statuses into one mapping's fleet view
* ``reader``, ``snapshot``, ``clients``: what those share (a topic read from the beginning on a
  thread, the status records as read, librdkafka hooks and error texts)

Import the modules themselves; this package re-exports nothing so that importing it stays cheap.
"""
