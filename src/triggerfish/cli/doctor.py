"""``triggerfish doctor ...``: say exactly why something cannot connect, and how to fix it."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

import triggerfish.doctor as doctors  # its diagnoses load on first use: each command imports only its own
from triggerfish.doctor import report
from triggerfish.errors import ConfigError

app = typer.Typer(
    help="Find the failing stage of a connection and print the fix (table, or --json; exit 1 on any failure).",
    no_args_is_help=True,
)
_console = Console()
_JsonOpt = typer.Option(False, "--json", help='Print {"checks":[...]} instead of a table.')


@app.command("aws-network")
def aws_network(
    input_dir: Path = typer.Option(..., "--input", help="Directory of AWS CLI JSON exports (any file names)."),
    subnet: list[str] = typer.Option([], "--subnet", help="Source subnet id (repeatable)."),
    security_group: list[str] = typer.Option([], "--security-group", help="Source security group id (repeatable)."),
    lambda_config: Path = typer.Option(None, "--lambda-config", help="`aws lambda get-function-configuration` JSON."),
    msk_esm: bool = typer.Option(False, "--msk-esm", help="Source is an MSK ESM: the cluster's subnets and groups."),
    cluster: str = typer.Option(None, "--cluster", help="Cluster name or ARN when several are exported."),
    broker_subnet: list[str] = typer.Option([], "--broker-subnet", help="Self-managed brokers' subnet (repeatable)."),
    broker_sg: list[str] = typer.Option([], "--broker-sg", help="Self-managed brokers' security group (repeatable)."),
    port: list[int] = typer.Option([], "--port", help="Broker port(s); default: the MSK cluster's enabled listeners."),
    service: str = typer.Option("sts,lambda,secretsmanager", "--services",
                                help="AWS services the source must reach on 443 (comma separated; '' for none)."),
    region: str = typer.Option(None, "--region", help="Region (default: read from the exports)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every hop of reachable paths too."),
    as_json: bool = _JsonOpt,
) -> None:
    """Static reachability from exported security groups, network ACLs, routes, endpoints and NAT gateways."""

    checks = doctors.diagnose_network(
        input_dir, subnets=subnet, security_groups=security_group, lambda_config=lambda_config, msk_esm=msk_esm,
        cluster=cluster, broker_subnets=broker_subnet, broker_groups=broker_sg, ports=port,
        services=[s.strip() for s in service.split(",") if s.strip()], region=region,
    )
    raise typer.Exit(report.render(checks, as_json=as_json, console=_console, title="aws-network", verbose=verbose))


@app.command("lambda-vpc")
def lambda_vpc(
    input_dir: Path = typer.Option(..., "--input", help="Directory of AWS CLI JSON exports (subnets, ENIs, routes ...)."),
    lambda_config: Path = typer.Option(..., "--lambda-config", help="`aws lambda get-function-configuration` JSON."),
    role_policy: list[Path] = typer.Option([], "--role-policy", help="Execution role policy JSON (repeatable): "
                                           "a policy, get-role-policy, get-policy-version or list-attached-role-policies."),
    peak_concurrency: int = typer.Option(None, "--peak-concurrency", help="Show the pre-2019 ENI formula (history)."),
    quota: int = typer.Option(500, "--eni-quota", help="Lambda Hyperplane ENIs per VPC quota."),
    needs_internet: bool = typer.Option(False, "--needs-internet", help="Fail (not warn) when there is no internet path."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the details of passing checks too."),
    as_json: bool = _JsonOpt,
) -> None:
    """Free IPs, Hyperplane ENIs and quota, the execution role's ENI permissions, and the internet/NAT question."""

    checks = doctors.diagnose_lambda_vpc(input_dir, lambda_config, role_policies=role_policy,
                                          peak_concurrency=peak_concurrency, quota=quota, needs_internet=needs_internet)
    raise typer.Exit(report.render(checks, as_json=as_json, console=_console, title="lambda-vpc", verbose=verbose))


