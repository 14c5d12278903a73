"""A mapping's status and its API view: State and PROBLEM change together, and ``to_api`` gives exactly
botocore's EventSourceMappingConfiguration (no request-only members such as Tags)."""

from __future__ import annotations

import threading

from triggerfish.api.shapes import response_problems
from triggerfish.diagnosis import Diagnosis
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.state import ENABLED, ENABLING, EventSourceMapping, MappingStatus

MAPPING = {
    "FunctionName": "orders", "Topics": ["orders"], "StartingPosition": "TRIM_HORIZON",
    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
    "Tags": {"team": "payments"}, "Enabled": True,
}


def test_to_api_is_botocores_shape_without_tags() -> None:
    config = MappingConfig.from_dict(MAPPING).replace(uuid="6f8c6a4e-0000-4000-8000-000000000001")
    assert config.to_dict()["Tags"] == {"team": "payments"}  # kept in the configuration (and the store)
    out = EventSourceMapping(config, MappingStatus()).to_api("arn:aws:lambda:us-east-1:000000000000:function:orders")
    assert not {"Tags", "Enabled", "FunctionName", "BootstrapServers"} & set(out)
    assert out["FunctionArn"].endswith(":function:orders") and out["Topics"] == ["orders"]
    assert response_problems("GetEventSourceMapping", out) == []


def test_state_and_problem_change_in_one_step() -> None:
    """A reader never sees Enabled together with a setup PROBLEM (nor Enabling without it)."""
    status = MappingStatus(ENABLING)
    problem = Diagnosis("PROBLEM: SASL authentication failed.", "bad password", "fix the secret", stage="sasl")
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            status.set_state(ENABLING, "PROBLEM", problem=problem)
            status.set_state(ENABLED, problem=None)

    writer = threading.Thread(target=flip)
    writer.start()
    seen = set()
    try:
        for _ in range(20000):
            snap = status.to_dict()
            seen.add((snap["State"], snap["Problem"] is not None, snap["LastProcessingResult"] == problem.problem))
    finally:
        stop.set()
        writer.join()
    assert seen <= {(ENABLING, True, True), (ENABLED, False, False)}, seen
    assert len(seen) == 2  # both states were observed, so the check saw real transitions
