"""The real engine behind the control API: ``EngineBackend`` adapts the function runtime
(``triggerfish.functions.runtime``) and the mapping engine (``triggerfish.esm.engine``) to
``triggerfish.api.backend.Backend``.

This is the only module that knows both vocabularies: it turns ``FunctionConfig`` into Lambda's
``FunctionConfiguration``, runs blocking invocations on worker threads, and (see the mapping
methods) turns the engine's mappings into ``EventSourceMappingConfiguration`` dicts.

In a fleet (``fleet``: this replica's view of the cluster) a mapping's State and LastProcessingResult are
the fleet's, and ``TriggerfishFleet`` adds each partition's owner and lag and each replica's state —
members boto3 and the AWS CLI ignore, so Lambda's clients read the response unchanged.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread

from triggerfish.api.backend import FunctionInfo, InvokeOutcome, TaggedResource
from triggerfish.api.names import function_arn
from triggerfish.errors import (
    FunctionNotFound,
    FunctionThrottled,
    InvalidParameterError,
    MappingConflict,
    NotFoundError,
    ThrottledError,
)
from triggerfish.esm.catalog import FILE
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.engine import Engine
from triggerfish.esm.state import TRANSITIONAL, EventSourceMapping
from triggerfish.functions.code import code_digest
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime

_DEFAULT_REGION = "us-east-1"
_DEFAULT_ACCOUNT = "000000000000"


def _iso(epoch: float) -> str:
    """FunctionConfiguration.LastModified's format: 2024-01-31T12:00:00.000+0000."""
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}+0000"


@dataclass(frozen=True)
class _Revision:
    """What GetFunction shows of one version of a function's config and code."""

    code_sha256: str
    code_size: int
    revision_id: str
    loaded_at: float


def _revision(fn: FunctionConfig, loaded_at: float) -> _Revision:
    sha, size = code_digest(fn.code_uri)
    # Everything the file says but where the code lives (replicas keep it in different places) and the tags
    # (tagging is no configuration change on Lambda either), plus the code.
    declared = {k: v for k, v in fn.to_dict().items() if k not in ("CodeUri", "Tags")}
    revision = uuid.uuid5(uuid.NAMESPACE_URL, "triggerfish:function:" + json.dumps([declared, sha], sort_keys=True))
    return _Revision(sha, size, str(revision), loaded_at)


def _function_configuration(fn: FunctionConfig, revision: _Revision, *, region: str, account: str) -> dict[str, Any]:
    """Lambda's FunctionConfiguration for a function declared in the YAML file."""
    out: dict[str, Any] = {
        "FunctionName": fn.function_name,
        "FunctionArn": function_arn(region, account, fn.function_name),
        "Role": fn.role_arn(account),
        "CodeSize": revision.code_size,
        "Description": fn.description,
        "Timeout": fn.timeout,
        "MemorySize": fn.memory_size,
        "LastModified": _iso(revision.loaded_at),
        "CodeSha256": revision.code_sha256,
        "Version": "$LATEST",
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": revision.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn.function_name}"},
    }
    if fn.environment:  # Lambda leaves Environment out when there are no variables
        out["Environment"] = {"Variables": dict(fn.environment)}
    if not fn.is_http:
        out["Runtime"] = fn.runtime
        out["Handler"] = fn.handler
    return out


class Fleet(Protocol):
    """What the API needs of this replica's view of a fleet (``triggerfish.cluster.replica.Replica``)."""

    def fleet(self, uuid: str, *, enabled: bool = True) -> dict[str, Any] | None: ...
    def replicas(self) -> list[dict[str, Any]]: ...
    def problem(self) -> str | None: ...


