"""docker-compose.yml beyond the services (tests/test_compose.py covers those): ports
only on 127.0.0.1 by default, the preflight step that refuses demo secrets under
BATON_ENV=production (run for real with sh), Alertmanager wired to Prometheus with a
webhook receiver, Grafana with its data source and the dashboard provisioned."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from tests.deploy.tools import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")


def local_value(raw: str) -> str:
    return DEFAULT.sub(lambda m: m[2], raw)


def test_every_published_port_is_on_loopback_by_default() -> None:
    published = [
        (name, local_value(str(port)))
        for name, service in SERVICES.items()
        for port in service.get("ports") or []
    ]
    assert len(published) == 8  # kafka, 4 services, prometheus, alertmanager, grafana
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def preflight(**env: str) -> subprocess.CompletedProcess[str]:
    service = SERVICES["preflight"]
    (mount,) = service["volumes"]
    script = ROOT / mount.split(":")[0]
    defaults = {k: local_value(str(v)) for k, v in service["environment"].items()}
    return subprocess.run(
        ["sh", str(script)],
        env={"PATH": os.environ["PATH"], **defaults, **env},
        capture_output=True,
        text=True,
        timeout=10,
    )


def test_everything_waits_for_the_preflight_step() -> None:
    for name in ("kafka", "postgres"):
        assert SERVICES[name]["depends_on"]["preflight"]["condition"] == (
            "service_completed_successfully"
        )


def test_local_defaults_start_locally() -> None:
    assert preflight().returncode == 0


def test_production_refuses_any_demo_secret_and_names_it() -> None:
    secrets = [k for k in SERVICES["preflight"]["environment"] if k != "BATON_ENV"]
    real = {k: f"real-{k.lower()}-0123456789" for k in secrets}
    assert preflight(BATON_ENV="production", **real).returncode == 0
    for name in secrets:
        result = preflight(BATON_ENV="production", **{**real, name: preflight_default(name)})
        assert result.returncode != 0
        assert name in result.stderr


def preflight_default(name: str) -> str:
    return local_value(str(SERVICES["preflight"]["environment"][name]))


@pytest.mark.parametrize("service", ["ingest", "scorer", "router", "sla-monitor"])
def test_services_take_baton_env_from_the_shell(service: str) -> None:
    assert SERVICES[service]["environment"]["BATON_ENV"] == "${BATON_ENV:-local}"


def test_prometheus_sends_alerts_to_alertmanager_with_a_webhook_receiver() -> None:
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (target,) = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target.split(":")[0] in SERVICES
    config = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["routes"][0]["receiver"] == "page"
    for receiver in receivers.values():
        (hook,) = receiver["webhook_configs"]
        assert hook["url_file"] == "/etc/alertmanager/webhook-url"
    (config_mount,) = SERVICES["alertmanager"]["configs"]
    assert config_mount["target"] == "/etc/alertmanager/webhook-url"
    url = local_value(COMPOSE["configs"][config_mount["source"]]["content"])
    assert url.split("/")[2].split(":")[0] in SERVICES  # alert-log, locally


def test_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    grafana = SERVICES["grafana"]
    mounts = {v.split(":")[1]: ROOT / v.split(":")[0] for v in grafana["volumes"] if v[0] == "."}
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090" and source["isDefault"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "baton.yml").read_text())[
        "providers"
    ]
    folder = provider["options"]["path"]
    (dashboard,) = [json.loads(m.read_text()) for t, m in mounts.items() if t.startswith(folder)]
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "baton_sla_compliance_ratio",
        "baton_sla_open_clocks",
        "baton_router_queue_depth",
        "baton_scorer_consumer_lag_messages",
        "baton_scorer_event_time_lag_seconds",
    ):
        assert metric in expressions, f"the dashboard does not chart {metric}"
