"""docker-compose.yml, the Dockerfile and the Prometheus config agree with the code.

No Docker needed: the files are parsed and compared with the settings classes (ports,
environment variable aliases, validation), the services' ``[project.scripts]`` and the
metrics the code defines. Renaming a port, an env var or a console script in the code
without updating the deployment files (or the other way round) fails here.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from baton_ingest.config import IngestSettings
from baton_router.config import RouterSettings
from baton_scorer.config import ScorerSettings
from baton_shared.settings import DatabaseSettings, ServiceSettings
from baton_sla_monitor.config import SlaSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"


@dataclass(frozen=True)
class Service:
    """A Baton service as the code defines it, keyed by its compose service name."""

    name: str
    settings: type[BaseSettings]
    prometheus_job: str

    @property
    def needs_database(self) -> bool:
        """Keeps state in PostgreSQL, or its data keys in privacy mode (ingest, scorer)."""
        return "database_url" in self.settings.model_fields

    @property
    def default_port(self) -> int:
        return self.settings.model_fields["port"].default

    @property
    def host_variable(self) -> str:
        return alias_of(self.settings, "host")

    @property
    def port_variable(self) -> str:
        return alias_of(self.settings, "port")

    @property
    def aliases(self) -> set[str]:
        return {field.alias for field in self.settings.model_fields.values() if field.alias}

    @property
    def project_dir(self) -> Path:
        # services/<name>/<package>/config.py -> services/<name>
        return Path(inspect.getfile(self.settings)).resolve().parents[1]

    @property
    def package(self) -> str:
        return self.settings.__module__.split(".")[0]


SERVICES = (
    Service("ingest", IngestSettings, "baton-ingest"),
    Service("scorer", ScorerSettings, "baton-scorer"),
    Service("router", RouterSettings, "baton-router"),
    Service("sla-monitor", SlaSettings, "baton-sla-monitor"),
)
by_name = pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)


def alias_of(settings: type[BaseSettings], field: str) -> str:
    alias = settings.model_fields[field].alias
    assert alias, f"{settings.__name__}.{field} has no env var alias"
    return alias


KAFKA_VAR = alias_of(ServiceSettings, "kafka_bootstrap_servers")
DATABASE_VAR = alias_of(DatabaseSettings, "database_url")
ENV_VAR = alias_of(ServiceSettings, "env")


# --- reading the files ---------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the shell: the local default."""

    def default(match: re.Match[str]) -> str:
        assert match["op"], (
            f"${{{match['name']}}} has no default: `docker compose up` without it set "
            "would give the service an empty value"
        )
        return match["default"]

    return _INTERPOLATION.sub(default, value.replace("$$", "\0")).replace("\0", "$")


def environment(name: str) -> dict[str, str]:
    """A compose service's environment as the container sees it (local defaults)."""
    raw = compose_service(name).get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        raw = dict(pairs)
    return {key: interpolate("" if value is None else str(value)) for key, value in raw.items()}


def published_ports(name: str) -> list[tuple[int, int]]:
    """(host port, container port) pairs of a compose service."""
    pairs = []
    for entry in compose_service(name).get("ports") or []:
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) >= 2, f"{name}: port {entry!r} publishes no fixed host port"
        pairs.append((int(parts[-2]), int(parts[-1])))
    return pairs


def depends_on(name: str) -> dict[str, str]:
    raw = compose_service(name).get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {dep: (spec or {}).get("condition", "service_started") for dep, spec in raw.items()}


def command(name: str) -> list[str]:
    raw = compose_service(name).get("command")
    assert raw, f"compose service {name!r} sets no command; the image's default is ingest"
    return raw.split() if isinstance(raw, str) else [str(part) for part in raw]


@cache
def prometheus() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_CONFIG.read_text())


# --- the compose services ------------------------------------------------------------


def test_compose_defines_every_service_and_its_infrastructure() -> None:
    services = set(compose()["services"])
    expected = {s.name for s in SERVICES} | {"kafka", "postgres", "prometheus"}
    assert expected <= services, f"missing from docker-compose.yml: {expected - services}"


@by_name
def test_compose_ports_match_service_defaults(service: Service) -> None:
    port = service.default_port
    assert published_ports(service.name) == [(port, port)], (
        f"{service.name} listens on {port} ({service.settings.__name__}.port); "
        f"compose publishes {published_ports(service.name)}"
    )
    env = environment(service.name)
    if service.port_variable in env:
        assert int(env[service.port_variable]) == port


