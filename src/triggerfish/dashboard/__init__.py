"""The dashboard served at ``GET /`` on the control API's port: every mapping, function and replica on one page.

``routes`` mounts it (the page, its static assets and ``/dashboard/state.json``, the document the page and
scripts share); ``state`` builds that document from the engine, the functions and the fleet; ``history``
keeps per-partition lag samples of the last hour; ``probe`` reads the lag of mappings that are not polling;
``access`` decides who may read the document (the control API's own SigV4 settings).
"""
