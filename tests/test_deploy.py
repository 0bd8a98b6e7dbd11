"""Deployment artifacts (deploy/, .env.example) stay loadable, pinned, valid and in step with
supportai/settings.py. Plain file checks: no database, no Docker, no cluster.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from helm_python.chart import Chart as HelmChart
from helm_python.chart import lint as helm_lint

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS = ROOT / "supportai" / "settings.py"
APP_IMAGE = "supportai"  # the repository name of the image deploy/Dockerfile builds
# Helm templates are Go templates, not YAML: the chart's tests render them first.
YAML_FILES = sorted(
    p
    for p in [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]
    if "templates" not in p.relative_to(DEPLOY).parts
)
K8S_MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


# --- helpers ------------------------------------------------------------------------------------


def load_yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any) -> str:
    """Compose's ${VAR:-default} with nothing set: the default; ${VAR:?msg} and ${VAR}: a marker."""

    def replace(match: re.Match) -> str:
        operator, argument = match.group(2), match.group(3)
        if operator in {":-", "-"}:
            return argument
        return f"<{match.group(1)}>"

    return _INTERPOLATION.sub(replace, str(value))


def k8s_objects() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in K8S_MANIFESTS for doc in load_yaml_docs(path)]


def k8s_kind(kind: str) -> list[dict]:
    return [doc for _, doc in k8s_objects() if doc["kind"] == kind]


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] in {"Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet"}:
        return obj["spec"]["template"]["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if obj["kind"] == "Pod":
        return obj["spec"]
    return None


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def image_repository(image: str) -> str:
    """`registry:5000/team/supportai:1.0@sha256:…` -> `supportai`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def is_app_image(image: str) -> bool:
    return image_repository(image) == APP_IMAGE


def app_pod_specs() -> list[tuple[str, dict]]:
    found = []
    for _, obj in k8s_objects():
        spec = pod_spec(obj)
        if spec and any(is_app_image(c["image"]) for c in containers(spec)):
            found.append((f"{obj['kind']}/{obj['metadata']['name']}", spec))
    return found


def deployment(name: str) -> dict:
    matches = [d for d in k8s_kind("Deployment") if d["metadata"]["name"] == name]
    assert matches, f"no Deployment named {name}"
    return matches[0]


# --- image pinning --------------------------------------------------------------------------------

# Images whose upstream versions have two parts (PostgreSQL 10+ is MAJOR.MINOR: 16.10 is exact).
TWO_PART_VERSIONS = {"postgres"}
FLOATING_TAGS = {"latest", "stable", "main", "master", "edge", "nightly", "dev", "lts", "current"}


def pin_problem(image: str) -> str | None:
    """Why `image` is not pinned to an exact version (None when it is)."""
    if "@" in image:
        digest = image.split("@", 1)[1]
        if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return None
        return f"{image}: malformed digest"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"{image}: no tag (means latest)"
    tag = last.split(":", 1)[1]
    if tag.lower() in FLOATING_TAGS or tag.lower().startswith("latest"):
        return f"{image}: floating tag {tag!r}"
    version = re.match(r"v?(\d+(?:\.\d+)*)(?![.\d])", tag)
    if not version:
        return f"{image}: tag {tag!r} is not a version"
    parts = len(version.group(1).split("."))
    needed = 2 if image_repository(image) in TWO_PART_VERSIONS else 3
    if parts < needed:
        return f"{image}: tag {tag!r} floats (only {parts} version part(s), need {needed})"
    return None


@pytest.mark.parametrize(
    "image",
    [
        "postgres",
        "postgres:latest",
        "redis:7",
        "redis:7-bookworm",
        "qdrant/qdrant:v1",
        "qdrant/qdrant:v1.19",
        "python:3.11-slim",
        "node:20-bookworm-slim",
        "vllm/vllm-openai:latest",
        "registry.example.com:5000/supportai",
        "supportai@sha256:abc",
    ],
)
def test_pin_checker_rejects_floating_images(image):
    assert pin_problem(image) is not None


@pytest.mark.parametrize(
    "image",
    [
        "postgres:16.10-bookworm",
        "redis:7.4.6-bookworm",
        "qdrant/qdrant:v1.19.0-unprivileged",
        "python:3.11.14-slim-bookworm",
        "registry.example.com:5000/supportai:0.1.0",
        "python@sha256:" + "a" * 64,
    ],
)
def test_pin_checker_accepts_exact_images(image):
    assert pin_problem(image) is None


def compose_images() -> dict[str, str]:
    return {
        name: interpolate(service["image"])
        for name, service in compose()["services"].items()
        if "image" in service
    }


def k8s_images() -> list[str]:
    images = []
    for _, obj in k8s_objects():
        spec = pod_spec(obj)
        if spec:
            images += [c["image"] for c in containers(spec)]
    return images


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def test_every_compose_service_has_a_pinned_image():
    services = compose()["services"]
    images = compose_images()
    assert set(images) == set(services), "every service names its image (built ones their tag)"
    problems = [p for p in map(pin_problem, images.values()) if p]
    assert not problems, problems


def test_every_k8s_image_is_pinned():
    images = k8s_images()
    assert len(images) >= 10
    # Kustomize may rewrite the app image: its replacement tag must be exact too.
    for entry in kustomization().get("images", []):
        name = entry.get("newName", entry["name"])
        if "digest" in entry:
            images.append(f"{name}@{entry['digest']}")
        else:
            images.append(f"{name}:{entry.get('newTag', '')}".rstrip(":"))
    problems = [p for p in map(pin_problem, images) if p]
    assert not problems, problems


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_dockerfile_base_images_are_pinned():
    stages: set[str] = set()
    bases = []
    for keyword, args in dockerfile_instructions():
        if keyword != "FROM":
            continue
        words = [w for w in args.split() if not w.startswith("--")]
        if words[0].lower() not in stages:  # `FROM builder` reuses a stage, not an image
            bases.append(words[0])
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2].lower())
    assert len(bases) >= 3, "widget, builder and runtime stages"
    assert not any("$" in b for b in bases), "FROM must not hide the tag behind an ARG"
    problems = [p for p in map(pin_problem, bases) if p]
    assert not problems, problems
    assert any(image_repository(b) == "node" for b in bases), "the widget is built in Node"


def test_dockerfile_runtime_runs_as_non_root_with_healthcheck():
    runtime = dockerfile_stages()[-1]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == "10001"
    keywords = [keyword for keyword, _ in runtime]
    assert "HEALTHCHECK" in keywords
    assert any(k == "EXPOSE" and "8000" in a.split() for k, a in runtime)
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "HF_HUB_OFFLINE=1" in env


def test_dockerfile_installs_production_dependencies_only():
    runs = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "RUN")
    assert "torch==2.13.0" in runs
    assert "download.pytorch.org/whl/cpu" in runs
    assert "collectstatic" in runs
    assert "npm ci" in runs and "npm run build" in runs
    assert not re.search(r"\[[^\]]*\bdev\b", runs), "no dev extras in the image"
    assert "local-llm" not in runs and "llama" not in runs.lower(), "vLLM serves the model"


def test_dockerfile_copies_files_that_exist():
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY" or "--from=" in args:
            continue
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            if any(ch in source for ch in "*?["):
                continue
            assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "var", "frontend/node_modules"):
        assert entry in ignored


def test_entrypoint_has_every_role_and_valid_syntax():
    text = ENTRYPOINT.read_text()
    for role in ("web", "worker", "beat", "migrate"):
        assert re.search(rf"^\s*{role}\)", text, re.MULTILINE), f"no `{role}` subcommand"
    assert ENTRYPOINT.stat().st_mode & 0o111, "the entry point must be executable"
    result = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- environment variables ------------------------------------------------------------------------


def settings_reads() -> dict[str, ast.expr | None]:
    """Every variable settings.py reads, with the default expression given (None if none).

    A read is a call to `env.<method>("NAME", …)` or to one of settings.py's own helpers (module
    functions whose first parameter is `name`: _bool, _int, _secret…, and any added later).
    """
    tree = ast.parse(SETTINGS.read_text())
    helpers = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.args.args and node.args.args[0].arg == "name"
    }
    reads: dict[str, ast.expr | None] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_env = (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
            and func.attr != "read_env"
        )
        is_helper = isinstance(func, ast.Name) and func.id in helpers
        is_os = (
            isinstance(func, ast.Attribute)
            and func.attr in {"getenv", "get"}
            and ("environ" in ast.unparse(func.value) or ast.unparse(func.value) == "os")
        )
        first = node.args[0]
        if not (is_env or is_helper or is_os):
            continue
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        default = node.args[1] if len(node.args) > 1 else None
        for keyword in node.keywords:
            if keyword.arg == "default":
                default = keyword.value
        reads.setdefault(first.value, default)
    return reads


def settings_secrets() -> set[str]:
    tree = ast.parse(SETTINGS.read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_secret"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def process_variables() -> set[str]:
    """Variables read outside settings.py by the processes the image runs."""
    names: set[str] = set()
    readers = (
        ROOT / "workers" / "__main__.py",
        DEPLOY / "healthcheck.py",
        ROOT / "apps" / "core" / "observability" / "metrics.py",  # PROMETHEUS_MULTIPROC_DIR
    )
    for path in readers:
        text = path.read_text()
        names |= set(re.findall(r"environ\.get\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
        names |= set(re.findall(r"getenv\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)[:}-]", ENTRYPOINT.read_text()))
    return names


def allowed_variables() -> set[str]:
    return (
        set(settings_reads())
        | {f"{name}_FILE" for name in settings_secrets()}
        | process_variables()
    )


def env_example() -> dict[str, str]:
    """NAME -> value for `NAME=value` and commented `# NAME=value` lines."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found.setdefault(match.group(1), match.group(2).strip())
    return found


