"""The Helm chart (deploy/helm/baton): ``helm lint``, and every manifest it renders with
the default and the production values validated against the Kubernetes JSON schemas
(kubeconform, offline), then read for what a cluster operator relies on: probes,
non-root read-only containers, a PDB per service, the ingest autoscaler, migrations as a
release hook, the scorer's store on a claim of its own when persistence is on, the
Prometheus Operator's objects carrying the same rules as compose."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from typing import Any

import pytest
import yaml

from baton_ingest.config import IngestSettings
from baton_router.config import RouterSettings
from baton_scorer.config import ScorerSettings
from baton_sla_monitor.config import SlaSettings
from tests.deploy.tools import ROOT, TOOLS, missing, run, tool

CHART = ROOT / "deploy" / "helm" / "baton"
KUBERNETES_VERSION = "1.33.0"
VALUES = {"default": [], "production": ["-f", str(CHART / "values-production.yaml")]}
# The kinds a service runs as: the scorer is a StatefulSet with scorer.persistence.enabled.
WORKLOADS = ("Deployment", "StatefulSet")
# Custom resources of the Prometheus Operator: no schema ships in the Kubernetes set;
# their content is checked below instead.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
SERVICES = {
    "ingest": IngestSettings,
    "scorer": ScorerSettings,
    "router": RouterSettings,
    "sla-monitor": SlaSettings,
}
# Read by the Kafka connection settings every service shares.
KAFKA_SECURITY = {
    "BATON_KAFKA_SECURITY_PROTOCOL",
    "BATON_KAFKA_SASL_MECHANISM",
    "BATON_KAFKA_SASL_USERNAME",
    "BATON_KAFKA_SASL_PASSWORD",
    "BATON_KAFKA_SSL_CAFILE",
    "BATON_KAFKA_SSL_CERTFILE",
    "BATON_KAFKA_SSL_KEYFILE",
}


@cache
def rendered(values: str) -> str:
    return run(tool("helm"), "template", "baton", str(CHART), *VALUES[values]).stdout


def documents(values: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered(values)) if doc]


def of_kind(values: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents(values) if d["kind"] == kind}


def workloads(values: str) -> dict[str, dict[str, Any]]:
    """Each service's Deployment or StatefulSet by name; a name is never both."""
    found = [d for d in documents(values) if d["kind"] in WORKLOADS]
    names = [d["metadata"]["name"] for d in found]
    assert len(set(names)) == len(names), names
    return dict(zip(names, found, strict=True))


def test_helm_lint_passes_with_default_and_production_values() -> None:
    helm = tool("helm")
    run(helm, "lint", "--strict", str(CHART))
    run(helm, "lint", "--strict", str(CHART), *VALUES["production"])