@app.command("aws-credentials")
def aws_credentials(
    trust_policy: Path = typer.Option(None, "--trust-policy", help="The role's trust policy (policy JSON or `aws iam get-role` output)."),
    service_account: str = typer.Option(None, "--service-account", help="Expected ServiceAccount as NAMESPACE:NAME."),
    oidc_providers: Path = typer.Option(None, "--oidc-providers",
                                        help="`aws iam list-open-id-connect-providers` JSON: is the issuer's provider there?"),
    region: str = typer.Option(None, "--region", help="Region (default: AWS_REGION / AWS_DEFAULT_REGION)."),
    service: list[str] = typer.Option([], "--service", help="Also resolve this service's endpoint (repeatable; STS always)."),
    call_sts: bool = typer.Option(False, "--call-sts", help="Call sts get-caller-identity with the winning credentials."),
    explain_text: str = typer.Option(None, "--explain", help="Explain an AWS SDK error text instead of checking."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the details of passing checks too."),
    as_json: bool = _JsonOpt,
) -> None:
    """Walk botocore's credential chain here (IRSA, Pod Identity, IMDS), check the trust policy and the endpoints."""
    if explain_text is not None:
        checks = doctors.explain_text(explain_text)
    else:
        # Providers can retry for seconds (container credentials, IMDS): show that something is happening.
        with Console(stderr=True).status("walking the AWS credential chain"):
            checks = doctors.diagnose_credentials(trust_policy=trust_policy, service_account=service_account,
                                                  region=region, services=service, call_sts=call_sts, oidc_providers=oidc_providers)
    raise typer.Exit(report.render(checks, as_json=as_json, console=_console, title="aws-credentials", verbose=verbose))


@app.command("explain")
def explain_cmd(
    text: str = typer.Argument(..., help="The error text: a PROBLEM: message, librdkafka, bridge or AWS SDK error ('-' reads stdin)."),
    as_json: bool = _JsonOpt,
) -> None:
    """Recognise an error message: its causes, the checks to run and the command that runs them."""
    if text == "-":
        text = sys.stdin.read()
    checks = doctors.explain_text(text)
    raise typer.Exit(report.render(checks, as_json=as_json, console=_console, title="explain", verbose=True))


@app.command("kafka")
def kafka_cmd(
    bootstrap: list[str] = typer.Option([], "--bootstrap", "-b", help="Bootstrap servers host:port (comma separated or repeated)."),
    auth: list[str] = typer.Option([], "--auth", help="TYPE=SECRET_REF as in SourceAccessConfigurations (repeatable), e.g. "
                                   "SASL_SCRAM_512_AUTH=env:KAFKA_SECRET, SERVER_ROOT_CA_CERTIFICATE=file:///ca.json."),
    msk_arn: str = typer.Option("", "--msk-arn", help="MSK cluster ARN (IAM auth, bootstrap lookup)."),
    prop: list[str] = typer.Option([], "-X", help="Raw librdkafka property key=value (repeatable), e.g. -X ssl.ca.location=ca.pem."),
    topic: str = typer.Option("", "--topic", "-t", help="Topic to Describe/Read and poll."),
    group: str = typer.Option("", "--group", "-g", help="Consumer group to check Read on (default: the mapping's, or triggerfish-doctor)."),
    mapping: str = typer.Option(None, "--mapping", help="Check this mapping (UUID, FunctionName or topic) from --config."),
    config: Path = typer.Option(Path("triggerfish.yaml"), "--config", "-c", help="triggerfish.yaml for --mapping."),
    bridge_config: Path = typer.Option(None, "--bridge-config", help="Check the Kafka side of a bridge.properties."),
    poll: bool = typer.Option(True, "--poll/--no-poll", help="Fetch once from the topic (assign, no group join)."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds per DNS/TCP/TLS probe."),
    kafka_timeout: float = typer.Option(15.0, "--kafka-timeout", help="Seconds for login, metadata, topic and group."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the details of passing checks too."),
    as_json: bool = _JsonOpt,
) -> None:
    """Run the ESM's setup stages live, per broker: DNS, TCP, TLS, SASL, every advertised broker, topic, group, one poll."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # only this command shows one

    if sum([bool(bootstrap or msk_arn), mapping is not None, bridge_config is not None]) != 1:
        raise ConfigError("doctor kafka", "give one of: --bootstrap (with --auth / -X), --mapping NAME --config FILE, "
                          "or --bridge-config bridge.properties")
    stderr = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr,
                  transient=True) as progress:
        task = progress.add_task("reading the configuration", total=None)
        if mapping is not None:
            plan = doctors.plan_from_mapping(config, mapping, group)
            if topic:
                plan.topic = topic
        elif bridge_config is not None:
            plan = doctors.plan_from_bridge(bridge_config, topic, group)
        else:
            plan = doctors.plan_from_options(bootstrap, access=auth, msk_arn=msk_arn, properties=prop, topic=topic, group=group)
        if mapping is not None or bridge_config is not None:
            plan.config.update(doctors.parse_properties(prop))

        def on_check(c: report.Check) -> None:
            progress.update(task, description=f"{c.stage} {c.target}: {c.status}")

        checks = doctors.diagnose_kafka(plan, poll=poll, timeout=timeout, kafka_timeout=kafka_timeout, on_check=on_check)
    raise typer.Exit(report.render(checks, as_json=as_json, console=_console, title="kafka", verbose=verbose))
