"""The ``--template`` options ``run``, ``invoke`` and ``status`` share, and loading either kind of project.

``--template template.yaml`` reads a SAM or CloudFormation template instead of ``--config``
(``triggerfish.template``); ``--parameter-overrides`` and ``--env-vars`` mean what they mean to
``sam local``; ``--kafka-bootstrap`` and ``--overrides`` redirect what exists only in AWS.
"""

from __future__ import annotations

from pathlib import Path

import typer

from triggerfish import config as project_config
from triggerfish import template as sam_template
from triggerfish.errors import ConfigError

TEMPLATE = typer.Option(
    None, "--template", "-t", metavar="PATH",
    help="a SAM or CloudFormation template (YAML or JSON) to run instead of --config",
)
PARAMETER_OVERRIDES = typer.Option(
    [], "--parameter-overrides", metavar="KEY=VALUE ...",
    help="template parameter values, as sam's: 'Key=Value Key2=Value2' or ParameterKey=K,ParameterValue=V "
         "(repeatable)",
)
ENV_VARS = typer.Option(
    None, "--env-vars", metavar="env.json",
    help='environment overrides, as sam local\'s: {"FunctionLogicalId": {"VAR": "value"}, "Parameters": {...}}',
)
KAFKA_BOOTSTRAP = typer.Option(
    [], "--kafka-bootstrap", metavar="HOST:PORT",
    help="the Kafka every template mapping reads from (MSK clusters and remote brokers are not reachable locally)",
)
OVERRIDES = typer.Option(
    None, "--overrides", metavar="overrides.yaml",
    help="brokers and secrets by logical id or ARN: {Id: {BootstrapServers: [...], Secret: env:VAR | file://...}}",
)


def load(config: Path, template: Path | None, parameter_overrides: list[str], env_vars: Path | None,
         kafka_bootstrap: list[str], overrides: Path | None) -> sam_template.TemplateProject:
    """The project of ``--template`` when given, else of ``--config`` (the template options then refused)."""
    if template is not None:
        return sam_template.load(template, parameter_overrides=parameter_overrides, env_vars=env_vars,
                                 kafka_bootstrap=kafka_bootstrap, overrides_file=overrides)
    for name, value in (("--parameter-overrides", parameter_overrides), ("--env-vars", env_vars),
                        ("--kafka-bootstrap", kafka_bootstrap), ("--overrides", overrides)):
        if value:
            raise ConfigError(name, "applies to --template only; pass --template template.yaml, or drop it")
    return sam_template.TemplateProject(project_config.load(config))
