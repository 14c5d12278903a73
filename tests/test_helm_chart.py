"""The Helm chart (deploy/helm/triggerfish), the bridge sidecar example and the Containerfile.

Every value set is rendered with the real ``helm template`` and every manifest is validated against
Kubernetes' own OpenAPI schemas (``kubernetes-validate``, strict: an unknown field fails). Custom
resources (ServiceMonitor, ScaledObject, TriggerAuthentication, KafkaUser) have no schema there, so
their fields are asserted here. The triggerfish.yaml the chart renders is loaded with triggerfish's
own parser, and the sidecar's bridge.properties with the bridge's.

helm comes from PATH or ``$HOME/go/bin`` (``go install helm.sh/helm/v3/cmd/helm@v3.22.0``; ``.ci/run``
installs it there). Without it these tests fail in CI and are skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from triggerfish import config as project_config
from triggerfish.bridge import config as bridge_config
from triggerfish.bridge import properties

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "triggerfish"
SIDECAR = ROOT / "deploy" / "examples" / "bridge-sidecar"
K8S_VERSION = "1.34.0"  # one recent version kubernetes-validate bundles
CUSTOM_KINDS = {"ServiceMonitor", "ScaledObject", "TriggerAuthentication", "KafkaUser"}
RELEASE, NAMESPACE = "orders", "shop"
FULLNAME = "orders-triggerfish"  # release "orders" + chart "triggerfish"
ROLE_ARN = "arn:aws:iam::123456789012:role/triggerfish"

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "fleet": {  # cluster mode, 3 replicas, ServiceMonitor, KEDA, IRSA
        "replicas": 3,
        "cluster": {"name": "orders-fleet", "bootstrapServers": "kafka-0.kafka:9092,kafka-1.kafka:9092"},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": ROLE_ARN}},
        "keda": {
            "enabled": True, "minReplicaCount": 1, "maxReplicaCount": 12,
            "triggers": [{"topic": "orders", "consumerGroup": "orders-triggerfish", "lagThreshold": "100",
                          "activationLagThreshold": "5", "offsetResetPolicy": "earliest"}],
            "authentication": {"enabled": True, "secretTargetRef": [
                {"parameter": "sasl", "name": "keda-kafka", "key": "sasl"},
                {"parameter": "username", "name": "keda-kafka", "key": "username"},
                {"parameter": "password", "name": "keda-kafka", "key": "password"},
            ]},
        },
    },
    "secret-files": {  # require-auth, Kafka credentials as files and env
        "api": {"auth": {"mode": "requireAuth", "existingSecret": "orders-api-key"},
                "allowedHosts": ["triggerfish.example.com"]},
        "secretFiles": [{"secretName": "kafka-credentials", "mountPath": "/etc/triggerfish/kafka",
                         "items": [{"key": "credentials.json", "path": "credentials.json"}], "defaultMode": 288}],
        "env": [{"name": "ORDERS_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "orders-env", "key": "token"}}}],
        "envFrom": [{"secretRef": {"name": "orders-function-env"}}],
        "config": {
            "Functions": [{"FunctionName": "orders", "Url": "http://orders.shop.svc:8080/events", "Timeout": 30}],
            "EventSourceMappings": [{
                "FunctionName": "orders", "Topics": ["orders"], "StartingPosition": "LATEST",
                "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["kafka.shop.svc:9096"]}},
                "SourceAccessConfigurations": [
                    {"Type": "SASL_SCRAM_512_AUTH", "URI": "file:///etc/triggerfish/kafka/credentials.json"}],
            }],
        },
    },
    "fencing": {
        "fencing": {"enabled": True, "existingSecret": "fencing-passwords",
                    "infinispanCA": {"secretName": "infinispan-ca", "key": "ca.pem"},
                    "allowedHosts": ["fencing.example.com"],
                    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": ROLE_ARN + "-fencing"}}},
    },
    "insecure": {
        "api": {"auth": {"mode": "insecure"}},
        "networkPolicy": {"enabled": True,
                          "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "admin"}}}],
                          "fencingIngressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]},
        "fencing": {"enabled": True},
    },
    "single-process": {"cluster": {"enabled": False}, "replicas": 1, "state": {"existingClaim": "orders-state"}},
}


# -- helm ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def helm() -> str:
    found = shutil.which("helm")
    if found is None and (Path.home() / "go" / "bin" / "helm").is_file():
        found = str(Path.home() / "go" / "bin" / "helm")
    if found is not None:
        return found
    hint = "helm not found on PATH or in ~/go/bin; install it: go install helm.sh/helm/v3/cmd/helm@v3.22.0"
    if os.environ.get("CI"):
        pytest.fail(hint + " (.ci/run does this)")
    pytest.skip(hint)


def _helm(helm: str, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, input=stdin)
    if check and done.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{done.stderr}")
    return done


def _values_file(values: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@cache
def _render_text(helm: str, name: str) -> str:
    # values on stdin (-f -); each set is rendered once per session
    return _helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", "-",
                 stdin=yaml.safe_dump(VALUE_SETS[name])).stdout


def render(helm: str, name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(_render_text(helm, name)) if doc]


def one(manifests: list[dict[str, Any]], kind: str, name: str = FULLNAME) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered; kinds: {sorted({m['kind'] for m in manifests})}"
    return found[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    spec = deployment["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = [c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name]
    assert len(found) == 1
    return found[0]


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def validate_core(manifest: dict[str, Any]) -> None:
    """Kubernetes' schema, strict: an unknown or misspelt field is an error."""
    try:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message} at {list(exc.path)}")


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# -- every value set: renders, validates, lints ------------------------------------------------------


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_manifest_validates_against_kubernetes_schemas(helm: str, name: str) -> None:
    manifests = render(helm, name)
    assert manifests
    for m in manifests:
        assert m["metadata"].get("namespace") == NAMESPACE
        assert m["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        if m["kind"] not in CUSTOM_KINDS:
            validate_core(m)


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_pods_are_hardened_and_probed(helm: str, name: str) -> None:
    for d in (m for m in render(helm, name) if m["kind"] == "Deployment"):
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["terminationGracePeriodSeconds"] > 60
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert {"name": "http", "containerPort": 9000, "protocol": "TCP"} in c["ports"]
        # the only writable paths: /tmp and the state directory, both volumes
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert mounts["/etc/triggerfish/triggerfish.yaml"] == "config"
        assert c["args"][:5] == ["run", "--config", "/etc/triggerfish/triggerfish.yaml", "--state",
                                 "/var/lib/triggerfish/state.db"]
        assert "/var/lib/triggerfish" in mounts
        assert flag_values(c["args"], "--host") == ["0.0.0.0"] and flag_values(c["args"], "--port") == ["9000"]


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_helm_lint_strict_passes(helm: str, name: str, tmp_path: Path) -> None:
    values = _values_file(VALUE_SETS[name], tmp_path)
    done = _helm(helm, "lint", "--strict", str(CHART), "-f", str(values), "--namespace", NAMESPACE, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout
    assert "[ERROR]" not in done.stdout and "[WARNING]" not in done.stdout


def test_helm_lint_with_chart_defaults(helm: str) -> None:
    done = _helm(helm, "lint", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


# -- defaults ---------------------------------------------------------------------------------------


def test_defaults_run_a_fleet_in_cluster_mode(helm: str) -> None:
    manifests = render(helm, "defaults")
    assert sorted(m["kind"] for m in manifests) == [
        "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
    d = one(manifests, "Deployment")
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pod = d["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 75
    c = container(d, "engine")
    env = env_of(c)
    assert env["TRIGGERFISH_CLUSTER"]["value"] == RELEASE
    assert env["TRIGGERFISH_CLUSTER_BOOTSTRAP"]["value"] == "my-cluster-kafka-bootstrap.kafka.svc:9092"
    assert env["TRIGGERFISH_REPLICA_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # --require-auth, with the key from a Secret
    assert "--require-auth" in c["args"] and "--insecure" not in c["args"]
    for var, key in (("TRIGGERFISH_ACCESS_KEY_ID", "access-key-id"), ("TRIGGERFISH_SECRET_ACCESS_KEY", "secret-access-key")):
        assert env[var]["valueFrom"] == {"secretKeyRef": {"name": f"{FULLNAME}-access-key", "key": key}}
    # the Service's DNS names, and nothing else
    assert flag_values(c["args"], "--allowed-host") == [
        FULLNAME, f"{FULLNAME}.{NAMESPACE}", f"{FULLNAME}.{NAMESPACE}.svc", f"{FULLNAME}.{NAMESPACE}.svc.cluster.local"]
    assert c["resources"]["limits"]["memory"] == "1Gi"
    # spread over zones and nodes, preferred
    spread = pod["topologySpreadConstraints"]
    assert [s["topologyKey"] for s in spread] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    pod_labels = d["spec"]["template"]["metadata"]["labels"]
    for s in spread:
        assert s["whenUnsatisfiable"] == "ScheduleAnyway" and s["maxSkew"] == 1
        assert labels_match(s["labelSelector"]["matchLabels"], pod_labels)
    # the Service, PDB and ServiceAccount point at these pods
    svc = one(manifests, "Service")
    assert svc["spec"]["ports"] == [{"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP"}]
    assert labels_match(svc["spec"]["selector"], pod_labels)
    assert labels_match(d["spec"]["selector"]["matchLabels"], pod_labels)
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pod["serviceAccountName"] == one(manifests, "ServiceAccount")["metadata"]["name"]
    # the config map is mounted and rolls the pods when it changes
    cm = one(manifests, "ConfigMap")
    assert {v["name"]: v for v in pod["volumes"]}["config"]["configMap"]["name"] == cm["metadata"]["name"]
    assert len(d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]) == 64


@pytest.mark.parametrize("name", ["defaults", "secret-files", "fleet"])
def test_rendered_config_is_a_valid_triggerfish_yaml(helm: str, name: str, tmp_path: Path) -> None:
    cm = one(render(helm, name), "ConfigMap")
    document: dict[str, Any] = yaml.safe_load(cm["data"]["triggerfish.yaml"])
    if "config" in VALUE_SETS[name]:
        assert document == VALUE_SETS[name]["config"]  # rendered as given
    project = project_config.parse(document, base_dir=tmp_path)
    assert list(project.functions) == [f["FunctionName"] for f in document["Functions"]]
    assert len(project.mappings) == len(document["EventSourceMappings"]) >= 1


# -- cluster mode + ServiceMonitor + KEDA + IRSA ------------------------------------------------------


def test_fleet_with_keda_leaves_replicas_to_keda(helm: str) -> None:
    manifests = render(helm, "fleet")
    d = one(manifests, "Deployment")
    assert "replicas" not in d["spec"]  # KEDA owns the count; a replicas field would fight it on every upgrade
    env = env_of(container(d, "engine"))
    assert env["TRIGGERFISH_CLUSTER"]["value"] == "orders-fleet"
    assert env["TRIGGERFISH_CLUSTER_BOOTSTRAP"]["value"] == "kafka-0.kafka:9092,kafka-1.kafka:9092"

    so = one(manifests, "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 12)
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["authenticationRef"] == {"name": f"{FULLNAME}-kafka"}
    assert trigger["metadata"] == {
        "bootstrapServers": "kafka-0.kafka:9092,kafka-1.kafka:9092", "consumerGroup": "orders-triggerfish",
        "topic": "orders", "lagThreshold": "100", "activationLagThreshold": "5", "offsetResetPolicy": "earliest",
        "allowIdleConsumers": "false"}
    # KEDA's consumerGroup is the group the mapping commits to
    mapping = yaml.safe_load(one(manifests, "ConfigMap")["data"]["triggerfish.yaml"])["EventSourceMappings"][0]
    assert mapping["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == trigger["metadata"]["consumerGroup"]

    auth = one(manifests, "TriggerAuthentication", f"{FULLNAME}-kafka")
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert [r["parameter"] for r in auth["spec"]["secretTargetRef"]] == ["sasl", "username", "password"]

    sm = one(manifests, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]
    svc = one(manifests, "Service")
    assert labels_match(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert svc["spec"]["ports"][0]["name"] == "http"

    sa = one(manifests, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    assert d["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


# -- secrets as files and env ---------------------------------------------------------------------------


def test_secrets_reach_the_engine_as_files_and_env(helm: str) -> None:
    manifests = render(helm, "secret-files")
    d = one(manifests, "Deployment")
    c = container(d, "engine")
    env = env_of(c)
    assert env["TRIGGERFISH_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "orders-api-key"
    assert env["ORDERS_API_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "orders-env", "key": "token"}}
    assert c["envFrom"] == [{"secretRef": {"name": "orders-function-env"}}]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    kafka_mount = mounts["/etc/triggerfish/kafka"]
    assert kafka_mount["readOnly"] is True
    volume = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}[kafka_mount["name"]]
    assert volume["secret"] == {"secretName": "kafka-credentials", "defaultMode": 288,
                                "items": [{"key": "credentials.json", "path": "credentials.json"}]}
    # the file:// reference in the config names the mounted file
    document = yaml.safe_load(one(manifests, "ConfigMap")["data"]["triggerfish.yaml"])
    uri = document["EventSourceMappings"][0]["SourceAccessConfigurations"][0]["URI"]
    assert uri == "file://" + kafka_mount["mountPath"] + "/" + volume["secret"]["items"][0]["path"]
    assert flag_values(c["args"], "--allowed-host")[-1] == "triggerfish.example.com"


# -- site fencing -----------------------------------------------------------------------------------------


def test_fencing_runs_alone_with_its_own_config_and_secrets(helm: str, tmp_path: Path) -> None:
    manifests = render(helm, "fencing")
    name = f"{FULLNAME}-fencing"
    d = one(manifests, "Deployment", name)
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"] == {"type": "Recreate"}
    c = container(d, "fencing")
    env = env_of(c)
    assert not {"TRIGGERFISH_CLUSTER", "TRIGGERFISH_CLUSTER_BOOTSTRAP", "TRIGGERFISH_REPLICA_ID"} & set(env)
    assert env["FENCING_LOCK_FILE"]["value"].startswith("/tmp/")
    assert "--require-auth" in c["args"]
    assert flag_values(c["args"], "--allowed-host") == [
        name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc", f"{name}.{NAMESPACE}.svc.cluster.local",
        "fencing.example.com"]

    cm = one(manifests, "ConfigMap", name)
    project = project_config.parse(yaml.safe_load(cm["data"]["triggerfish.yaml"]), base_dir=tmp_path)
    assert project.mappings == []
    fn = project.functions["site-fencing"]
    assert fn.handler == "triggerfish.functions.fencing.handler"
    assert fn.reserved_concurrent_executions == 1
    assert fn.function_url_config == {"AuthType": "NONE"}
    variables = fn.environment
    assert variables["DRY_RUN"] == "true"
    json.loads(variables["INFINISPAN_SITE_ENDPOINTS"])

    pod = d["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert volumes[mounts["/etc/triggerfish/triggerfish.yaml"]]["configMap"]["name"] == name
    # every file the function reads is in a mounted Secret under the path its variable names
    for var, secret, key in (("WEBHOOK_USER_SECRET", "fencing-passwords", "webhook-password"),
                             ("INFINISPAN_USER_SECRET", "fencing-passwords", "infinispan-password"),
                             ("INFINISPAN_CA_FILE", "infinispan-ca", "ca.pem")):
        path = variables[var].removeprefix("file://")
        directory, file = path.rsplit("/", 1)
        source = volumes[mounts[directory]]["secret"]
        assert source["secretName"] == secret and {"key": key, "path": file} in source["items"], var
    assert pod["serviceAccountName"] == name
    sa = one(manifests, "ServiceAccount", name)
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("-fencing")

    svc = one(manifests, "Service", name)
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert labels_match(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
    # the engine's Service does not select the fencing pod, nor the other way round
    engine_svc = one(manifests, "Service")
    assert not labels_match(engine_svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])


# -- insecure + NetworkPolicy ------------------------------------------------------------------------------


def test_insecure_api_only_behind_a_network_policy(helm: str) -> None:
    manifests = render(helm, "insecure")
    d = one(manifests, "Deployment")
    c = container(d, "engine")
    assert "--insecure" in c["args"] and "--require-auth" not in c["args"]
    assert not {"TRIGGERFISH_ACCESS_KEY_ID", "TRIGGERFISH_SECRET_ACCESS_KEY"} & set(env_of(c))
    policy = one(manifests, "NetworkPolicy")
    pod_labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels_match(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert labels_match(rule["from"][0]["podSelector"]["matchLabels"], pod_labels)
    assert rule["from"][1] == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "admin"}}}
    fencing_policy = one(manifests, "NetworkPolicy", f"{FULLNAME}-fencing")
    fencing_pod = one(manifests, "Deployment", f"{FULLNAME}-fencing")["spec"]["template"]["metadata"]["labels"]
    assert labels_match(fencing_policy["spec"]["podSelector"]["matchLabels"], fencing_pod)
    assert fencing_policy["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_single_process_mode_keeps_one_pod_on_its_state_volume(helm: str) -> None:
    manifests = render(helm, "single-process")
    d = one(manifests, "Deployment")
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"] == {"type": "Recreate"}
    assert not {"TRIGGERFISH_CLUSTER", "TRIGGERFISH_REPLICA_ID"} & set(env_of(container(d, "engine")))
    volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {"name": "state", "persistentVolumeClaim": {"claimName": "orders-state"}}


def test_the_readmes_values_files_render_and_validate(helm: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Kubernetes"):readme.index("## Working on triggerfish")]
    fleet = re.search(r"```yaml\n(# orders-values.yaml\n.*?)```", section, re.S)
    keda = re.search(r"<<'YAML'\n(.*?)\nYAML\n", section, re.S)
    assert fleet is not None and keda is not None
    (tmp_path / "orders-values.yaml").write_text(fleet.group(1))
    (tmp_path / "keda-values.yaml").write_text(keda.group(1))
    out = _helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                "-f", str(tmp_path / "orders-values.yaml"), "-f", str(tmp_path / "keda-values.yaml")).stdout
    manifests = [d for d in yaml.safe_load_all(out) if d]
    for m in manifests:
        if m["kind"] not in CUSTOM_KINDS:
            validate_core(m)
    assert "replicas" not in one(manifests, "Deployment")["spec"]
    assert one(manifests, "ScaledObject")["spec"]["triggers"][0]["metadata"]["consumerGroup"] == "orders-triggerfish"
    project_config.parse(yaml.safe_load(one(manifests, "ConfigMap")["data"]["triggerfish.yaml"]), base_dir=tmp_path)


# -- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "extra", "message"), [
    ({"replica": 3}, (), "additional properties 'replica' not allowed"),
    ({"keda": {"enabld": True}}, (), "additional properties 'enabld' not allowed"),
    ({"config": {"Function": []}}, (), "additional properties 'Function' not allowed"),
    ({"terminationGracePeriodSeconds": 60}, (), "at '/terminationGracePeriodSeconds': value must be 'above 60 (the drain time of the engine): use 75 or more"),
    ({"terminationGracePeriodSeconds": 30}, (), "at '/terminationGracePeriodSeconds': value must be 'above 60"),
    # the same refusal without the schema (helm --skip-schema-validation): the template says it
    ({"terminationGracePeriodSeconds": 45}, ("--skip-schema-validation",),
     "terminationGracePeriodSeconds: 45 is not above the engine's drain time (60 s)"),
    ({"api": {"auth": {"mode": "insecure"}}}, (), "api.auth.mode: insecure lets anyone who reaches port 9000"),
    ({"cluster": {"enabled": False}, "replicas": 3}, (), "cluster.enabled: false runs one process"),
    ({"cluster": {"bootstrapServers": ""}}, (), "cluster.bootstrapServers: empty"),
    ({"keda": {"enabled": True}}, (), "keda.enabled: true needs keda.triggers"),
    ({"keda": {"enabled": True, "triggers": [{"topic": "orders", "consumerGroup": "g"}], "authentication": {"enabled": True}}},
     (), "keda.authentication.enabled: true needs keda.authentication.secretTargetRef"),
    ({"cluster": {"name": "orders fleet"}}, (), "at '/cluster/name'"),
])
def test_values_that_cannot_work_are_refused_with_the_fix(
        helm: str, tmp_path: Path, values: dict[str, Any], extra: tuple[str, ...], message: str) -> None:
    path = _values_file(values, tmp_path)
    done = _helm(helm, "template", RELEASE, str(CHART), "-f", str(path), *extra, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_grace_period_above_the_drain_time_is_accepted(helm: str, tmp_path: Path) -> None:
    path = _values_file({"terminationGracePeriodSeconds": 61}, tmp_path)
    out = _helm(helm, "template", RELEASE, str(CHART), "-f", str(path)).stdout
    assert "terminationGracePeriodSeconds: 61" in out


# -- NOTES.txt --------------------------------------------------------------------------------------------


def _notes(helm: str, values: dict[str, Any], tmp_path: Path) -> str:
    # helm template does not render NOTES.txt: render a copy of it inside a YAML document
    chart = tmp_path / "triggerfish"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes.tpl").write_text('{{- define "test.notes" -}}\n' + notes + "{{- end -}}\n")
    (chart / "templates" / "notes.yaml").write_text('notes: |\n  {{- include "test.notes" . | nindent 2 }}\n')
    path = _values_file(values, tmp_path / "values")
    out = _helm(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, "-f", str(path),
                "--show-only", "templates/notes.yaml").stdout
    text: str = yaml.safe_load(out)["notes"]
    return text


def test_notes_say_how_to_create_the_access_key_and_reach_the_api(helm: str, tmp_path: Path) -> None:
    notes = _notes(helm, VALUE_SETS["fencing"], tmp_path)
    assert f"kubectl -n {NAMESPACE} create secret generic {FULLNAME}-access-key" in notes
    assert f"http://{FULLNAME}.{NAMESPACE}.svc:9000" in notes
    assert "triggerfish status --config /etc/triggerfish/triggerfish.yaml" in notes
    assert "/lambda-url/site-fencing/" in notes and "DRY_RUN is \"true\"" in notes


def test_notes_in_single_process_mode_point_status_at_the_state_file(helm: str, tmp_path: Path) -> None:
    notes = _notes(helm, VALUE_SETS["single-process"], tmp_path)
    assert "single-process mode" in notes
    assert "triggerfish status --state /var/lib/triggerfish/state.db" in notes


# -- the bridge sidecar example ---------------------------------------------------------------------------


def _sidecar() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(SIDECAR.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_sidecar_example_validates_against_kubernetes_schemas() -> None:
    docs = _sidecar()
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "KafkaUser"]
    for d in docs:
        if d["kind"] not in CUSTOM_KINDS:
            validate_core(d)


def test_sidecar_kafka_user_is_mtls_with_the_acls_the_app_needs() -> None:
    user = next(d for d in _sidecar() if d["kind"] == "KafkaUser")
    assert user["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == "my-cluster"
    assert user["spec"]["authentication"] == {"type": "tls"}
    assert user["spec"]["authorization"]["type"] == "simple"
    acls = {(a["resource"]["type"], a["resource"]["name"]): sorted(a["operations"])
            for a in user["spec"]["authorization"]["acls"]}
    assert acls == {("topic", "orders"): ["Describe", "Read", "Write"], ("group", "orders-app"): ["Read"]}


def test_sidecar_bridge_config_loads_and_every_file_it_reads_is_mounted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _sidecar()
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    bridge = container(deployment, "bridge")
    assert bridge["restartPolicy"] == "Always"  # a native sidecar: up before the app, down after it
    assert bridge["args"] == ["bridge", "--config", "/etc/bridge/bridge.properties"]
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in bridge["volumeMounts"]}
    config_mount = mounts["/etc/bridge/bridge.properties"]
    assert volumes[config_mount["name"]]["configMap"]["name"] == cm["metadata"]["name"]
    assert config_mount["subPath"] in cm["data"]
    assert volumes[mounts["/etc/bridge/user"]["name"]]["secret"]["secretName"] == "orders-app"  # the KafkaUser's
    assert volumes[mounts["/etc/bridge/cluster-ca"]["name"]]["secret"]["secretName"] == "my-cluster-cluster-ca-cert"

    text = cm["data"]["bridge.properties"]
    # each file the properties name is an item of a mounted Secret
    for path in ("/etc/bridge/user/user.crt", "/etc/bridge/user/user.key", "/etc/bridge/cluster-ca/ca.crt"):
        assert path.rsplit("/", 1)[1] in {i["path"] for i in volumes[mounts[path.rsplit("/", 1)[0]]["name"]]["secret"]["items"]}
        assert path in text.replace("/etc/bridge/user:", "/etc/bridge/user/")
    # the bridge's own loader, with the mounts recreated under tmp_path
    for rel, content in (("user/user.crt", "CERT\n"), ("user/user.key", "KEY\n"), ("cluster-ca/ca.crt", "CA\n")):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    env = {e["name"]: e["value"] for e in bridge["env"]}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = bridge_config.from_properties(properties.parse(text.replace("/etc/bridge", str(tmp_path))), environ=env)
    assert (cfg.host, cfg.port) == ("127.0.0.1", 8080)  # only the app in the pod reaches it
    assert cfg.admin["bootstrap.servers"] == "my-cluster-kafka-bootstrap:9093"
    assert cfg.admin["security.protocol"] == "SSL"
    assert cfg.admin["ssl.certificate.pem"] == "CERT\n" and cfg.admin["ssl.key.pem"] == "KEY\n"
    assert cfg.admin["ssl.ca.location"] == str(tmp_path / "cluster-ca" / "ca.crt")
    # the app talks to the bridge on loopback
    app = container(deployment, "app")
    assert "http://127.0.0.1:8080/topics/orders" in " ".join(app["command"])


# -- the Containerfile ----------------------------------------------------------------------------------


def _instructions() -> Iterator[tuple[str, str]]:
    for line in (ROOT / "Containerfile").read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            yield word.upper(), rest.strip()


def test_containerfile_runs_non_root_with_an_exec_form_entrypoint() -> None:
    instructions = list(_instructions())
    final = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM"):]
    assert json.loads(dict(final)["ENTRYPOINT"]) == ["triggerfish"]  # exec form: SIGTERM reaches the engine
    user = dict(final)["USER"]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    assert "python:3.11-slim" in (ROOT / "Containerfile").read_text()
    assert '".[fencing]"' in (ROOT / "Containerfile").read_text()
    # the chart's pods run as the image's user
    assert int(user.split(":")[0]) == yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]["runAsUser"]
    ignore = (ROOT / ".containerignore").read_text()
    assert (ROOT / ".dockerignore").read_text().splitlines()[1:] == ignore.splitlines()[1:]
    assert "!src/" in ignore.splitlines() and "*" in ignore.splitlines()  # no .venv, .git or state in the context