@pytest.mark.parametrize("values", sorted(VALUES))
def test_every_rendered_manifest_is_valid_against_the_kubernetes_schemas(values: str) -> None:
    schemas = TOOLS / "schemas" / f"v{KUBERNETES_VERSION}-local-strict"
    if not all((schemas / f"{kind.lower()}-apps-v1.json").is_file() for kind in WORKLOADS):
        missing("the Kubernetes JSON schemas")
    location = str(
        TOOLS
        / "schemas"
        / "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}"
        / "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )
    result = run(
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-kubernetes-version",
        KUBERNETES_VERSION,
        "-schema-location",
        location,
        "-skip",
        ",".join(sorted(OPERATOR_KINDS)),
        "-",
        stdin=rendered(values),
    )
    kinds = {d["kind"] for d in documents(values)} - OPERATOR_KINDS
    valid = int(re.search(r"Valid: (\d+)", result.stdout)[1])
    assert valid == sum(1 for d in documents(values) if d["kind"] in kinds), result.stdout
    assert {"Deployment", "Service", "PodDisruptionBudget", "Job"} <= kinds
    assert ("StatefulSet" in kinds) == (values == "production")


@pytest.mark.parametrize("values", sorted(VALUES))
def test_each_service_runs_non_root_read_only_with_probes_resources_and_a_pdb(
    values: str,
) -> None:
    services = workloads(values)
    budgets = of_kind(values, "PodDisruptionBudget")
    assert {name.removeprefix("baton-") for name in services} == set(SERVICES)
    for name, workload in services.items():
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == [f"baton-{name.removeprefix('baton-')}"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        selector = workload["spec"]["selector"]["matchLabels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == selector


@pytest.mark.parametrize("values", sorted(VALUES))
def test_containers_set_only_variables_the_services_read(values: str) -> None:
    config = next(iter(of_kind(values, "ConfigMap").values()))["data"]
    for name, workload in workloads(values).items():
        settings = SERVICES[name.removeprefix("baton-")]
        read = {f.alias for f in settings.model_fields.values() if f.alias} | KAFKA_SECURITY
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        # Secrets included: a container is given only the keys its service reads.
        env = {e["name"] for e in container["env"]} | set(config)
        unknown = env - read
        assert not unknown, f"{name} is given {sorted(unknown)}, which it does not read"
        port = settings.model_fields["port"].default
        assert container["ports"][0]["containerPort"] == port


def test_ingest_is_autoscaled_and_migrations_run_once_per_release() -> None:
    (hpa,) = of_kind("default", "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "baton-ingest"
    assert "replicas" not in of_kind("default", "Deployment")["baton-ingest"]["spec"]
    (job,) = of_kind("default", "Job").values()
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    commands = [c["command"] for c in pod["initContainers"] + pod["containers"]]
    assert commands == [["baton-router", "migrate"], ["baton-sla-monitor", "migrate"]]


def test_scorer_keeps_its_store_on_a_claim_of_its_own_with_persistence_enabled() -> None:
    data_dir = ScorerSettings.model_fields["data_dir"].alias
    scorer = of_kind("production", "StatefulSet")["baton-scorer"]["spec"]
    assert "baton-scorer" not in of_kind("production", "Deployment")
    assert scorer["serviceName"] in of_kind("production", "Service")
    assert scorer["podManagementPolicy"] == "Parallel"
    assert scorer["updateStrategy"]["type"] == "RollingUpdate"
    persistence = {
        **yaml.safe_load((CHART / "values.yaml").read_text())["scorer"]["persistence"],
        **yaml.safe_load((CHART / "values-production.yaml").read_text())["scorer"]["persistence"],
    }
    (claim,) = scorer["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "scorer-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == persistence["size"]
    assert claim["spec"]["accessModes"] == persistence["accessModes"]
    pod = scorer["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {"name": "scorer-data", "mountPath": env[data_dir]} in container["volumeMounts"]
    # The claim, not a pod volume of the same name, backs the mount.
    assert "scorer-data" not in {v["name"] for v in pod["volumes"]}

    # The same pod as the Deployment the same values give without persistence.
    off = run(
        tool("helm"),
        "template",
        "baton",
        str(CHART),
        *VALUES["production"],
        "--set",
        "scorer.persistence.enabled=false",
    ).stdout
    deployment = next(
        d
        for d in yaml.safe_load_all(off)
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "baton-scorer"
    )
    template = deployment["spec"]["template"]
    template["spec"]["volumes"].remove({"name": "scorer-data", "emptyDir": {}})
    assert scorer["template"] == template

    # Default values: a Deployment whose data dir is an emptyDir.
    assert not of_kind("default", "StatefulSet")
    pod = of_kind("default", "Deployment")["baton-scorer"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {"name": "scorer-data", "mountPath": env[data_dir]} in container["volumeMounts"]
    assert {"name": "scorer-data", "emptyDir": {}} in pod["volumes"]


def test_production_values_add_the_operator_objects_with_the_compose_rules() -> None:
    assert not of_kind("default", "PrometheusRule")
    (rule,) = of_kind("production", "PrometheusRule").values()
    compose_rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"] == compose_rules
    (monitor,) = of_kind("production", "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    # Production takes its secrets from a Secret the operator manages, never from values.
    assert not of_kind("production", "Secret")


def test_production_without_an_existing_secret_refuses_to_render() -> None:
    result = subprocess.run(
        [tool("helm"), "template", "baton", str(CHART), "--set", "env=production"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "existingSecret" in result.stderr