class EngineBackend:
    """Functions from a ``FunctionRuntime``; mappings from the ESM ``Engine``.

    Engine calls touch SQLite or Kafka and take locks, so they run on worker threads.
    """

    def __init__(
        self,
        runtime: FunctionRuntime,
        engine: Engine | None = None,
        *,
        fleet: Fleet | None = None,
        region: str = _DEFAULT_REGION,
        account_id: str = _DEFAULT_ACCOUNT,
    ) -> None:
        self.runtime = runtime
        self.engine = engine
        self.fleet = fleet
        self.region = region
        self.account_id = account_id
        self._revisions: dict[str, tuple[FunctionConfig, _Revision]] = {}
        #: Tags set through the API when there is no engine (hence no catalog) to keep them in.
        self._unstored_tags: dict[str, dict[str, str]] = {}

    # -- functions -----------------------------------------------------------------------------
    def _revision(self, fn: FunctionConfig) -> _Revision:
        """The function's revision, computed once per config this process runs (the code is loaded once)."""
        known = self._revisions.get(fn.function_name)
        if known is None or known[0] != fn:
            known = self._revisions[fn.function_name] = (fn, _revision(fn, time.time()))
        return known[1]

    def _info(self, fn: FunctionConfig) -> FunctionInfo:
        revision = self._revision(fn)
        url = fn.function_url_config or None
        return FunctionInfo(
            name=fn.function_name,
            configuration=_function_configuration(fn, revision, region=self.region, account=self.account_id),
            code_location=fn.code_uri.as_uri() if fn.code_uri is not None else None,
            url_auth_type=(url.get("AuthType") or "NONE") if url is not None else None,
            url_invoke_mode=(url or {}).get("InvokeMode") or "BUFFERED",
            url_cors=(url or {}).get("Cors"),
            reserved_concurrency=fn.reserved_concurrent_executions,
            created=revision.loaded_at,
        )

    def list_functions(self) -> list[FunctionInfo]:
        return [self._info(fn) for fn in self.runtime.list()]

    def get_function(self, name: str) -> FunctionInfo | None:
        if name not in self.runtime:
            return None
        return self._info(self.runtime.get(name))

    async def invoke(self, name: str, payload: bytes, *, wait: bool = True) -> InvokeOutcome:
        # The runtime blocks for the whole invocation; keep the event loop free meanwhile.
        try:
            result = await anyio.to_thread.run_sync(lambda: self.runtime.invoke(name, payload, wait=wait))
        except FunctionThrottled:  # every slot busy, e.g. with the engine's batches
            raise ThrottledError("Rate Exceeded.") from None
        except FunctionNotFound:  # removed between lookup and call
            arn = function_arn(self.region, self.account_id, name)
            raise NotFoundError(f"Function not found: {arn}", arn) from None
        return InvokeOutcome(
            payload=result.payload,
            function_error=result.function_error,
            log=result.logs,
            request_id=result.request_id,
        )

    # -- event source mappings -----------------------------------------------------------------
    def _engine(self) -> Engine:
        if self.engine is None:
            raise InvalidParameterError("", "This server runs no event source mapping engine.")
        return self.engine

    def _api(self, mapping: EventSourceMapping) -> dict[str, Any]:
        arn = function_arn(self.region, self.account_id, mapping.config.function)
        out = mapping.to_api(arn, self.region, self.account_id)
        fleet = self.fleet.fleet(mapping.uuid, enabled=mapping.config.enabled) if self.fleet is not None else None
        if fleet is not None:
            local = out["State"]
            for member in ("State", "StateTransitionReason", "LastProcessingResult"):
                out[member] = fleet.get(member, out[member])
            if local in TRANSITIONAL:  # this replica is still applying a change the others may have published
                out["State"] = local
            out["TriggerfishFleet"] = {
                "Replicas": fleet.get("Replicas", []),
                "Partitions": [
                    {"Topic": p["topic"], "Partition": p["partition"], "Owner": p.get("owner"),
                     "CommittedOffset": p.get("committed"), "EndOffset": p.get("high_watermark"), "Lag": p.get("lag")}
                    for p in fleet.get("Partitions", [])
                ],
            }
        return out

    def _owned_by_api(self, uuid: str) -> None:
        """Refuse to change a mapping the config file declares: the file owns it, as a CloudFormation stack
        owns what it declares; a change made here would be undone by the next start, and in a fleet by
        every replica that reads the file."""
        if self._engine().get(uuid).origin == FILE:
            raise MappingConflict(
                f"The event source mapping {uuid} is declared in the config file (EventSourceMappings), which owns "
                "it; change it there and restart triggerfish (in a fleet: roll the replicas)", uuid)

    async def create_mapping(self, request: dict[str, Any]) -> dict[str, Any]:
        if "UUID" in request:
            raise InvalidParameterError("", "UUID is assigned by the service; remove it from the request.")
        engine = self._engine()
        config = MappingConfig.from_dict(request)
        return self._api(await anyio.to_thread.run_sync(engine.add, config))

    async def get_mapping(self, uuid: str) -> dict[str, Any]:
        return self._api(await anyio.to_thread.run_sync(self._engine().get, uuid))

    async def list_mappings(
        self, function_name: str | None = None, event_source_arn: str | None = None
    ) -> list[dict[str, Any]]:
        if self.engine is None:
            return []
        found = await anyio.to_thread.run_sync(self.engine.list, function_name, event_source_arn)
        return [self._api(m) for m in found]

    async def update_mapping(self, uuid: str, request: dict[str, Any]) -> dict[str, Any]:
        self._owned_by_api(uuid)
        return self._api(await anyio.to_thread.run_sync(self._engine().update, uuid, request))

    async def delete_mapping(self, uuid: str) -> dict[str, Any]:
        self._owned_by_api(uuid)
        return self._api(await anyio.to_thread.run_sync(self._engine().remove, uuid))

    # -- tags --------------------------------------------------------------------------------------
    def _declared_tags(self, resource: TaggedResource) -> dict[str, str]:
        """The tags the resource's definition declares (NotFoundError when it does not exist)."""
        if resource.kind == "function":
            if resource.name not in self.runtime:
                raise NotFoundError(f"Function not found: {resource.arn}", resource.arn)
            return dict(self.runtime.get(resource.name).tags)
        return dict(self._engine().get(resource.name).config.tags)

    def _stored_tags(self, arn: str) -> dict[str, str] | None:
        if self.engine is None:
            found = self._unstored_tags.get(arn)
            return dict(found) if found is not None else None
        return self.engine.catalog.tags(arn)

    async def resource_tags(self, resource: TaggedResource) -> dict[str, str]:
        declared = self._declared_tags(resource)
        stored = await anyio.to_thread.run_sync(self._stored_tags, resource.arn)
        return declared if stored is None else stored

    async def set_resource_tags(self, resource: TaggedResource, tags: dict[str, str]) -> None:
        self._declared_tags(resource)  # it still exists
        if self.engine is None:
            self._unstored_tags[resource.arn] = dict(tags)
            return
        await anyio.to_thread.run_sync(self.engine.catalog.put_tags, resource.arn, dict(tags))

    def health(self) -> dict[str, Any]:
        """Liveness (``status``: the process answers) and readiness (``ready``: every enabled mapping
        can poll; ``notReady`` names the ones that cannot, with their LastProcessingResult; and every
        function started: ``functionsNotReady`` maps the ones that did not, or say they cannot work, to why)."""
        out: dict[str, Any] = {"status": "ok", "functions": len(self.runtime.list()), "ready": True}
        functions_not_ready = self.runtime.not_ready()
        if functions_not_ready:
            out["ready"] = False
            out["functionsNotReady"] = functions_not_ready
        if self.engine is not None:
            states: dict[str, int] = {}
            for mapping in self.engine.list():
                states[mapping.status.state] = states.get(mapping.status.state, 0) + 1
            out["mappings"] = states
            not_ready = self.engine.not_ready()
            out["ready"] = out["ready"] and not not_ready
            if not_ready:
                out["notReady"] = not_ready
        if self.fleet is not None:
            problem = self.fleet.problem()
            out["cluster"] = {"replicas": len(self.fleet.replicas()), "problem": problem}
            out["ready"] = out["ready"] and problem is None
        return out
