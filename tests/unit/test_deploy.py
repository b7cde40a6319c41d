"""The deployment files in deploy/ parse and agree with the code: the commands are
real `mailroom` commands, the settings are real settings, the ports, probes,
users and shutdown times are the ones the processes use, and the image is
installed the way tests/integration/test_packaging.py installs the wheel.

No Docker engine or cluster runs here; what needs one is read, not run."""

import ast
import configparser
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

from domain.errors import ConfigError
from workers.cli import cli
from workers.settings import SETTINGS_DOC, Settings, load_settings
from workers.settings_shown import SECRET_SETTINGS, URL_SETTINGS
from workers.supervisor import SHUTDOWN_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRICS_PORT = Settings.model_fields["metrics_port"].default
#: The backlog gauges the worker master serves, which autoscaling may read.
BACKLOG_GAUGES = {
    "mailroom_queue_depth",
    "mailroom_emails_waiting",
    "mailroom_oldest_queued_email_age_seconds",
}
#: Variables mailroom's own processes may be given that are not its settings.
FOREIGN_VARIABLES = {"PORT"}
#: Credentials, and the URLs that may carry one.
SECRETS = SECRET_SETTINGS | URL_SETTINGS
#: pip flags that change only what pip prints.
OUTPUT_FLAGS = {"-q", "--quiet", "-v", "--verbose"}
#: Stands in for the token secret an operator puts in place of a placeholder.
A_REAL_PEPPER = "x" * 48
#: Where a served port must listen for a probe or another container to reach it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


# Reading the files


@dataclass
class Stage:
    image: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [args for name, args in self.steps if name == instruction]

    def commands(self) -> list[list[str]]:
        """Each `&&`-joined command of each RUN, as argv, without RUN's own --flags."""
        found = []
        for run in self.args("RUN"):
            words = shlex.split(run)
            while words and words[0].startswith("--"):
                words.pop(0)
            command: list[str] = []
            for word in [*words, "&&"]:
                if word == "&&":
                    found.append(command)
                    command = []
                else:
                    command.append(word)
        return found

    def pip(self, subcommand: str) -> list[list[str]]:
        """The arguments of each `pip SUBCOMMAND` this stage runs."""
        return [
            argv[argv.index("pip") + 2 :]
            for argv in self.commands()
            if "pip" in argv and argv[argv.index("pip") + 1 : argv.index("pip") + 2] == [subcommand]
        ]


def dockerfile() -> list[Stage]:
    logical, pending = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            image, _, name = args.partition(" AS ")
            stages.append(Stage(image.strip(), name.strip() or None))
        else:
            stages[-1].steps.append((instruction.upper(), args.strip()))
    return stages


def option(argv: list[str], *names: str) -> str | None:
    for i, word in enumerate(argv):
        for name in names:
            if word == name:
                return argv[i + 1]
            if word.startswith(name + "="):
                return word.partition("=")[2]
    return None


def flags(argv: list[str]) -> set[str]:
    return {word.partition("=")[0] for word in argv if word.startswith("-")} - OUTPUT_FLAGS


