"""Run a SAM or CloudFormation template's Kafka-triggered functions: ``--template template.yaml``.

A template becomes the same :class:`~triggerfish.config.ProjectConfig` a ``triggerfish.yaml`` does,
in five steps, one module each:

* :mod:`.loader`      YAML (short-form ``!Ref`` ...) or JSON -> data;
* :mod:`.parameters`  Parameters defaults, ``--parameter-overrides``, pseudo parameters;
* :mod:`.sam`         SAM -> CloudFormation with ``aws-sam-translator`` (never calls AWS);
* :mod:`.intrinsics`  Conditions and intrinsic functions, evaluated locally (:mod:`.physical` for resources);
* :mod:`.convert`     functions, mappings and URLs -> triggerfish's config document, with
  :mod:`.overrides` (brokers, secrets) and :mod:`.envvars` (``--env-vars``) applied;

then ``triggerfish.config.parse`` validates it with the usual checks, and an error is re-raised at
the template path it came from (:mod:`.paths`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from triggerfish import config as project_config
from triggerfish.config import ProjectConfig
from triggerfish.errors import ConfigError
from triggerfish.template import envvars, loader, overrides, parameters, sam
from triggerfish.template.convert import Conversion, convert
from triggerfish.template.intrinsics import Resolver
from triggerfish.template.paths import relocate, split_project_field

__all__ = ["TemplateProject", "load"]


@dataclass
class TemplateProject:
    """A template's project config, and what the template declares that does not run here."""

    project: ProjectConfig
    #: logical id -> function name (``invoke`` takes either)
    aliases: dict[str, str] = field(default_factory=dict)
    #: one line per function or mapping skipped, saying why
    skipped: list[str] = field(default_factory=list)
    #: "LogicalId (Type)" of every other resource
    not_run: list[str] = field(default_factory=list)

    def function_name(self, name: str) -> str | None:
        """A function's name from its name or logical id; None when neither is declared."""
        if name in self.project.functions:
            return name
        return self.aliases.get(name)


def load(path: str | Path, *, parameter_overrides: list[str] | None = None, env_vars: Path | None = None,
         kafka_bootstrap: list[str] | None = None, overrides_file: Path | None = None) -> TemplateProject:
    """Read, expand, resolve and validate a template; ``ConfigError`` naming the template path otherwise."""
    path = Path(path)
    data = loader.read(path)
    values, unset = parameters.resolve(data.get("Parameters"), parameters.parse_overrides(parameter_overrides or []))
    expanded = sam.expand(data, values)
    template = expanded.template
    resolver = Resolver(values, unset, _section(template, "Mappings"), _section(template, "Conditions"),
                        template["Resources"], parameters.place_of(values))
    conversion = convert(expanded, resolver, overrides.load(overrides_file, kafka_bootstrap or []),
                         envvars.read(env_vars))
    if not conversion.functions:
        reasons = "; ".join(conversion.skipped) or "it declares no AWS::Serverless::Function or AWS::Lambda::Function"
        raise ConfigError(str(path), f"no function to run ({reasons}); triggerfish runs Python functions whose "
                                     "CodeUri is a local directory")
    project = _parse(conversion, path.resolve())
    return TemplateProject(project, conversion.aliases, conversion.skipped, conversion.not_run)


def _section(template: dict[str, object], name: str) -> dict[str, object]:
    value = template.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a mapping")
    return value


def _parse(conversion: Conversion, path: Path) -> ProjectConfig:
    try:
        return project_config.parse(conversion.document, base_dir=path.parent, path=path)
    except ConfigError as exc:
        where = split_project_field(exc.field)
        if where is None:
            raise
        section, index, rest = where
        origins = conversion.function_origins if section == "Functions" else conversion.mapping_origins
        raise relocate(exc, origins[index].path(rest)) from None
