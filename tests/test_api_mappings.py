"""Event source mappings through Lambda's REST API, with boto3, against the real engine and broker:
create and see records delivered, list/page/filter, update (Enabled=false keeps offsets), delete,
Lambda's errors, and API-created mappings surviving a restart next to the YAML file's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from api_support import lambda_client
from esm_helpers import (
    RECORDER,
    delivered,
    function_config,
    mapping_config,
    produce,
    read_invocations,
    wait_until,
    write_handler,
)
from triggerfish import App

pytestmark = pytest.mark.kafka


class Stack:
    """A ``triggerfish.App`` serving the control API on a free port, as ``triggerfish run`` runs it."""

    def __init__(self, tmp_path: Path, yaml_mappings: list[Any] = ()) -> None:
        code = write_handler(tmp_path, "rec", RECORDER)
        self.out = tmp_path / "out.jsonl"
        env = {"Environment": {"Variables": {"OUT": str(self.out)}}}
        functions = [function_config(code, name="f", **env), function_config(code, name="g", **env)]
        self.app = App(functions, yaml_mappings, state=tmp_path / "state.db", port=0).start()
        self.runtime, self.store, self.engine = self.app.runtime, self.app.store, self.app.engine
        assert self.app.url is not None
        self.url = self.app.url
        self.client = lambda_client(self.url)
        self.raw = lambda_client(self.url, parameter_validation=False)  # lets bad input reach the server

    def stop(self) -> None:
        self.app.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    yield s
    s.stop()


def kafka_body(topic: str, bootstrap: str, function: str = "f", **fields: Any) -> dict[str, Any]:
    return {
        "FunctionName": function,
        "Topics": [topic],
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
        "StartingPosition": "TRIM_HORIZON",
        "MaximumBatchingWindowInSeconds": 0,
        **fields,
    }


def wait_state(client, uuid: str, state: str) -> dict[str, Any]:
    return wait_until(lambda: (m := client.get_event_source_mapping(UUID=uuid))["State"] == state and m,
                      timeout=30, message=f"{uuid} {state}")


def values(out: Path) -> list[bytes | None]:
    return [v for _, _, v in delivered(out)]


def test_create_delivers_records(kafka, make_topic, stack: Stack) -> None:
    topic = make_topic()
    produce(kafka.bootstrap, topic, [b"one", b"two"])
    created = stack.client.create_event_source_mapping(**kafka_body(topic, kafka.bootstrap, BatchSize=5))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    uuid = created["UUID"]
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:f"
    assert created["EventSourceMappingArn"] == f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{uuid}"
    assert created["Topics"] == [topic] and created["BatchSize"] == 5
    assert created["SelfManagedEventSource"] == {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}}
    assert created["LastProcessingResult"] == "No records processed"
    wait_until(lambda: values(stack.out) == [b"one", b"two"], message="records delivered")
    got = wait_state(stack.client, uuid, "Enabled")
    assert got["StateTransitionReason"] == "USER_INITIATED"
    wait_until(lambda: stack.client.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK")


def test_update_disable_keeps_offsets_then_enable_resumes(kafka, make_topic, stack: Stack) -> None:
    topic = make_topic()
    uuid = stack.client.create_event_source_mapping(**kafka_body(topic, kafka.bootstrap))["UUID"]
    produce(kafka.bootstrap, topic, [b"a"])
    wait_until(lambda: values(stack.out) == [b"a"], message="first record")
    wait_state(stack.client, uuid, "Enabled")

    updated = stack.client.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202 and updated["State"] == "Disabling"
    wait_state(stack.client, uuid, "Disabled")
    produce(kafka.bootstrap, topic, [b"b", b"c"])
    with pytest.raises(AssertionError):  # nothing is consumed while disabled
        wait_until(lambda: len(values(stack.out)) > 1, timeout=2)

    stack.client.update_event_source_mapping(UUID=uuid, Enabled=True, BatchSize=1)
    wait_until(lambda: values(stack.out) == [b"a", b"b", b"c"], message="resumed after the committed offset")
    got = wait_state(stack.client, uuid, "Enabled")
    assert got["BatchSize"] == 1
    # the new BatchSize is live: b and c came one per invocation
    sizes = [sum(len(r) for r in inv["event"]["records"].values()) for inv in read_invocations(stack.out)]
    assert sizes[-2:] == [1, 1]


def test_delete(kafka, make_topic, stack: Stack) -> None:
    topic = make_topic()
    uuid = stack.client.create_event_source_mapping(**kafka_body(topic, kafka.bootstrap, Enabled=False))["UUID"]
    wait_state(stack.client, uuid, "Disabled")
    deleted = stack.client.delete_event_source_mapping(UUID=uuid)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202 and deleted["State"] == "Deleting"

    def gone() -> bool:
        try:
            stack.client.get_event_source_mapping(UUID=uuid)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "ResourceNotFoundException"
        return False

    wait_until(gone, message="mapping removed")
    assert uuid not in [r["uuid"] for r in stack.store.mappings()]


def test_list_filters_and_pages(kafka, make_topic, stack: Stack) -> None:
    topics = [make_topic() for _ in range(5)]
    made = {}
    for i, topic in enumerate(topics):
        function = "f" if i < 3 else "g"
        made[stack.client.create_event_source_mapping(**kafka_body(topic, kafka.bootstrap, function, Enabled=False))["UUID"]] = function
    everything = stack.client.list_event_source_mappings()["EventSourceMappings"]
    assert {m["UUID"] for m in everything} == set(made)
    assert "NextMarker" not in stack.client.list_event_source_mappings()

    pages, marker = [], None
    while True:
        kwargs = {"MaxItems": 2, **({"Marker": marker} if marker else {})}
        out = stack.client.list_event_source_mappings(**kwargs)
        pages.append([m["UUID"] for m in out["EventSourceMappings"]])
        marker = out.get("NextMarker")
        if not marker:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(sum(pages, [])) == sorted(made)

    by_g = stack.client.list_event_source_mappings(FunctionName="g")["EventSourceMappings"]
    assert {m["UUID"] for m in by_g} == {u for u, f in made.items() if f == "g"}
    by_arn = stack.client.list_event_source_mappings(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:f")
    assert len(by_arn["EventSourceMappings"]) == 3
    msk = "arn:aws:kafka:us-east-1:123456789012:cluster/demo/6f1c0b7e-1111-4222-8333-444455556666-1"
    assert stack.client.list_event_source_mappings(EventSourceArn=msk)["EventSourceMappings"] == []
    msk_mapping = stack.client.create_event_source_mapping(
        FunctionName="g", EventSourceArn=msk, Topics=[topics[0]], StartingPosition="LATEST", Enabled=False,
        AmazonManagedKafkaEventSourceConfig={"ConsumerGroupId": "msk-group"},
    )
    assert msk_mapping["EventSourceArn"] == msk and "SelfManagedEventSource" not in msk_mapping
    assert msk_mapping["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": "msk-group"}
    by_source = stack.client.list_event_source_mappings(EventSourceArn=msk)["EventSourceMappings"]
    assert [m["UUID"] for m in by_source] == [msk_mapping["UUID"]]


def test_at_most_100_a_page(kafka, make_topic, stack: Stack) -> None:
    topic = make_topic()
    for i in range(101):
        stack.engine.add(mapping_config(topic, f"broker{i}.example:9092", Enabled=False))
    out = stack.client.list_event_source_mappings(MaxItems=10000)
    assert len(out["EventSourceMappings"]) == 100 and out["NextMarker"]
    rest = stack.client.list_event_source_mappings(Marker=out["NextMarker"])
    assert len(rest["EventSourceMappings"]) == 1 and "NextMarker" not in rest


def error_of(call, **kwargs) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return {"code": response["Error"]["Code"], "message": response["Error"]["Message"],
            "status": response["ResponseMetadata"]["HTTPStatusCode"],
            "header": response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-errortype")}


def test_errors_in_lambdas_shape(kafka, make_topic, stack: Stack) -> None:
    topic = make_topic()
    missing = "0b8f7c2e-0000-4000-8000-000000000000"
    for call in (stack.client.get_event_source_mapping, stack.client.delete_event_source_mapping):
        err = error_of(call, UUID=missing)
        assert err == {"code": "ResourceNotFoundException", "message": "The resource you requested does not exist.",
                       "status": 404, "header": "ResourceNotFoundException"}
    raw = httpx.get(f"{stack.url}/2015-03-31/event-source-mappings/{missing}")
    assert raw.json() == {"Type": "User", "Message": "The resource you requested does not exist."}
    err = error_of(stack.client.update_event_source_mapping, UUID=missing, BatchSize=5)
    assert err["code"] == "ResourceNotFoundException"

    err = error_of(stack.client.create_event_source_mapping, **kafka_body(topic, kafka.bootstrap, "nope"))
    assert err["code"] == "ResourceNotFoundException" and "function:nope" in err["message"]

    err = error_of(stack.raw.create_event_source_mapping, **kafka_body(topic, kafka.bootstrap, BatchSize=0))
    assert err["code"] == "ValidationException" and err["status"] == 400
    assert err["message"].startswith("1 validation error detected: Value '0' at 'batchSize' failed to satisfy constraint")

    err = error_of(stack.raw.create_event_source_mapping, **kafka_body(topic, kafka.bootstrap, StartingPosition="OLDEST"))
    assert err["code"] == "ValidationException" and "TRIM_HORIZON" in err["message"]

    err = error_of(stack.client.create_event_source_mapping,
                   **kafka_body(topic, kafka.bootstrap, ParallelizationFactor=2))
    assert err["code"] == "InvalidParameterValueException" and err["status"] == 400
    assert "Unsupported 'parallelizationFactor' parameter for given event source mapping type." in err["message"]

    err = error_of(stack.client.create_event_source_mapping, FunctionName="f", Topics=[topic], StartingPosition="LATEST")
    assert err["code"] == "InvalidParameterValueException" and "Unrecognized event source." in err["message"]

    err = error_of(stack.client.create_event_source_mapping,
                   **kafka_body(topic, kafka.bootstrap, DestinationConfig={"OnSuccess": {"Destination": "kafka://x"}}))
    assert "Unsupported DestinationConfig parameter" in err["message"]

    first = stack.client.create_event_source_mapping(**kafka_body(topic, kafka.bootstrap, Enabled=False))
    err = error_of(stack.client.create_event_source_mapping, **kafka_body(topic, kafka.bootstrap, Enabled=False))
    assert err["code"] == "ResourceConflictException" and err["status"] == 409
    assert first["UUID"] in err["message"]

    # create-only fields cannot be updated (boto3 has no such parameter; send it raw)
    response = httpx.put(f"{stack.url}/2015-03-31/event-source-mappings/{first['UUID']}",
                         json={"Topics": ["other-topic"]})
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    body = response.json()
    assert body["Type"] == "User" and "Topics" in body["message"]

    response = httpx.post(f"{stack.url}/2015-03-31/event-source-mappings/", content=b"{nope",
                          headers={"content-type": "application/json"})  # boto3 sends JSON; a bare body is refused (415)
    assert response.status_code == 400 and response.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"


def test_api_mappings_survive_restart_next_to_yaml_ones(kafka, make_topic, tmp_path: Path) -> None:
    yaml_topic, api_topic = make_topic(), make_topic()
    yaml_mapping = mapping_config(yaml_topic, kafka.bootstrap, function="g", Enabled=False)
    first = Stack(tmp_path, [yaml_mapping])
    try:
        created = first.client.create_event_source_mapping(**kafka_body(api_topic, kafka.bootstrap, BatchSize=3))
        uuid = created["UUID"]
        produce(kafka.bootstrap, api_topic, [b"before"])
        wait_until(lambda: values(first.out) == [b"before"], message="delivered before restart")
        listed = {m["UUID"]: m for m in first.client.list_event_source_mappings()["EventSourceMappings"]}
        assert len(listed) == 2 and uuid in listed
        yaml_uuid = next(u for u in listed if u != uuid)
    finally:
        first.stop()

    second = Stack(tmp_path, [yaml_mapping])
    try:
        listed = {m["UUID"]: m for m in second.client.list_event_source_mappings()["EventSourceMappings"]}
        assert set(listed) == {uuid, yaml_uuid}  # both kinds, same UUIDs (so same consumer groups)
        again = wait_state(second.client, uuid, "Enabled")
        assert again["BatchSize"] == 3 and again["Topics"] == [api_topic]
        produce(kafka.bootstrap, api_topic, [b"after"])
        wait_until(lambda: values(second.out) == [b"before", b"after"], message="resumed, no redelivery")
    finally:
        second.stop()


def test_health_reports_mapping_states(kafka, make_topic, stack: Stack) -> None:
    uuid = stack.client.create_event_source_mapping(**kafka_body(make_topic(), kafka.bootstrap, Enabled=False))["UUID"]
    wait_state(stack.client, uuid, "Disabled")
    assert httpx.get(f"{stack.url}/health").json()["mappings"] == {"Disabled": 1}
    assert json.loads(httpx.get(f"{stack.url}/2015-03-31/event-source-mappings/").text)["EventSourceMappings"][0]["UUID"] == uuid


def test_a_mapping_stuck_on_a_problem_can_be_disabled(kafka, unique_name, stack: Stack) -> None:
    missing_topic = unique_name("no-such-topic")
    uuid = stack.client.create_event_source_mapping(**kafka_body(missing_topic, kafka.bootstrap))["UUID"]
    wait_until(lambda: stack.client.get_event_source_mapping(UUID=uuid)["LastProcessingResult"].startswith("PROBLEM:"),
               message="setup PROBLEM reported")
    stack.client.update_event_source_mapping(UUID=uuid, Enabled=False)
    got = wait_state(stack.client, uuid, "Disabled")
    assert got["StateTransitionReason"] == "USER_INITIATED"
