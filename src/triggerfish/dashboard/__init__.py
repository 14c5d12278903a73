"""The dashboard served at ``GET /`` on the control API's port: every mapping, function and replica on one page.

``routes`` mounts it (the page, its static assets and ``/dashboard/state.json``, the document the page and
scripts share; who may read it is the control API's policy, handed in); ``state`` builds that document from
the engine, the functions and the fleet; ``history`` keeps per-partition lag samples of the last hour;
``lags`` says what each partition's lag is now, reading it from Kafka for mappings that are not polling.
"""