def compose_app_services() -> dict[str, dict]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if is_app_image(interpolate(service.get("image", ""))) or "build" in service
    }


def compose_app_environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(
            item.split("=", 1) if "=" in item else (item, "") for item in environment
        )
    return {key: interpolate(value) for key, value in environment.items()}


def app_env_sources() -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret an app container loads with envFrom."""
    sources = set()
    for _, spec in app_pod_specs():
        for container in containers(spec):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    sources.add(("ConfigMap", source["configMapRef"]["name"]))
                if "secretRef" in source:
                    sources.add(("Secret", source["secretRef"]["name"]))
    return sources


def k8s_config() -> dict[str, str]:
    """The variables app pods get from ConfigMaps and Secrets (others, like KEDA's, are not
    the app's)."""
    data: dict[str, str] = {}
    loaded = app_env_sources()
    for obj in [*k8s_kind("ConfigMap"), *k8s_kind("Secret")]:
        if (obj["kind"], obj["metadata"]["name"]) not in loaded:
            continue
        data.update({k: str(v) for k, v in (obj.get("data") or {}).items()})
        data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    return data


def test_settings_parser_finds_the_variables():
    reads = settings_reads()
    for name in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "QDRANT_URL", "LOG_LEVEL"):
        assert name in reads
    assert len(reads) >= 25
    assert {"SECRET_KEY", "QDRANT_API_KEY", "LLM_API_KEY"} <= settings_secrets()