def packaging_test_pip(subcommand: str) -> list[str]:
    """The literal arguments of the packaging test's `pip SUBCOMMAND` call."""
    tree = ast.parse((ROOT / "tests" / "integration" / "test_packaging.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.List):
            words = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            if "pip" in words and words[words.index("pip") + 1] == subcommand:
                return [w for w in words[words.index("pip") + 2 :] if w is not None]
    raise AssertionError(f"no pip {subcommand} in test_packaging.py")


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def k8s() -> list[dict]:
    return [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def k8s_object(kind: str, name: str) -> dict:
    [found] = [d for d in k8s() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def workloads() -> dict[str, dict]:
    """Component label -> pod template, for every mailroom Deployment and Job."""
    templates = [d["spec"]["template"] for d in k8s() if d["kind"] in ("Deployment", "Job")]
    return {t["metadata"]["labels"]["app.kubernetes.io/component"]: t for t in templates}


def systemd(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string((DEPLOY / "systemd" / name).read_text())
    return unit


def env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def interpolated(value: str) -> str:
    """Compose's ${NAME:-default}, as it is with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def mailroom_command(argv: list[str]) -> tuple[str, dict]:
    """Parse argv with the real `mailroom` group: (the command's path, its parameters).
    An unknown command or option, or a bad value, fails as it would at run time."""
    assert Path(argv[0]).name == "mailroom", argv
    command, words, path = cli, list(argv[1:]), []
    while isinstance(command, click.Group):
        assert words and words[0] in command.commands, f"not a mailroom command: {argv}"
        path.append(words[0])
        command, words = command.commands[words[0]], words[1:]
    return " ".join(path), command.make_context(path[-1], words).params


def seconds(value: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(min|ms|s|m|h)?", str(value)):
        total += float(number) * {"ms": 0.001, "s": 1, "": 1, "m": 60, "min": 60, "h": 3600}[unit]
    return total


def selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for term in selector.get("matchExpressions", []):
        value, values = labels.get(term["key"]), term.get("values", [])
        if not {
            "In": value in values,
            "NotIn": value not in values,
            "Exists": term["key"] in labels,
            "DoesNotExist": term["key"] not in labels,
        }[term["operator"]]:
            return False
    return True


def reachable(server: dict, client: dict, port: int) -> bool:
    """Whether the NetworkPolicies let a pod labelled `client` (same namespace) reach
    `port` on a pod labelled `server`."""
    policies = [
        p["spec"]
        for p in k8s()
        if p["kind"] == "NetworkPolicy" and selects(p["spec"]["podSelector"], server)
    ]
    if not any("Ingress" in p.get("policyTypes", ["Ingress"]) for p in policies):
        return True
    for rule in (rule for p in policies for rule in p.get("ingress", [])):
        ports = {p["port"] for p in rule.get("ports", [])}
        peers = rule.get("from")
        if (not ports or port in ports) and (
            not peers or any(selects(peer.get("podSelector", {}), client) for peer in peers)
        ):
            return True
    return False


# The image


def test_both_stages_are_slim_and_the_runtime_has_no_compiler():
    builder, runtime = dockerfile()
    assert builder.name == "builder" and builder.image.endswith("-slim")
    assert runtime.image == builder.image
    installed = {word for argv in runtime.commands() for word in argv}
    assert installed.isdisjoint({"gcc", "g++", "clang", "make", "build-essential"})


def test_the_image_runs_as_a_numeric_non_root_user_with_its_own_home_as_workdir():
    runtime = dockerfile()[-1]
    user = runtime.args("USER")[-1].split(":")
    assert all(part.isdigit() for part in user) and user[0] != "0"
    [useradd] = [argv for argv in runtime.commands() if argv[0] == "useradd"]
    assert option(useradd, "--uid", "-u") == user[0]
    assert option(useradd, "--home-dir", "-d") == runtime.args("WORKDIR")[-1]
    assert "--create-home" in useradd or "-m" in useradd


def test_the_wheel_is_built_as_the_packaging_test_builds_it():
    [builder_wheel] = dockerfile()[0].pip("wheel")
    tested = packaging_test_pip("wheel")
    assert "--no-deps" in tested
    assert flags(builder_wheel) == flags(tested)
    assert builder_wheel[-1] == "."  # the build context is the root of the checkout


def test_the_runtime_installs_in_a_fresh_venv_from_the_builders_wheels_only():
    builder, runtime = dockerfile()
    [wheel] = builder.pip("wheel")
    wheels = option(wheel, "-w", "--wheel-dir")
    [download] = builder.pip("download")
    assert option(download, "-d", "--dest") == wheels
    assert "--only-binary" in flags(download) and option(download, "--only-binary") == ":all:"
    [install] = runtime.pip("install")
    assert "--no-index" in install and option(install, "--find-links", "-f") == wheels
    assert install[-1] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    [run] = [run for run in runtime.args("RUN") if "pip install" in run]
    [mount] = [w.partition("=")[2] for w in shlex.split(run) if w.startswith("--mount=")]
    mount = dict(item.split("=", 1) for item in mount.split(","))
    assert mount["type"] == "bind" and mount["from"] == builder.name
    assert mount["source"] == wheels and mount["target"] == option(install, "--find-links")
    [venv] = [argv[3] for argv in runtime.commands() if argv[1:3] == ["-m", "venv"]]
    [installer] = [argv for argv in runtime.commands() if "install" in argv and "pip" in argv]
    assert installer[0] == f"{venv}/bin/python"
    env = [word for args in runtime.args("ENV") for word in shlex.split(args)]
    assert any(word.startswith(f"PATH={venv}/bin:") for word in env)


def test_the_builder_copies_everything_the_wheel_is_made_of():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= {name.split(".")[0] for name in setuptools["packages"]}
    needed |= set(setuptools["package-dir"].values())
    copied = {
        source.rstrip("/")
        for args in dockerfile()[0].args("COPY")
        for source in shlex.split(args)[:-1]
    }
    assert needed <= copied
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore and all(f"!{name}" in ignore or f"!{name}/" in ignore for name in copied)


def test_one_image_whose_default_command_is_the_worker_in_exec_form():
    runtime = dockerfile()[-1]
    assert runtime.args("ENTRYPOINT") == []
    [cmd] = runtime.args("CMD")
    assert mailroom_command(json.loads(cmd))[0] == "worker"
    assert {int(port) for port in runtime.args("EXPOSE")[-1].split()} == {8000, METRICS_PORT}


def test_the_image_holds_no_credentials():
    for stage in dockerfile():
        for args in stage.args("ENV") + stage.args("ARG"):
            names = {word.partition("=")[0] for word in shlex.split(args)}
            assert names.isdisjoint(SECRETS), args


# Commands and settings everywhere


def compose_mailroom_services() -> dict[str, dict]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == "mailroom:local"
    }


UNITS = ("mailroom-worker.service", "mailroom-api.service", "mailroom-bounces.service")


def test_every_process_runs_a_real_mailroom_command():
    found = {}
    for name, service in compose_mailroom_services().items():
        found[f"compose {name}"] = service["command"]
    for component, pod in workloads().items():
        for container in pod["spec"]["containers"]:
            found[f"k8s {component}"] = container["command"] + container.get("args", [])
    for unit in UNITS:
        service = systemd(unit)["Service"]
        for key in ("ExecStartPre", "ExecStart"):
            if key in service:
                found[f"{unit} {key}"] = shlex.split(service[key].lstrip("-@:+!"))
    roles = {where: mailroom_command(argv)[0] for where, argv in found.items()}
    assert {r for w, r in roles.items() if w.startswith("compose")} == {
        "db upgrade",
        "worker",
        "serve",
    }
    assert roles["k8s migrate"] == "db upgrade" and roles["k8s worker"] == "worker"
    assert roles["k8s web"] == "serve"
    assert roles["mailroom-worker.service ExecStart"] == "worker"
    assert roles["mailroom-api.service ExecStart"] == "serve"
    assert roles["mailroom-bounces.service ExecStart"] == "bounces serve"


def test_compose_sets_only_real_settings_and_they_load():
    services = compose()["services"]
    for name, service in compose_mailroom_services().items():
        env = {k: interpolated(v) for k, v in service["environment"].items()}
        assert set(env) <= set(SETTINGS_DOC) | FOREIGN_VARIABLES, name
        settings = load_settings(env)
        for url in (settings.redis_url, settings.database_url):
            assert urlsplit(url).hostname in services
        assert settings.smtp_host in services and settings.smtp_security == "none"
    postgres = services["postgres"]["environment"]
    assert set(postgres) <= {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    url = urlsplit(services["migrate"]["environment"]["DATABASE_URL"])
    assert (url.username, url.password, url.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )


def test_the_env_example_is_complete_but_refuses_to_run_with_its_placeholder_secret():
    env = env_file(DEPLOY / "mailroom.env.example")
    assert set(env) <= set(SETTINGS_DOC)
    assert {"MAILROOM_METRICS_PORT", "MAILROOM_METRICS_HOST", "MAILROOM_SMTP_HELO_NAME"} <= set(env)
    with pytest.raises(ConfigError, match="MAILROOM_TOKEN_SECRET"):
        load_settings(env)
    settings = load_settings(env | {"MAILROOM_TOKEN_SECRET": A_REAL_PEPPER})
    assert not settings.embedded and settings.sqlalchemy_url.startswith("postgresql")
    assert settings.metrics_port == METRICS_PORT


def test_kubernetes_keeps_secrets_in_the_secret_and_the_rest_loads():
    config = k8s_object("ConfigMap", "mailroom-config")["data"]
    secret = k8s_object("Secret", "mailroom-secrets")["stringData"]
    assert set(config) | set(secret) <= set(SETTINGS_DOC)
    assert set(config).isdisjoint(SECRETS) and "MAILROOM_TOKEN_SECRET" in secret
    with pytest.raises(ConfigError, match="MAILROOM_TOKEN_SECRET"):
        load_settings(config | secret)
    settings = load_settings(config | secret | {"MAILROOM_TOKEN_SECRET": A_REAL_PEPPER})
    assert not settings.embedded and settings.metrics_port == METRICS_PORT
    for component, pod in workloads().items():
        for container in pod["spec"]["containers"]:
            sources = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert sources == {"mailroom-config", "mailroom-secrets"}, component
            named = {e["name"] for e in container.get("env", [])}
            assert named <= set(SETTINGS_DOC) | FOREIGN_VARIABLES, component


# Compose


def test_compose_redis_keeps_an_append_only_file_synced_every_second():
    redis = compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert redis["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_compose_migrates_once_before_the_worker_and_the_api_start():
    services = compose()["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for name in ("worker", "web"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["redis"]["condition"] == "service_healthy"
    for name, service in services.items():
        assert name == "migrate" or "healthcheck" in service, name


def test_compose_builds_the_one_image_from_the_checkout():
    services = compose_mailroom_services()
    assert set(services) == {"migrate", "worker", "web"}
    for service in services.values():
        context = (DEPLOY / service["build"]["context"]).resolve()
        assert context == ROOT and (context / service["build"]["dockerfile"]).is_file()


def test_compose_worker_outlasts_the_drain_and_is_checked_on_its_metrics():
    worker = compose()["services"]["worker"]
    assert seconds(worker["stop_grace_period"]) > SHUTDOWN_TIMEOUT
    assert f"http://127.0.0.1:{METRICS_PORT}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert any(port.endswith(f":{METRICS_PORT}") for port in worker["ports"])


def test_compose_web_is_checked_on_readyz_at_the_port_it_serves():
    web = compose()["services"]["web"]
    _, params = mailroom_command(web["command"])
    assert params["host"] == ALL_INTERFACES
    assert f"http://127.0.0.1:{params['port']}/readyz" in " ".join(web["healthcheck"]["test"])
    assert any(port.endswith(f":{params['port']}") for port in web["ports"])


# Kubernetes


def test_every_manifest_is_a_namespace_agnostic_kubernetes_object():
    docs = k8s()
    assert {d["kind"] for d in docs} >= {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Job",
        "ScaledObject",
        "NetworkPolicy",
    }
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]
        assert "namespace" not in doc["metadata"], doc["metadata"]["name"]


def test_every_mailroom_pod_runs_the_one_image_as_the_images_user_read_only():
    uid = int(dockerfile()[-1].args("USER")[-1].split(":")[0])
    assert set(workloads()) == {"worker", "web", "migrate"}
    images = set()
    for component, pod in workloads().items():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, component
        assert spec["securityContext"]["runAsUser"] == uid, component
        temporary = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            images.add(container["image"])
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, component
            assert context["readOnlyRootFilesystem"] is True, component
            # The metrics files of the worker processes live under the temporary directory.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in temporary, component
    assert len(images) == 1


def test_the_worker_outlasts_the_drain_and_serves_metrics_on_the_default_port():
    pod = workloads()["worker"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > SHUTDOWN_TIMEOUT
    [container] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == METRICS_PORT
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/metrics" and ports.get(probe["port"], probe["port"]) == METRICS_PORT
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == METRICS_PORT
    assert annotations["prometheus.io/path"] == "/metrics"
    assert "readinessProbe" not in container  # nothing routes traffic to a worker


def test_the_web_probes_and_service_point_at_the_port_it_serves():
    pod = workloads()["web"]
    [container] = pod["spec"]["containers"]
    _, params = mailroom_command(container["command"])
    assert params["host"] == ALL_INTERFACES
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    def port(value):
        return ports.get(value, value)

    assert list(ports.values()) == [params["port"]]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert port(container[probe]["httpGet"]["port"]) == params["port"]
    annotations = pod["metadata"]["annotations"]  # the API serves its /metrics itself
    assert int(annotations["prometheus.io/port"]) == params["port"]
    service = k8s_object("Service", "mailroom-web")["spec"]
    assert selects({"matchLabels": service["selector"]}, pod["metadata"]["labels"])
    assert not selects(
        {"matchLabels": service["selector"]}, workloads()["worker"]["metadata"]["labels"]
    )
    assert [port(p["targetPort"]) for p in service["ports"]] == [params["port"]]


def test_the_migration_job_runs_once_and_is_not_restarted_in_place_forever():
    job = k8s_object("Job", "mailroom-migrate")["spec"]
    assert job["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert 0 < job["backoffLimit"] <= 10


def test_the_workers_scale_on_the_fleets_backlog():
    [scaler] = [d for d in k8s() if d["kind"] == "ScaledObject"]
    worker = next(
        d for d in k8s() if d["kind"] == "Deployment" and "worker" in d["metadata"]["name"]
    )
    assert scaler["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert 1 <= scaler["spec"]["minReplicaCount"] < scaler["spec"]["maxReplicaCount"]
    sources = "\n".join(path.read_text() for path in (ROOT / "workers").rglob("*.py"))
    for trigger in scaler["spec"]["triggers"]:
        assert trigger["type"] == "prometheus"
        query = trigger["metadata"]["query"]
        assert query.startswith("max(") and "sum(" not in query, query
        metrics = set(re.findall(r"\bmailroom_[a-z_]+", query))
        assert metrics and metrics <= BACKLOG_GAUGES, query
        assert all(f'"{metric}"' in sources for metric in metrics), query
        assert float(trigger["metadata"]["threshold"]) > 0


def test_only_mailroom_and_producers_reach_redis_and_only_mailroom_reaches_postgresql():
    pods = {name: pod["metadata"]["labels"] for name, pod in workloads().items()}
    producer = {"app.kubernetes.io/name": "shop", "mailroom.io/producer": "true"}
    stranger = {"app.kubernetes.io/name": "shop"}
    redis = {"app.kubernetes.io/name": "redis"}
    postgresql = {"app.kubernetes.io/name": "postgresql"}
    for client in (pods["worker"], pods["web"], producer):
        assert reachable(redis, client, 6379)
    assert not reachable(redis, stranger, 6379)
    for client in (pods["worker"], pods["web"], pods["migrate"]):
        assert reachable(postgresql, client, 5432)
    assert not reachable(postgresql, producer, 5432)
    assert not reachable(postgresql, stranger, 5432)


# systemd


@pytest.mark.parametrize("unit", UNITS)
def test_units_signal_the_main_process_restart_always_and_can_write_what_they_need(unit):
    service = systemd(unit)["Service"]
    assert service["KillMode"] == "mixed" and service["Restart"] == "always"
    assert service.get("KillSignal", "SIGTERM") == "SIGTERM"
    assert service["User"] not in ("root", "0")
    if service.get("ProtectSystem") == "strict":
        writable = (
            {f"/var/lib/{service['StateDirectory']}"} if "StateDirectory" in service else set()
        )
        writable |= set(service.get("ReadWritePaths", "").split())
        assert service["WorkingDirectory"] in writable
        assert service.get("PrivateTmp") == "yes" or "/tmp" in writable  # metrics files
    assert systemd(unit)["Install"]["WantedBy"] == "multi-user.target"


def test_the_worker_unit_outlasts_the_drain():
    service = systemd("mailroom-worker.service")["Service"]
    assert seconds(service["TimeoutStopSec"]) > SHUTDOWN_TIMEOUT
