"""Expand a SAM template into CloudFormation with ``aws-sam-translator``, the library SAM itself uses.

Three things keep the translator off AWS: the managed-policy map is an empty dict (it is asked only to
turn policy names into ARNs, and falls back to building the ARN itself), the pseudo parameters are
given (so it never asks a boto3 session for a region), and a local ``CodeUri`` directory is swapped
for a stand-in S3 location before translating (the translator accepts only S3 code) and swapped back
afterwards through the returned ``code`` table. What the expansion records for error paths: which SAM
event each generated ``AWS::Lambda::EventSourceMapping`` came from, which function properties came
from ``Globals``, which ``AWS::Lambda::Url`` a ``FunctionUrlConfig`` became.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from triggerfish.errors import ConfigError

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
#: The stand-in bucket of a local CodeUri; its key indexes ``Expanded.code``.
LOCAL_CODE_BUCKET = "triggerfish-local-code"
KAFKA_EVENTS = ("SelfManagedKafka", "MSK")

# The translator warns about CloudWatch metrics it would publish inside AWS; nothing a local user can act on.
logging.getLogger("samtranslator").setLevel(logging.ERROR)


@dataclass
class Expanded:
    """The CloudFormation template and what SAM expansion recorded about where things came from."""

    template: dict[str, Any]
    #: stand-in S3 key -> the local directory the template named
    code: dict[str, str] = field(default_factory=dict)
    #: generated mapping logical id -> (function, event name, event type)
    events: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: function logical id -> the property names it took from Globals.Function
    from_globals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: logical ids of the SAM functions (their properties keep SAM's names in error paths)
    sam_functions: frozenset[str] = frozenset()


def is_sam(template: dict[str, Any]) -> bool:
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in transforms


def expand(template: dict[str, Any], parameter_values: dict[str, Any]) -> Expanded:
    """The CloudFormation a SAM template expands to (a plain template passes through)."""
    if not is_sam(template):
        return Expanded(template)
    source = copy.deepcopy(template)
    resources = source.get("Resources") or {}
    code: dict[str, str] = {}
    globals_fn = (source.get("Globals") or {}).get("Function") or {}
    if isinstance(globals_fn, dict):
        _stand_in(globals_fn, code)
    events: dict[str, tuple[str, str, str]] = {}
    from_globals: dict[str, tuple[str, ...]] = {}
    functions = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        functions.append(logical_id)
        props = resource.get("Properties")
        if not isinstance(props, dict):
            continue
        _stand_in(props, code)
        if isinstance(globals_fn, dict):
            from_globals[logical_id] = tuple(k for k in globals_fn if k not in props)
        for name, event in (props.get("Events") or {}).items():
            if isinstance(event, dict) and event.get("Type") in KAFKA_EVENTS:
                events[f"{logical_id}{name}"] = (logical_id, name, str(event["Type"]))
    # Imported here: the translator (pydantic models) takes a second to import, which every other
    # command would pay at start.
    import boto3
    from samtranslator.model.exceptions import ExceptionWithMessage, InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(None, Parser(), boto_session=boto3.session.Session(
        region_name=parameter_values["AWS::Region"]))
    try:
        out = translator.translate(source, dict(parameter_values), get_managed_policy_map=lambda: {})
    except InvalidDocumentException as exc:
        raise ConfigError("Resources", _describe(exc.causes)) from None
    except ExceptionWithMessage as exc:
        raise ConfigError("Transform", f"SAM cannot expand this template: {exc.message}") from None
    except Exception as exc:  # noqa: BLE001 - the translator's own bugs must not reach the user as a traceback
        raise ConfigError("Transform", f"SAM's translator failed on this template ({type(exc).__name__}: {exc}); "
                                       "check it with `sam validate`") from None
    return Expanded(out, code, events, from_globals, frozenset(functions))


def _stand_in(props: dict[str, Any], code: dict[str, str]) -> None:
    """Swap a local ``CodeUri`` directory for a stand-in S3 location the translator accepts."""
    uri = props.get("CodeUri")
    if isinstance(uri, str) and not uri.startswith("s3://"):
        key = str(len(code))
        code[key] = uri
        props["CodeUri"] = f"s3://{LOCAL_CODE_BUCKET}/{key}"


def _describe(causes: list[Any]) -> str:
    """The translator's messages, one after another; each names its resource (``Resource with id [X]``)."""
    texts = [str(getattr(c, "message", c)) for c in causes]
    return "SAM cannot expand this template: " + " | ".join(texts) + " (fix what the message names)"