def test_compose_app_variables_are_read_by_the_app():
    services = compose_app_services()
    assert {"web", "worker", "beat", "migrate"} <= set(services)
    allowed = allowed_variables()
    for name, service in services.items():
        unknown = set(compose_app_environment(service)) - allowed
        assert not unknown, f"compose service {name} sets variables nothing reads: {unknown}"


def test_k8s_variables_are_read_by_the_app():
    allowed = allowed_variables()
    config = k8s_config()
    assert len(config) >= 10
    unknown = set(config) - allowed
    assert not unknown, f"ConfigMap/Secret keys nothing reads: {unknown}"
    for where, spec in app_pod_specs():
        for container in containers(spec):
            names = {e["name"] for e in container.get("env", [])}
            assert not names - allowed, f"{where}/{container['name']}: {names - allowed}"


def test_production_wiring_is_configured():
    needed = {"DATABASE_URL", "REDIS_URL", "QDRANT_URL", "LLM_BASE_URL", "LLM_MODEL"}
    for name, service in compose_app_services().items():
        environment = compose_app_environment(service)
        assert needed <= set(environment), f"compose {name}"
        assert {"SECRET_KEY", "SECRET_KEY_FILE"} & set(environment), f"compose {name}"
        assert environment["DEBUG"] == "false"
    config = k8s_config()
    assert needed | {"SECRET_KEY"} <= set(config)
    assert config["DEBUG"] == "false"
    assert config["DATABASE_URL"].startswith("postgres")


def test_env_example_lists_every_settings_variable():
    missing = set(settings_reads()) - set(env_example())
    assert not missing, f"add to .env.example (with default and comment): {sorted(missing)}"


def test_env_example_has_no_unknown_variables():
    unknown = set(env_example()) - allowed_variables()
    assert not unknown, f".env.example lists variables nothing reads: {sorted(unknown)}"


def _literal(node: ast.expr) -> Any:
    """The value of a constant default expression such as 25 * 1024 * 1024; raises otherwise."""
    allowed = (ast.Constant, ast.BinOp, ast.operator, ast.List, ast.Tuple, ast.Load, ast.UnaryOp)
    allowed += (ast.USub, ast.Expression)
    expression = ast.Expression(node)
    if not all(isinstance(n, allowed) for n in ast.walk(expression)):
        raise ValueError("not a literal")
    return eval(compile(expression, "<default>", "eval"), {"__builtins__": {}})  # noqa: S307


def _as_env(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(value)
    return str(value)


def test_env_example_defaults_match_settings():
    example = env_example()
    checked = 0
    for name, node in settings_reads().items():
        if node is None:
            continue
        try:
            default = _literal(node)
        except ValueError:
            continue  # computed from other settings: documented, not compared
        given = example[name]
        if isinstance(default, float):
            assert float(given) == default, f"{name}: .env.example {given!r}, settings {default!r}"
        else:
            assert given == _as_env(default), (
                f"{name}: .env.example {given!r}, settings {default!r}"
            )
        checked += 1
    assert checked >= 15


def test_env_example_comments_every_variable():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#?\s*[A-Z][A-Z0-9_]*=", line):
            above = lines[index - 1] if index else ""
            comment = above.startswith("#") and not re.match(r"^#\s*[A-Z][A-Z0-9_]*=", above)
            assert comment, f".env.example line {index + 1} ({line}) needs a comment above it"


# --- YAML, compose --------------------------------------------------------------------------------


def test_yaml_files_exist():
    assert COMPOSE_FILE in YAML_FILES
    assert len(K8S_MANIFESTS) >= 8


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_file_loads(path):
    docs = load_yaml_docs(path)
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


def test_compose_services_have_healthchecks():
    services = compose()["services"]
    assert {"web", "worker", "beat", "migrate", "postgres", "redis", "qdrant", "vllm"} <= set(
        services
    )
    for name, service in services.items():
        if str(service.get("restart")) == "no":
            continue  # one-shot (migrate): nothing to watch
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_compose_dependencies_wait_on_conditions():
    services = compose()["services"]
    for name in ("web", "worker", "beat", "migrate"):
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, rule in depends.items():
            assert target in services
            condition = rule["condition"]
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), target
        if name != "migrate":
            assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_compose_env_file_and_named_volumes():
    document = compose()
    declared = set(document.get("volumes") or {})
    for name, service in compose_app_services().items():
        assert service.get("env_file"), f"{name} reads no env file"
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source = interpolate(volume).split(":", 1)[0]
            else:
                source = interpolate(volume.get("source", ""))
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source} is not declared"
    for stateful in ("postgres", "redis", "qdrant"):
        assert document["services"][stateful].get("volumes"), f"{stateful} keeps no data"


def test_compose_workers_cover_every_queue():
    from workers.config import TASK_QUEUES

    served = set()
    for service in compose_app_services().values():
        command = service.get("command") or []
        if command and command[0] == "worker":
            served |= set(command[1].split(",")) if len(command) > 1 else {"*"}
    assert "*" in served or {q.name for q in TASK_QUEUES} <= served


# --- Prometheus metrics: web and every worker ----------------------------------------------------

# The names settings.py and apps/core/observability/metrics.py read (docs/analytics.md).
METRICS_TOKEN = "METRICS_TOKEN"
EXPORTER_PORT = "WORKER_METRICS_PORT"
EXPORTER_ADDR = "WORKER_METRICS_ADDR"
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
ALL_INTERFACES = {"0.0.0.0", "::"}  # noqa: S104 (what a container must listen on)