@by_name
def test_compose_environment_uses_only_settings_aliases(service: Service) -> None:
    # The settings ignore unknown variables (extra="ignore"), so a misspelt or renamed
    # variable would be dropped silently and the service would run on its default.
    unknown = set(environment(service.name)) - service.aliases
    assert not unknown, (
        f"{service.name} sets {sorted(unknown)}, which {service.settings.__name__} does not "
        f"read; its variables are {sorted(service.aliases)}"
    )


@by_name
def test_compose_sets_connection_variables(service: Service) -> None:
    env = environment(service.name)
    assert env.get(KAFKA_VAR) == "kafka:9092"
    assert env.get(service.host_variable) == "0.0.0.0", (
        f"{service.name} binds 127.0.0.1 unless {service.host_variable}=0.0.0.0; "
        "published ports would not reach it"
    )
    assert env.get(ENV_VAR) == "local"
    if service.needs_database:
        assert DATABASE_VAR in env, f"{service.name} needs {DATABASE_VAR}"
    else:
        assert DATABASE_VAR not in env


@by_name
def test_compose_environment_is_accepted_by_settings(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container's environment, and only it, validates (secrets, URLs, key lists)."""
    for alias in service.aliases:
        monkeypatch.delenv(alias, raising=False)
        monkeypatch.delenv(alias.lower(), raising=False)
    for key, value in environment(service.name).items():
        monkeypatch.setenv(key, value)
    settings: Any = service.settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.host == "0.0.0.0"
    assert settings.port == service.default_port
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    if issubclass(service.settings, DatabaseSettings):
        assert settings.sqlalchemy_url.startswith("postgresql+asyncpg://")


def test_compose_kafka_advertises_the_services_bootstrap_address() -> None:
    kafka_env = environment("kafka")
    advertised = {
        listener.split("://", 1)[1]
        for listener in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    for service in SERVICES:
        for address in environment(service.name)[KAFKA_VAR].split(","):
            assert address in advertised, f"{service.name} bootstraps from {address}"
            assert address.split(":")[0] in {"kafka", compose_service("kafka").get("hostname")}
    assert "broker" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert kafka_env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka_env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_compose_database_url_matches_postgres_service() -> None:
    pg = environment("postgres")
    for service in SERVICES:
        if not service.needs_database:
            continue
        url = urlsplit(environment(service.name)[DATABASE_VAR])
        assert url.scheme in ("postgresql", "postgres")
        assert (url.hostname, url.port or 5432) == ("postgres", 5432)
        assert url.username == pg["POSTGRES_USER"]
        assert url.password == pg["POSTGRES_PASSWORD"]
        assert url.path.lstrip("/") == pg.get("POSTGRES_DB", pg["POSTGRES_USER"])


@by_name
def test_compose_services_wait_for_healthy_dependencies(service: Service) -> None:
    deps = depends_on(service.name)
    assert deps.get("kafka") == "service_healthy"
    if service.needs_database:
        assert deps.get("postgres") == "service_healthy"
    for dependency in deps:
        if deps[dependency] == "service_healthy":
            assert "healthcheck" in compose_service(dependency), dependency


@by_name
def test_compose_healthchecks_probe_service_healthz(service: Service) -> None:
    check = compose_service(service.name).get("healthcheck") or {}
    test = check.get("test")
    assert test, f"{service.name} has no healthcheck"
    text = test if isinstance(test, str) else " ".join(test)
    assert f":{service.default_port}/healthz" in text


@by_name
def test_compose_command_is_a_console_script_of_the_service(service: Service) -> None:
    pyproject = tomllib.loads((service.project_dir / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    script = command(service.name)[0]
    assert script in scripts, f"{service.name} runs {script!r}; its scripts are {sorted(scripts)}"
    assert scripts[script].split(".")[0] == service.package, (
        f"{script} starts {scripts[script]}, not part of {service.package}"
    )


@by_name
def test_compose_services_build_from_workspace_dockerfile(service: Service) -> None:
    build = compose_service(service.name).get("build")
    assert isinstance(build, dict), f"{service.name} must build deploy/docker/Dockerfile"
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context == ROOT, "the image needs the whole workspace (uv.lock) as build context"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_scorer_data_dir_is_a_volume() -> None:
    data_dir = environment("scorer")[alias_of(ScorerSettings, "data_dir")]
    mounts = [str(v).split(":")[1] for v in compose_service("scorer").get("volumes") or []]
    assert data_dir in mounts


# --- Prometheus ----------------------------------------------------------------------


@by_name
def test_prometheus_scrapes_every_service_at_compose_address(service: Service) -> None:
    jobs = {job["job_name"]: job for job in prometheus()["scrape_configs"]}
    assert service.prometheus_job in jobs, f"no scrape job {service.prometheus_job}"
    job = jobs[service.prometheus_job]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets == [f"{service.name}:{service.default_port}"]


def test_prometheus_config_and_rules_are_mounted() -> None:
    rule_files = prometheus().get("rule_files") or []
    assert rule_files, "prometheus.yml loads no alerting rules"
    for rule_file in rule_files:
        assert (PROMETHEUS_DIR / rule_file).is_file(), rule_file
    volumes = [str(v) for v in compose_service("prometheus").get("volumes") or []]
    mounted = {(COMPOSE_FILE.parent / v.split(":")[0]).resolve(): v.split(":")[1] for v in volumes}
    assert mounted.get(PROMETHEUS_DIR.resolve()) == "/etc/prometheus"
    assert published_ports("prometheus") == [(9090, 9090)]


def _exposed_metric_names() -> set[str]:
    """Every sample name the code's prometheus_client metrics can expose."""
    declaration = re.compile(
        r"\b(Counter|Gauge|Histogram|Summary)\(\s*[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']"
    )
    names: set[str] = set()
    for source in [*ROOT.glob("services/*/baton_*/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        for kind, name in declaration.findall(source.read_text()):
            if kind == "Counter":
                base = name.removesuffix("_total")
                names |= {f"{base}_total", f"{base}_created"}
            elif kind == "Gauge":
                names.add(name)
            else:
                names |= {name, f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
    return names


def test_alert_rules_use_metrics_defined_in_code() -> None:
    exposed = _exposed_metric_names()
    assert "baton_ingest_rejected_total" in exposed  # the scan itself works
    rules = [
        rule
        for rule_file in prometheus()["rule_files"]
        for group in yaml.safe_load((PROMETHEUS_DIR / rule_file).read_text())["groups"]
        for rule in group["rules"]
    ]
    assert rules
    for rule in rules:
        assert rule.get("alert") and rule.get("expr"), rule
        for metric in re.findall(r"\bbaton_[a-z0-9_]+", rule["expr"]):
            assert metric in exposed, f"alert {rule['alert']} uses unknown metric {metric}"


# --- the image -----------------------------------------------------------------------


def _workspace_members() -> list[Path]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = root["tool"]["uv"]["workspace"]["members"]
    return sorted(
        path
        for pattern in members
        for path in ROOT.glob(pattern)
        if (path / "pyproject.toml").is_file()
    )


def test_dockerfile_copies_every_workspace_member_manifest() -> None:
    """The dependency layer (``--no-install-workspace``) needs every member's pyproject."""
    copied = set(re.findall(r"^COPY\s+(\S+/pyproject\.toml)\s", DOCKERFILE.read_text(), re.M))
    for member in _workspace_members():
        manifest = (member / "pyproject.toml").relative_to(ROOT).as_posix()
        assert manifest in copied, f"deploy/docker/Dockerfile does not COPY {manifest}"
    text = DOCKERFILE.read_text()
    assert "uv sync --frozen --no-dev --all-packages" in text
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", text, re.M), "the image must not run as root"


def test_dockerignore_keeps_workspace_sources() -> None:
    patterns = [
        line.strip().lstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for path in [
        "uv.lock",
        "pyproject.toml",
        *(m.relative_to(ROOT).as_posix() + "/pyproject.toml" for m in _workspace_members()),
    ]:
        prefixes = [path, *("/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1))]
        excluded = [p for p in patterns for pre in prefixes if fnmatch.fnmatch(pre, p)]
        assert not excluded, f".dockerignore excludes {path} (by {excluded})"
    assert ".venv" in patterns and ".git" in patterns


def test_grafana_dashboard_uses_metrics_defined_in_code() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "baton-dashboard.json").read_text())
    exposed = _exposed_metric_names()
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert expressions
    for expr in expressions:
        for metric in re.findall(r"\bbaton_[a-z0-9_]+", expr):
            assert metric in exposed, f"dashboard uses unknown metric {metric}"
