"""Read a CloudFormation or SAM template file (YAML with short-form intrinsics, or JSON) into plain data.

Short forms (``!Ref X``, ``!GetAtt A.B``, ``!Sub ...``) become their long forms (``{"Ref": "X"}``,
``{"Fn::GetAtt": ["A", "B"]}``) through ``samtranslator.yaml_helper.intrinsics_multi_constructor``,
the constructor SAM's own tooling registers. We register it on a private ``SafeLoader`` subclass:
``samtranslator.yaml_helper.yaml_parse`` registers it on ``yaml.SafeLoader`` itself, which would make
every other YAML triggerfish reads accept CloudFormation tags. Timestamps stay strings, as
CloudFormation reads them (``AWSTemplateFormatVersion: 2010-09-09`` is a string, not a date).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from samtranslator.yaml_helper import intrinsics_multi_constructor

from triggerfish.config import read_text, yaml_error
from triggerfish.errors import ConfigError


class TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation's ``!Tag`` short forms and keeps timestamps as strings."""


def _timestamp_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


TemplateLoader.add_multi_constructor("!", intrinsics_multi_constructor)
TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)


def read(path: Path) -> dict[str, Any]:
    """The template at ``path`` as a dict; ``ConfigError`` naming the file, line and problem otherwise."""
    text = read_text(path, "--template PATH to a SAM or CloudFormation template")
    data = _parse_json(path, text) if text.lstrip().startswith("{") else _parse_yaml(path, text)
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ConfigError(str(path), "not a template: it has no Resources section; pass --template PATH to a SAM or "
                                     "CloudFormation template (or --config for a triggerfish.yaml)")
    return data


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"line {exc.lineno}, column {exc.colno}: {exc.msg} (not valid JSON)") from None
    except RecursionError:
        raise ConfigError(str(path), "nested too deeply to read") from None


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from None
    except RecursionError:
        raise ConfigError(str(path), "nested too deeply to read") from None