def test_metrics_variable_names_are_the_ones_the_app_reads():
    reads = settings_reads()
    assert {METRICS_TOKEN, EXPORTER_PORT, EXPORTER_ADDR} <= set(reads)
    assert METRICS_TOKEN in settings_secrets()
    assert MULTIPROC_DIR in process_variables()


def _port(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _secret_path(entry: str | dict) -> str:
    """Where compose mounts a service's secret (short or long syntax)."""
    if isinstance(entry, str):
        return f"/run/secrets/{entry}"
    target = entry.get("target", entry["source"])
    return target if target.startswith("/") else f"/run/secrets/{target}"


def compose_metrics_problems(name: str, service: dict, *, exporter: bool) -> list[str]:
    """Why a compose app service would not report its metrics (empty when it would)."""
    environment = compose_app_environment(service)
    problems = []
    token_file = environment.get(f"{METRICS_TOKEN}_FILE")
    if token_file:
        if token_file not in {_secret_path(entry) for entry in service.get("secrets", [])}:
            problems.append(f"{name}: {METRICS_TOKEN}_FILE={token_file} is not a mounted secret")
    elif METRICS_TOKEN not in environment:
        problems.append(f"{name}: no {METRICS_TOKEN} or {METRICS_TOKEN}_FILE")
    multiproc = environment.get(MULTIPROC_DIR, "")
    writable = [
        *service.get("tmpfs", []),
        *(str(v).split(":")[1] for v in service.get("volumes", []) if isinstance(v, str)),
    ]
    if not any(multiproc.startswith(f"{w.rstrip('/')}/") for w in writable):
        problems.append(f"{name}: {MULTIPROC_DIR}={multiproc!r} is not on a tmpfs or volume")
    if exporter:
        port = _port(environment.get(EXPORTER_PORT))
        if not port:
            problems.append(f"{name}: {EXPORTER_PORT} is not set")
        elif str(port) not in {interpolate(p).split(":")[-1] for p in service.get("expose", [])}:
            problems.append(f"{name}: exporter port {port} is not exposed")
        if environment.get(EXPORTER_ADDR) not in ALL_INTERFACES:
            problems.append(f"{name}: {EXPORTER_ADDR} must be 0.0.0.0 in a container")
    return problems


def compose_workers() -> dict[str, dict]:
    return {
        name: service
        for name, service in compose_app_services().items()
        if (service.get("command") or [""])[0] == "worker"
    }


def test_compose_web_and_workers_report_metrics():
    services = compose_app_services()
    workers = compose_workers()
    assert len(workers) >= 2
    problems = compose_metrics_problems("web", services["web"], exporter=False)
    for name, service in workers.items():
        problems += compose_metrics_problems(name, service, exporter=True)
    assert not problems, problems


def test_compose_metrics_checker_catches_a_worker_without_metrics():
    name, worker = next(iter(compose_workers().items()))
    for variable in (EXPORTER_PORT, EXPORTER_ADDR, MULTIPROC_DIR, f"{METRICS_TOKEN}_FILE"):
        broken = {**worker, "environment": dict(compose_app_environment(worker))}
        del broken["environment"][variable]
        assert compose_metrics_problems(name, broken, exporter=True), variable
    unexposed = {**worker, "expose": []}
    assert compose_metrics_problems(name, unexposed, exporter=True)


def _secret_keys(name: str) -> set[str]:
    keys: set[str] = set()
    for secret in k8s_kind("Secret"):
        if secret["metadata"]["name"] == name:
            keys |= set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    return keys


def k8s_metrics_problems(obj: dict, *, exporter: bool) -> list[str]:
    """Why a web or worker Deployment would not report its metrics (empty when it would)."""
    where = obj["metadata"]["name"]
    spec = pod_spec(obj)
    container = spec["containers"][0]
    env = {e["name"]: e for e in container.get("env", [])}
    problems = []

    token = env.get(METRICS_TOKEN)
    from_secret = bool(token and token.get("valueFrom", {}).get("secretKeyRef"))
    from_secret |= any(
        METRICS_TOKEN in _secret_keys(source["secretRef"]["name"])
        for source in container.get("envFrom", [])
        if "secretRef" in source
    )
    if not from_secret:
        problems.append(f"{where}: {METRICS_TOKEN} does not come from a Secret")

    multiproc = env.get(MULTIPROC_DIR, {}).get("value", "")
    empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    if mounts.get(multiproc) not in empty_dirs:
        problems.append(f"{where}: {MULTIPROC_DIR}={multiproc!r} is not an emptyDir mount")

    if exporter:
        port = _port(env.get(EXPORTER_PORT, {}).get("value"))
        if env.get(EXPORTER_ADDR, {}).get("value") not in ALL_INTERFACES:
            problems.append(f"{where}: {EXPORTER_ADDR} must be 0.0.0.0 in a pod")
    else:
        port = next(
            (p["containerPort"] for p in container.get("ports", []) if p["name"] == "http"), 0
        )
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    if not port or port not in named.values():
        problems.append(f"{where}: metrics port {port or 'unset'} is not a named container port")
        return problems

    labels = obj["spec"]["template"]["metadata"]["labels"]
    scraped = False
    for service in k8s_kind("Service"):
        if (
            not service["spec"].get("selector")
            or not service["spec"]["selector"].items() <= labels.items()
        ):
            continue
        annotations = service["metadata"].get("annotations", {})
        serves = any(
            p.get("targetPort") == port or named.get(p.get("targetPort")) == port
            for p in service["spec"]["ports"]
        )
        scraped |= (
            serves
            and annotations.get("prometheus.io/scrape") == "true"
            and _port(annotations.get("prometheus.io/port")) == port
            and annotations.get("prometheus.io/path", "/metrics") == "/metrics"
        )
    if not scraped:
        problems.append(f"{where}: no Service with prometheus.io annotations selects port {port}")
    return problems


def k8s_workers() -> list[dict]:
    return [
        d
        for d in k8s_kind("Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]


def test_k8s_web_and_workers_report_metrics():
    workers = k8s_workers()
    assert len(workers) >= 4
    problems = k8s_metrics_problems(deployment("supportai-web"), exporter=False)
    for worker in workers:
        problems += k8s_metrics_problems(worker, exporter=True)
    assert not problems, problems


def test_k8s_metrics_checker_catches_a_worker_without_metrics():
    import copy

    worker = k8s_workers()[0]
    for variable in (EXPORTER_PORT, EXPORTER_ADDR, MULTIPROC_DIR):
        broken = copy.deepcopy(worker)
        container = pod_spec(broken)["containers"][0]
        container["env"] = [e for e in container["env"] if e["name"] != variable]
        assert k8s_metrics_problems(broken, exporter=True), variable
    no_secret = copy.deepcopy(worker)
    pod_spec(no_secret)["containers"][0]["envFrom"] = [
        s for s in pod_spec(no_secret)["containers"][0]["envFrom"] if "secretRef" not in s
    ]
    assert k8s_metrics_problems(no_secret, exporter=True)
    no_port = copy.deepcopy(worker)
    pod_spec(no_port)["containers"][0]["ports"] = []
    assert k8s_metrics_problems(no_port, exporter=True)


def test_k8s_web_pods_allow_their_own_ip_as_host():
    """Prometheus scrapes a pod at its IP: the entry point adds POD_IP to ALLOWED_HOSTS."""
    container = pod_spec(deployment("supportai-web"))["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def _run_entrypoint(tmp_path: Path, role: str, **environment: str) -> str:
    """Run the entry point with stand-ins for uvicorn and python that print what they got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    report = (
        'echo "ALLOWED_HOSTS=${ALLOWED_HOSTS:-} MULTIPROC=${PROMETHEUS_MULTIPROC_DIR:-unset}"\n'
    )
    for program in ("uvicorn", "python"):
        stand_in = bin_dir / program
        stand_in.write_text("#!/bin/sh\n" + report)
        stand_in.chmod(0o755)
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), role],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_entrypoint_empties_the_multiprocess_folder_for_web_and_worker(tmp_path):
    folder = tmp_path / "multiproc"
    for role in ("web", "worker"):
        folder.mkdir(exist_ok=True)
        (folder / "counter_41.db").write_bytes(b"old run")
        (folder / "keep.txt").write_text("not prometheus_client's")
        output = _run_entrypoint(tmp_path, role, PROMETHEUS_MULTIPROC_DIR=str(folder))
        assert f"MULTIPROC={folder}" in output
        assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"], role
    created = tmp_path / "new" / "multiproc"
    _run_entrypoint(tmp_path, "worker", PROMETHEUS_MULTIPROC_DIR=str(created))
    assert created.is_dir()


def test_entrypoint_keeps_one_shot_commands_out_of_the_multiprocess_folder(tmp_path):
    folder = tmp_path / "multiproc"
    output = _run_entrypoint(tmp_path, "manage", PROMETHEUS_MULTIPROC_DIR=str(folder))
    assert "MULTIPROC=unset" in output
    assert not folder.exists()


@pytest.mark.parametrize(
    ("pod_ip", "expected"),
    [
        ("10.1.2.3", "example.com,localhost,10.1.2.3"),
        ("fd00::7", "example.com,localhost,[fd00::7]"),
    ],
)
def test_entrypoint_adds_the_pod_ip_to_allowed_hosts(tmp_path, pod_ip, expected):
    output = _run_entrypoint(tmp_path, "web", ALLOWED_HOSTS="example.com,localhost", POD_IP=pod_ip)
    assert f"ALLOWED_HOSTS={expected} " in output


def test_entrypoint_leaves_allowed_hosts_alone_without_a_pod_ip(tmp_path):
    assert "ALLOWED_HOSTS=example.com " in _run_entrypoint(
        tmp_path, "web", ALLOWED_HOSTS="example.com"
    )
    # Unset, settings.py's default list applies: the entry point must not replace it with the IP.
    assert "ALLOWED_HOSTS= " in _run_entrypoint(tmp_path, "web", POD_IP="10.1.2.3")


# --- vLLM and the GPU -----------------------------------------------------------------------------


def _served_model_name(args: list[str]) -> str:
    args = [interpolate(a) for a in args]
    return args[args.index("--served-model-name") + 1]


def test_vllm_requests_a_gpu_in_compose():
    vllm = compose()["services"]["vllm"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d.get("capabilities", []) for d in devices)
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    model = compose_app_environment(compose()["services"]["web"])["LLM_MODEL"]
    assert _served_model_name(vllm["command"]) == model


def test_vllm_requests_a_gpu_in_k8s():
    spec = pod_spec(deployment("vllm"))
    container = spec["containers"][0]
    limits = container["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) >= 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert _served_model_name(container["args"]) == k8s_config()["LLM_MODEL"]


# --- Kubernetes -----------------------------------------------------------------------------------

K8S_VERSION = kubernetes_validate.latest_version()
# KEDA's custom resources, as models generated from KEDA's CRDs (cloudcoil-models-keda).
KEDA_MODELS = {
    "ScaledObject": keda.ScaledObject,
    "TriggerAuthentication": keda.TriggerAuthentication,
}


def keda_problems(obj: dict) -> list[str]:
    """Why `obj` is not a valid KEDA object: schema errors, then fields the schema lacks (the
    models ignore unknown fields, so what does not survive a round trip is unknown)."""
    model = KEDA_MODELS.get(obj.get("kind"))
    if model is None or obj.get("apiVersion") != "keda.sh/v1alpha1":
        return [f"no KEDA schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    try:
        parsed = model.model_validate(obj)
    except ValueError as exc:
        return [str(exc)]
    kept = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def unknown(given: Any, known: Any, where: str) -> list[str]:
        if isinstance(given, dict) and isinstance(known, dict):
            found = [f"{where}.{key}: unknown field" for key in given if key not in known]
            for key in given.keys() & known.keys():
                found += unknown(given[key], known[key], f"{where}.{key}")
            return found
        if isinstance(given, list) and isinstance(known, list) and len(given) == len(known):
            return [
                p
                for i, (g, k) in enumerate(zip(given, known, strict=True))
                for p in unknown(g, k, f"{where}[{i}]")
            ]
        return [] if given == known else [f"{where}: {given!r} read as {known!r}"]

    return unknown(obj, kept, obj["kind"])


@pytest.mark.parametrize(
    "obj",
    [doc for _, doc in k8s_objects()],
    ids=[f"{path.name}:{doc['kind']}/{doc['metadata']['name']}" for path, doc in k8s_objects()],
)
def test_k8s_manifest_validates_against_the_schema(obj):
    if obj["apiVersion"].startswith("keda.sh/"):
        assert keda_problems(obj) == []
        return
    # strict: unknown fields fail too. A kind without a schema raises and so fails the test.
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def _scaled_object(**spec_changes: Any) -> dict:
    (obj,) = [o for o in k8s_kind("ScaledObject") if o["metadata"]["name"].endswith("-default")]
    return {**obj, "spec": {**obj["spec"], **spec_changes}}


@pytest.mark.parametrize(
    "obj,problem",
    [
        (_scaled_object(minReplicaCount="one"), "minReplicaCount"),
        (_scaled_object(scaleTarget={"name": "x"}), "spec.scaleTarget: unknown field"),
        ({**_scaled_object(), "kind": "ScaledThing"}, "no KEDA schema"),
        (
            _scaled_object(triggers=[{"type": "redis", "metadata": {}, "authRef": {}}]),
            "triggers[0].authRef: unknown field",
        ),
    ],
    ids=["bad-type", "unknown-field", "unknown-kind", "unknown-nested-field"],
)
def test_keda_checker_rejects_invalid_objects(obj, problem):
    problems = keda_problems(obj)
    assert any(problem in p for p in problems), problems


def test_kustomization_lists_every_manifest():
    resources = kustomization()["resources"]
    assert sorted(resources) == sorted(p.name for p in K8S_MANIFESTS)
    assert kustomization()["namespace"] == k8s_kind("Namespace")[0]["metadata"]["name"]


def test_ingress_supports_websockets():
    (ingress,) = k8s_kind("Ingress")
    annotations = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert int(annotations[prefix + "proxy-read-timeout"]) >= 3600
    assert int(annotations[prefix + "proxy-send-timeout"]) >= 3600
    assert annotations[prefix + "proxy-http-version"] == "1.1"
    services = {s["metadata"]["name"] for s in k8s_kind("Service")}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["name"] in services


def worker_deployments() -> list[dict]:
    return [
        d
        for d in k8s_kind("Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]


def test_web_has_an_hpa_and_workers_have_none_of_their_own():
    hpa_targets = [h["spec"]["scaleTargetRef"]["name"] for h in k8s_kind("HorizontalPodAutoscaler")]
    assert "supportai-web" in hpa_targets
    # KEDA makes and drives each worker's HPA; a second one would fight it.
    workers = {d["metadata"]["name"] for d in worker_deployments()}
    assert len(workers) >= 3
    assert not workers & set(hpa_targets)


def test_every_worker_scales_on_its_own_redis_queue():
    broker = urlparse(k8s_config().get("CELERY_BROKER_URL") or k8s_config()["REDIS_URL"])
    scaled = {o["spec"]["scaleTargetRef"]["name"]: o for o in k8s_kind("ScaledObject")}
    authentications = {a["metadata"]["name"]: a for a in k8s_kind("TriggerAuthentication")}
    secrets = {s["metadata"]["name"]: s for s in k8s_kind("Secret")}
    for worker in worker_deployments():
        name = worker["metadata"]["name"]
        assert name in scaled, f"no ScaledObject for {name}"
        obj = scaled[name]
        assert obj["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        # A fixed replica count would be reset on every `kubectl apply`.
        assert "replicas" not in worker["spec"], f"{name} sets replicas; KEDA owns them"
        (queue,) = pod_spec(worker)["containers"][0]["args"][1].split(",")
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "redis"
        meta = trigger["metadata"]
        assert meta["listName"] == queue, name
        assert int(meta["listLength"]) >= 1
        # The broker KEDA reads is the one the app writes to.
        assert meta["address"] == f"{broker.hostname}:{broker.port or 6379}", name
        assert meta["databaseIndex"] == (broker.path.strip("/") or "0"), name
        assert meta["enableTLS"] == ("true" if broker.scheme == "rediss" else "false"), name
        if broker.password:
            auth = authentications[trigger["authenticationRef"]["name"]]
            (ref,) = [r for r in auth["spec"]["secretTargetRef"] if r["parameter"] == "password"]
            assert ref["key"] in secrets[ref["name"]]["stringData"], ref
        low, high = obj["spec"].get("minReplicaCount", 0), obj["spec"]["maxReplicaCount"]
        assert 0 <= low <= high and high >= 2, name
    assert set(scaled) == {d["metadata"]["name"] for d in worker_deployments()}


def test_the_default_queue_never_scales_to_zero():
    """Beat's heartbeat (and every unrouted task) goes to `default`: one worker always takes it."""
    from workers.config import BEAT_SCHEDULE, DEFAULT_QUEUE, TASK_ROUTES

    routed = {pattern.rstrip("*") for pattern in TASK_ROUTES}
    heartbeat = BEAT_SCHEDULE["worker-heartbeat"]["task"]
    assert not any(heartbeat.startswith(prefix) for prefix in routed)
    (obj,) = [
        o
        for o in k8s_kind("ScaledObject")
        if o["spec"]["triggers"][0]["metadata"]["listName"] == DEFAULT_QUEUE
    ]
    assert obj["spec"]["minReplicaCount"] >= 1


def test_app_secrets_stay_out_of_keda_and_keda_secrets_out_of_app_pods():
    loaded = {name for kind, name in app_env_sources() if kind == "Secret"}
    for auth in k8s_kind("TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] not in loaded, f"KEDA reads {ref['name']}, which app pods load"


def test_k8s_workers_cover_every_queue_with_ingest_separate():
    from workers.config import TASK_QUEUES

    served: list[set[str]] = []
    for d in k8s_kind("Deployment"):
        if d["metadata"]["labels"].get("app.kubernetes.io/component") != "worker":
            continue
        args = pod_spec(d)["containers"][0]["args"]
        assert args[0] == "worker"
        served.append(set(args[1].split(",")))
    assert {q.name for q in TASK_QUEUES} <= set().union(*served)
    assert {"ingest"} in served, "ingest has a Deployment of its own"


def test_beat_is_a_single_recreated_pod():
    beat = deployment("supportai-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert not [
        h
        for h in [*k8s_kind("HorizontalPodAutoscaler"), *k8s_kind("ScaledObject")]
        if h["spec"]["scaleTargetRef"]["name"] == "supportai-beat"
    ]


def test_qdrant_is_a_statefulset_with_volume_claims():
    (qdrant,) = [s for s in k8s_kind("StatefulSet") if s["metadata"]["name"] == "qdrant"]
    templates = {t["metadata"]["name"] for t in qdrant["spec"]["volumeClaimTemplates"]}
    assert templates
    mounts = {m["name"] for m in pod_spec(qdrant)["containers"][0]["volumeMounts"]}
    assert templates <= mounts
    (headless,) = [
        s for s in k8s_kind("Service") if s["metadata"]["name"] == qdrant["spec"]["serviceName"]
    ]
    assert headless["spec"]["clusterIP"] == "None"
    assert "qdrant" in k8s_config()["QDRANT_URL"]


def test_migration_job_runs_migrate():
    jobs = k8s_kind("Job")
    assert any(pod_spec(j)["containers"][0]["args"][0] == "migrate" for j in jobs)


def test_web_workers_and_beat_wait_for_the_migration_job():
    assert "  wait-for-migrations)" in ENTRYPOINT.read_text()
    for d in k8s_kind("Deployment"):
        if not any(is_app_image(c["image"]) for c in containers(pod_spec(d))):
            continue
        waits = [
            c
            for c in pod_spec(d).get("initContainers", [])
            if is_app_image(c["image"]) and c.get("args") == ["wait-for-migrations"]
        ]
        assert waits, f"{d['metadata']['name']} starts without waiting for the migrations"


def _budgets_for(labels: dict) -> list[dict]:
    return [
        p
        for p in k8s_kind("PodDisruptionBudget")
        if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]


def test_web_and_every_worker_have_a_disruption_budget_that_lets_drains_through():
    lowest = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["minReplicas"]
        for h in k8s_kind("HorizontalPodAutoscaler")
    }
    lowest |= {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"].get("minReplicaCount", 0)
        for o in k8s_kind("ScaledObject")
    }
    for d in [deployment("supportai-web"), *worker_deployments()]:
        name = d["metadata"]["name"]
        (budget,) = _budgets_for(d["spec"]["template"]["metadata"]["labels"])
        spec = budget["spec"]
        # A budget no eviction can satisfy would block every node drain.
        if "maxUnavailable" in spec:
            assert int(spec["maxUnavailable"]) >= 1, name
        else:
            assert int(spec["minAvailable"]) < lowest[name], name


def test_web_probes_and_disruption_budget():
    web = deployment("supportai-web")
    spec = pod_spec(web)
    (container,) = [c for c in spec["containers"] if c["name"] == "web"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Django answers a probe only if its Host header is an allowed host.
    hosts = k8s_config()["ALLOWED_HOSTS"].split(",")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        headers = container.get(probe, {}).get("httpGet", {}).get("httpHeaders", [])
        for header in headers:
            if header["name"].lower() == "host":
                assert header["value"] in hosts, f"{probe} Host {header['value']} not allowed"
    labels = web["spec"]["template"]["metadata"]["labels"]
    budgets = [
        p
        for p in k8s_kind("PodDisruptionBudget")
        if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert budgets, "no PodDisruptionBudget selects the web pods"


def test_app_pods_are_non_root_and_read_only():
    specs = app_pod_specs()
    assert len(specs) >= 7  # web, 4 workers, beat, migrate
    for where, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        for container in containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, f"{where}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, f"{where}/{container['name']}"


def test_every_container_has_requests_and_limits():
    for _, obj in k8s_objects():
        spec = pod_spec(obj)
        if not spec:
            continue
        for container in containers(spec):
            resources = container.get("resources", {})
            where = f"{obj['metadata']['name']}/{container['name']}"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert "memory" in resources.get("limits", {}), where


# --- demo tenant content --------------------------------------------------------------------------

DEMO = ROOT / "apps" / "tenants" / "demo"


def test_demo_questions_point_at_one_article_each():
    articles = {p.name: p.read_text() for p in (DEMO / "knowledge").glob("*.md")}
    assert 6 <= len(articles) <= 8
    for name, text in articles.items():
        assert text.startswith("# "), f"{name} must open with its # title"
        assert 300 <= len(text.split()) <= 900, f"{name}: {len(text.split())} words"
    questions = json.loads((DEMO / "questions.json").read_text())
    assert len(questions) >= 10
    for item in questions:
        needle = item["answer_contains"].lower()
        assert item["article"] in articles, item
        holders = [name for name, text in articles.items() if needle in text.lower()]
        assert holders == [item["article"]], f"{item['question']!r} answered in {holders}"


# --- Helm chart -----------------------------------------------------------------------------------
# Rendered and linted in-process by helm-python-sdk (Helm's Go SDK behind a C ABI): no helm binary.

CHART = DEPLOY / "helm" / "supportai"


def helm_objects(values: dict | None = None, *, revision: int = 1) -> list[dict]:
    rendered = HelmChart.load(CHART).render(
        values, name="supportai", namespace="supportai", revision=revision, is_install=True
    )
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def test_helm_chart_lints_clean_in_strict_mode():
    report = helm_lint(CHART, strict=True)
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("keda_enabled", [True, False], ids=["keda", "hpa"])
def test_helm_chart_renders_objects_that_validate(keda_enabled):
    objects = helm_objects({"keda": {"enabled": keda_enabled, "password": "x"}})
    assert len(objects) >= 15
    for obj in objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            assert keda_problems(obj) == [], obj["metadata"]["name"]
        else:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    kinds = {o["kind"] for o in objects}
    assert ("ScaledObject" in kinds) is keda_enabled


def test_helm_chart_pods_are_pinned_locked_down_and_sized():
    objects = helm_objects()
    specs = [(o["metadata"]["name"], pod_spec(o)) for o in objects if pod_spec(o)]
    assert len(specs) >= 7  # web, 4 workers, beat, migrate
    for name, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in containers(spec):
            assert pin_problem(container["image"]) is None, container["image"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
            names = {e["name"] for e in container.get("env", [])}
            assert not names - allowed_variables(), f"{name}: {names - allowed_variables()}"


def test_helm_chart_config_matches_the_kustomization():
    (helm_config,) = of_kind(helm_objects(), "ConfigMap")
    (kustomize_config,) = k8s_kind("ConfigMap")
    assert helm_config["data"] == {k: str(v) for k, v in kustomize_config["data"].items()}
    (secret,) = [s for s in of_kind(helm_objects(), "Secret") if "SECRET_KEY" in s["stringData"]]
    assert set(secret["stringData"]) <= allowed_variables()
    assert "supportai-secrets" not in {
        s["metadata"]["name"]
        for s in of_kind(helm_objects({"secrets": {"existingSecret": "from-vault"}}), "Secret")
    }


def test_helm_chart_workers_scale_on_their_queues_with_budgets():
    from workers.config import DEFAULT_QUEUE, TASK_QUEUES

    objects = helm_objects()
    workers = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    ]
    queues = {pod_spec(d)["containers"][0]["args"][1] for d in workers}
    assert queues == {q.name for q in TASK_QUEUES}
    scaled = {o["spec"]["scaleTargetRef"]["name"]: o for o in of_kind(objects, "ScaledObject")}
    budgets = of_kind(objects, "PodDisruptionBudget")
    for worker in workers:
        name = worker["metadata"]["name"]
        assert "replicas" not in worker["spec"], name
        queue = pod_spec(worker)["containers"][0]["args"][1]
        (trigger,) = scaled[name]["spec"]["triggers"]
        assert trigger["metadata"]["listName"] == queue
        if queue == DEFAULT_QUEUE:
            assert scaled[name]["spec"]["minReplicaCount"] >= 1
        labels = worker["spec"]["template"]["metadata"]["labels"]
        (budget,) = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert budget["spec"]["maxUnavailable"] == 1
    assert not [
        h for h in of_kind(objects, "HorizontalPodAutoscaler") if h["metadata"]["name"] in scaled
    ]
    web_targets = [
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")
    ]
    assert web_targets == ["supportai-web"]


def test_helm_chart_runs_a_migration_job_per_release_that_every_deployment_waits_for():
    for revision in (1, 7):
        objects = helm_objects(revision=revision)
        (job,) = of_kind(objects, "Job")
        assert job["metadata"]["name"] == f"supportai-migrate-{revision}"
        assert pod_spec(job)["containers"][0]["args"] == ["migrate"]
    for deployment_obj in of_kind(helm_objects(), "Deployment"):
        init = pod_spec(deployment_obj)["initContainers"]
        assert [c["args"] for c in init] == [["wait-for-migrations"]], deployment_obj["metadata"]
    (beat,) = [
        d for d in of_kind(helm_objects(), "Deployment") if d["metadata"]["name"].endswith("-beat")
    ]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
