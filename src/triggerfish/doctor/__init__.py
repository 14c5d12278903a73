"""``triggerfish doctor``: find the stage where a connection fails and say how to fix it.

Each diagnosis returns a list of :class:`~triggerfish.doctor.report.Check` records; the CLI renders
them as a colour table or as ``{"checks": [...]}`` JSON.

The diagnoses are imported on first use (PEP 562): ``doctor kafka`` must not pay for botocore's session
(the credential chain) nor the AWS network model, and ``doctor aws-network`` not for the Kafka client side.
"""

from typing import TYPE_CHECKING

from triggerfish.doctor.report import Check, Status
from triggerfish.lazy import lazy_attributes

if TYPE_CHECKING:
    from triggerfish.doctor.credentials import diagnose as diagnose_credentials
    from triggerfish.doctor.explain import explain as explain_text
    from triggerfish.doctor.kafka import diagnose as diagnose_kafka
    from triggerfish.doctor.kafka_plan import parse_properties, plan_from_bridge, plan_from_mapping, plan_from_options
    from triggerfish.doctor.lambda_vpc import diagnose as diagnose_lambda_vpc
    from triggerfish.doctor.network import diagnose as diagnose_network

__all__ = [
    "Check",
    "Status",
    "diagnose_credentials",
    "diagnose_kafka",
    "diagnose_lambda_vpc",
    "diagnose_network",
    "explain_text",
    "parse_properties",
    "plan_from_bridge",
    "plan_from_mapping",
    "plan_from_options",
]

#: Public name -> (module, attribute), imported on first access.
_LAZY = {
    "diagnose_credentials": ("triggerfish.doctor.credentials", "diagnose"),
    "diagnose_kafka": ("triggerfish.doctor.kafka", "diagnose"),
    "diagnose_lambda_vpc": ("triggerfish.doctor.lambda_vpc", "diagnose"),
    "diagnose_network": ("triggerfish.doctor.network", "diagnose"),
    "explain_text": ("triggerfish.doctor.explain", "explain"),
    "parse_properties": ("triggerfish.doctor.kafka_plan", "parse_properties"),
    "plan_from_bridge": ("triggerfish.doctor.kafka_plan", "plan_from_bridge"),
    "plan_from_mapping": ("triggerfish.doctor.kafka_plan", "plan_from_mapping"),
    "plan_from_options": ("triggerfish.doctor.kafka_plan", "plan_from_options"),
}

if not TYPE_CHECKING:  # type checkers see the imports above instead
    __getattr__ = lazy_attributes(__name__, _LAZY, globals())
