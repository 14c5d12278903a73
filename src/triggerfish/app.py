"""``App``: the whole triggerfish stack in one process, as ``triggerfish run`` runs it.

    with App([orders], [mapping], state=".triggerfish/state.db", port=0) as app:
        app.url                 # the control API (None with api=False)
        app.engine.add(...)     # the event source mapping engine
        app.runtime.invoke(...)  # the function runtime

``start()`` opens the state store, starts the function runtime (one warm worker per function), loads
and starts the mappings, then serves the control API; ``stop()`` undoes them in reverse: the API stops
answering, in-flight batches finish and are committed, the workers exit, the store is closed. A step
that fails during ``start()`` undoes the steps before it.

With ``cluster`` the process is one replica of a fleet (``triggerfish.cluster``): definitions and status
are shared through the cluster's Kafka topics instead of the SQLite file, which is not opened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from triggerfish.api.app import create_app
from triggerfish.api.engine import EngineBackend
from triggerfish.api.server import ApiServer
from triggerfish.api.sigv4 import AccessKey, environment_key
from triggerfish.api.trust import Trust
from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.replica import Replica
from triggerfish.config import DEFAULT_STATE, ProjectConfig
from triggerfish.crosssite import is_loopback
from triggerfish.errors import ConfigError
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.engine import Engine
from triggerfish.esm.presence import Presence
from triggerfish.esm.store import Store
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime, LogSink

_log = logging.getLogger("triggerfish")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000


class App:
    """The state store, function runtime, ESM engine and control API, started and stopped together.

    ``functions`` and ``mappings`` are what a config file's ``Functions`` and ``EventSourceMappings``
    hold (``App.from_project`` takes a loaded file). ``state`` is the SQLite state file: mapping
    UUIDs, offsets' status and API-created mappings survive a restart through it. With ``api=False``
    no port is opened; ``port=0`` picks a free one (``url`` tells which). With ``access_key`` every
    control-API call must be SigV4-signed with that key pair (``triggerfish run --require-auth``);
    without it any signature is accepted, and serving off loopback is refused unless ``insecure``.
    ``AWS_IAM`` function URLs check signatures with ``access_key``, else the TRIGGERFISH_ACCESS_KEY_ID /
    TRIGGERFISH_SECRET_ACCESS_KEY pair, and refuse every request without either. ``trust`` names the
    extra hosts and origins the API answers and the secret references it may be given
    (``api.trust.Trust``). ``log_sink(function, request_id, text)`` receives what handlers print.
    With ``cluster`` this process joins that fleet (``state`` is then not used).
    """

    def __init__(
        self,
        functions: Iterable[FunctionConfig] = (),
        mappings: Iterable[MappingConfig] = (),
        *,
        state: str | Path = DEFAULT_STATE,
        api: bool = True,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        access_key: AccessKey | None = None,
        insecure: bool = False,
        trust: Trust | None = None,
        log_sink: LogSink | None = None,
        config_path: Path | None = None,
        cluster: ClusterConfig | None = None,
    ) -> None:
        if api and access_key is None and not insecure and not is_loopback(host):
            raise ConfigError("--host", f"serving the control API on {host} without authentication lets anyone on "
                              "the network invoke functions, read their environment and create mappings; pass "
                              "--require-auth (with an access key), bind 127.0.0.1, or pass --insecure if a "
                              "network policy or proxy protects it")
        self._functions = list(functions)
        self._mappings = list(mappings)
        self._state = Path(state)
        self._api = api
        self._host = host
        self._port = port
        self._access_key = access_key
        self._trust = trust or Trust()
        self._log_sink = log_sink
        self._config_path = config_path
        self._cluster = cluster
        self._replica: Replica | None = None
        self._store: Store | None = None
        self._runtime: FunctionRuntime | None = None
        self._engine: Engine | None = None
        self._server: ApiServer | None = None
        self._running: ExitStack | None = None

    @classmethod
    def from_project(
        cls,
        project: ProjectConfig,
        *,
        state: str | Path | None = None,
        api: bool = True,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        access_key: AccessKey | None = None,
        insecure: bool = False,
        trust: Trust | None = None,
        log_sink: LogSink | None = None,
        cluster: ClusterConfig | None = None,
    ) -> App:
        """The stack of a loaded config file (``load_project``); ``state`` overrides its ``StateFile`` and
        ``cluster`` its ``Cluster`` section."""
        return cls(
            project.functions.values(), project.mappings, state=state or project.state_path, api=api, host=host,
            port=port, access_key=access_key, insecure=insecure, trust=trust, log_sink=log_sink,
            config_path=project.path, cluster=cluster or project.cluster,
        )

    # -- the parts, once started ---------------------------------------------------------------
    @property
    def store(self) -> Store:
        return _started(self._store)

    @property
    def runtime(self) -> FunctionRuntime:
        return _started(self._runtime)

    @property
    def engine(self) -> Engine:
        return _started(self._engine)

    @property
    def replica(self) -> Replica | None:
        """This process in its fleet, or None in single-process mode."""
        return self._replica

    @property
    def url(self) -> str | None:
        """The control API's base URL, or None when it is not served."""
        return self._server.url if self._server is not None else None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> App:
        """Start store -> runtime -> engine -> API server; on a failure, stop what had started and raise."""
        if self._running is not None:
            raise RuntimeError("App is already running")
        with ExitStack() as undo:
            replica = self._join_cluster(undo)
            store = self._store = Store(":memory:" if replica is not None else self._state)
            undo.callback(self._close_store)
            presence = Presence(store) if replica is None else None
            if presence is not None:
                undo.callback(presence.leave)  # after the engine stopped: status lists it while it drains
            runtime = self._runtime = FunctionRuntime(self._functions, log_sink=self._log_sink)
            undo.callback(runtime.close)
            for fn in self._functions:
                runtime.warm(fn.function_name)
            self._check_functions_loaded(runtime)
            engine = self._engine = Engine(runtime, store, catalog=replica.catalog if replica else None,
                                           status_sink=replica.board if replica else None)
            undo.callback(engine.stop)
            engine.load(self._mappings)
            engine.start()
            if self._api:
                self._server = self._serve(engine, runtime, replica, undo)
                undo.callback(self._server.stop)
            if replica is not None:
                replica.board.api = self.url
            if presence is not None:
                presence.join(config=str(self._config_path) if self._config_path is not None else None,
                              api=self.url, mappings=engine.uuids)
            self._running = undo.pop_all()
        return self

    def stop(self) -> None:
        """Stop in reverse: API server, engine (in-flight batches finish and commit), runtime, store."""
        running, self._running = self._running, None
        if running is not None:
            running.close()

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------------
    def _check_functions_loaded(self, runtime: FunctionRuntime) -> None:
        """Fail the start on a handler that cannot load (the operator learns now, not at the first event);
        log the ones that loaded but say they cannot work yet (``GET /ready`` lists them)."""
        for fn in self._functions:
            report = runtime.wait_init(fn.function_name)
            if report.error is not None:
                raise ConfigError(f"function {fn.function_name}", f"its handler {fn.handler} failed to start: {report.error}")
            if report.not_ready is not None:
                _log.warning("function %s is not ready: %s", fn.function_name, report.not_ready)

    def _join_cluster(self, undo: ExitStack) -> Replica | None:
        """Join the fleet (configs read to the end, first heartbeat sent); stopped last, after the engine."""
        if self._cluster is None:
            return None
        replica = self._replica = Replica(self._cluster)
        replica.start()
        undo.callback(replica.stop)
        _log.info("replica %s joined cluster %s (state on %s)", replica.id, self._cluster.name,
                  ",".join(self._cluster.bootstrap_servers))
        return replica

    def _serve(self, engine: Engine, runtime: FunctionRuntime, replica: Replica | None, undo: ExitStack) -> ApiServer:
        if self._access_key is None and not is_loopback(self._host):
            _log.warning("control API on %s accepts any signature (--insecure); require an access key "
                        "(triggerfish run --require-auth) to check them", self._host)
        app = create_app(EngineBackend(runtime, engine, fleet=replica), access_key=self._access_key,
                         url_key=self._access_key or environment_key(), trust=self._trust, host=self._host)
        undo.callback(app.state.dashboard.sampler.stop)  # its lag sampling reads Kafka: not past the engine
        server = ApiServer(app, self._host, self._port)
        server.start()
        return server

    def _close_store(self) -> None:
        store = self._store
        if store is not None:
            store.close()


_T = TypeVar("_T")


def _started(part: _T | None) -> _T:
    if part is None:
        raise RuntimeError("App is not started: use `with App(...) as app:` or call app.start()")
    return part
