"""docker-compose.yml, run natively: each service's command as a process in a namespace of
its own, where the service names resolve to addresses in it.

No Docker engine is needed, and none is used: this proves the file's wiring (commands,
environment, the config files it mounts, health checks and start order), not its images.
``ip netns exec NS`` bind-mounts ``/etc/netns/NS/hosts`` over ``/etc/hosts``, so each
service name resolves to an address of its own on the namespace's veth0. Images map to this
machine's programs (``NATIVE_IMAGES``); ``build: .`` is this checkout, its venv on PATH,
the Dockerfile's WORKDIR mapped to the checkout and its ENV applied. Container paths in
commands, environment values and health checks map to host paths: a bind mount to its
source, a named volume or a tmpfs to a directory of the run.

Start order is the file's: a service starts once each ``depends_on`` condition holds, and
``service_healthy`` means its ``healthcheck.test`` passed, run inside the namespace (a
command that exists only in an image has a native stand-in, ``_HEALTH_STAND_INS``).
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# PyYAML comes with livekit-agents; it ships no type hints.
import yaml  # type: ignore[import-untyped]

from talkplatform_agents.harness.netns import NetNamespace
from talkplatform_agents.harness.process import HarnessError, ManagedProcess

__all__ = [
    "ComposeError",
    "ComposeFile",
    "HealthCheck",
    "NativeCompose",
    "NativeOptions",
    "Service",
    "Volume",
    "interpolate",
    "read_env_file",
    "service_addresses",
]

logger = logging.getLogger(__name__)

_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_]\w*)"
    r"|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)
_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


class ComposeError(HarnessError):
    """The compose file (or its .env) says something this cannot follow; says what."""

    def __init__(self, message: str) -> None:
        super().__init__("docker-compose.yml", message)


# -- the file -------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """A compose ``.env`` file: ``NAME=value`` lines, ``#`` comments, optional quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_]\w*", name.strip()):
            raise ComposeError(f"{path}:{number}: not NAME=value: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's substitution: ``$X``, ``${X}``, ``${X:-default}`` (unset or empty),
    ``${X-default}`` (unset), ``${X:?error}``, ``${X?error}``, and ``$$`` for ``$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("plain") or match.group("braced")
        value = variables.get(name)
        op, arg = match.group("op"), match.group("arg") or ""
        missing = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and missing:
            return arg
        if op in (":?", "?") and missing:
            raise ComposeError(f"${{{name}}} is required: {arg or 'not set'}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolated(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolated(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, variables) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class Volume:
    source: str  # a named volume, or a host path (relative to the file's directory)
    target: str  # the path inside the container
    named: bool


@dataclass(frozen=True)
class HealthCheck:
    argv: tuple[str, ...]  # CMD form as given; CMD-SHELL as ("sh", "-c", command)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Service:
    name: str
    image: str | None
    build: str | None
    command: tuple[str, ...]
    environment: dict[str, str]
    volumes: tuple[Volume, ...] = ()
    tmpfs: tuple[str, ...] = ()
    healthcheck: HealthCheck | None = None
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition


@dataclass(frozen=True)
class ComposeFile:
    path: Path
    services: dict[str, Service]

    @classmethod
    def load(cls, path: Path, variables: Mapping[str, str]) -> ComposeFile:
        """The file with ``variables`` substituted, as ``docker-compose config`` sees it."""
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ComposeError(f"cannot read {path}: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
            raise ComposeError(f"{path} has no services")
        document = _interpolated(document, variables)
        named = set(document.get("volumes") or {})
        services = {
            name: _service(str(name), body, named) for name, body in document["services"].items()
        }
        for service in services.values():
            for dependency, condition in service.depends_on.items():
                target = services.get(dependency)
                if target is None:
                    raise ComposeError(f"{service.name} depends on unknown {dependency}")
                if condition == "service_healthy" and target.healthcheck is None:
                    raise ComposeError(f"{service.name} waits for {dependency} to be healthy, "
                                       "and it has no healthcheck")  # fmt: skip
        return cls(path, services)


def _service(name: str, body: Any, named_volumes: set[str]) -> Service:
    if not isinstance(body, dict):
        raise ComposeError(f"service {name} is not a mapping")
    command = body.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    environment = body.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    depends = body.get("depends_on") or {}
    if isinstance(depends, list):
        depends = {dep: {"condition": "service_started"} for dep in depends}
    conditions = {dep: (spec or {}).get("condition", "service_started")
                  for dep, spec in depends.items()}  # fmt: skip
    for dep, condition in conditions.items():
        if condition not in _CONDITIONS:
            raise ComposeError(f"{name}: unknown condition {condition!r} for {dep}")
    tmpfs = body.get("tmpfs") or []
    return Service(
        name=name,
        image=body.get("image"),
        build=body["build"] if isinstance(body.get("build"), str) else None,
        command=tuple(str(part) for part in command),
        environment={str(k): "" if v is None else str(v) for k, v in environment.items()},
        volumes=tuple(_volume(name, spec, named_volumes) for spec in body.get("volumes") or []),
        tmpfs=(tmpfs,) if isinstance(tmpfs, str) else tuple(tmpfs),
        healthcheck=_healthcheck(name, body.get("healthcheck")),
        depends_on=conditions,
    )


def _volume(service: str, spec: Any, named_volumes: set[str]) -> Volume:
    if not isinstance(spec, str):
        raise ComposeError(f"{service}: only short volume syntax is read here, not {spec!r}")
    source, _, rest = spec.partition(":")
    target = rest.split(":")[0]
    if not target.startswith("/"):
        raise ComposeError(f"{service}: volume {spec!r} has no container path")
    named = not source.startswith((".", "/", "~"))
    if named and source not in named_volumes:
        raise ComposeError(f"{service}: volume {source!r} is not declared under volumes:")
    return Volume(source, target, named)


def _healthcheck(service: str, spec: Any) -> HealthCheck | None:
    if not spec or spec.get("disable"):
        return None
    test = spec.get("test")
    if isinstance(test, str):
        argv: tuple[str, ...] = ("sh", "-c", test)
    elif isinstance(test, list) and test and test[0] == "CMD":
        argv = tuple(str(part) for part in test[1:])
    elif isinstance(test, list) and len(test) == 2 and test[0] == "CMD-SHELL":
        argv = ("sh", "-c", str(test[1]))
    elif isinstance(test, list) and test == ["NONE"]:
        return None
    else:
        raise ComposeError(f"{service}: healthcheck test {test!r} is not CMD or CMD-SHELL")
    return HealthCheck(argv, _duration(spec.get("timeout", "30s")))


def _duration(text: Any) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(text).strip())
    if match is None:
        raise ComposeError(f"{text!r} is not a duration (e.g. 5s)")
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(2) or "s"]


# -- the image a build makes ------------------------------------------------------------


def _dockerfile(path: Path) -> tuple[str, dict[str, str]]:
    """The final stage's WORKDIR and ENV, which a ``build:`` service's processes get."""
    text = re.sub(r"\\\n", " ", path.read_text())
    workdir, env = "/", dict[str, str]()
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        instruction, rest = words[0].upper(), words[1] if len(words) > 1 else ""
        if instruction == "FROM":
            workdir, env = "/", dict[str, str]()
        elif instruction == "WORKDIR":
            workdir = rest.strip()
        elif instruction == "ENV":
            parts = shlex.split(rest)
            if parts and "=" not in parts[0]:
                env[parts[0]] = " ".join(parts[1:])
            else:
                env.update(part.partition("=")[::2] for part in parts)
    return workdir, env


# -- running it -------------------------------------------------------------------------


@dataclass(frozen=True)
class NativeOptions:
    root: Path  # the checkout: docker-compose.yml's directory, bin/, .venv/
    run_dir: Path  # logs, volumes, tmpfs, per-service homes
    first_host: int = 11  # service addresses: the namespace's /24, from this host number
    start_timeout_s: float = 180.0  # a bound, not a wait: a busy 2-core box is slow
    poll_s: float = 0.5


@dataclass
class _Running:
    service: Service
    process: ManagedProcess
    env: dict[str, str]
    healthy: bool = False


def service_addresses(compose: ComposeFile, address: str, first_host: int) -> dict[str, str]:
    """Each service's address: ``address``'s /24, from host number ``first_host`` on, in
    the file's order."""
    network = address.rsplit(".", 1)[0]
    return {name: f"{network}.{first_host + i}" for i, name in enumerate(compose.services)}


class NativeCompose:
    """``with NativeCompose(compose, ns, options):`` starts every service, ready (healthy)
    when the block begins; leaving it stops them all, whatever state start reached."""

    def __init__(self, compose: ComposeFile, ns: NetNamespace, options: NativeOptions) -> None:
        self.compose = compose
        self.ns = ns
        self.options = options
        self.addresses = service_addresses(compose, ns.address, options.first_host)
        self._running: dict[str, _Running] = {}

    def exec_argv(self, argv: list[str]) -> list[str]:
        """``argv`` inside the namespace, where the service names resolve."""
        return [*self.ns.exec_prefix(), *argv]

    def environment(self, name: str) -> dict[str, str]:
        """What a service's processes see: its image's ENV and the file's environment."""
        return dict(self._running[name].env)

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self._running[name].process.log_tail(lines)

    def start(self) -> None:
        try:
            self._write_hosts()
            for address in self.addresses.values():
                self._add_service_address(address)
            self._start_all()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Dependents first, each with time to stop cleanly. Idempotent."""
        for name in reversed(list(self._running)):
            running = self._running.pop(name)
            running.process.stop(timeout=40.0 if running.service.build else 10.0)

    def __enter__(self) -> NativeCompose:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _add_service_address(self, address: str) -> None:
        """On the loopback interface, which WebRTC ignores: every process here gathers one
        media address, the namespace's own on veth0, as each would in its container. With
        all on veth0, livekit-server advertised all of them and a resumed client's ICE
        stalled 10 s at a time."""
        result = subprocess.run(
            ["ip", "-n", self.ns.name, "addr", "add", f"{address}/32", "dev", "lo"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0 and "File exists" not in result.stderr:
            raise HarnessError("compose", f"cannot add {address}: {result.stderr.strip()}")

    def _write_hosts(self) -> None:
        hosts = Path("/etc/netns") / self.ns.name / "hosts"
        hosts.parent.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
        lines += [f"{address} {name}" for name, address in self.addresses.items()]
        hosts.write_text("\n".join(lines) + "\n")

    def _start_all(self) -> None:
        deadline = time.monotonic() + self.options.start_timeout_s
        waiting = dict(self.compose.services)
        # Services that others wait to see finish (a schema migration): their exit 0 is done.
        one_shot = {
            dependency
            for service in self.compose.services.values()
            for dependency, condition in service.depends_on.items()
            if condition == "service_completed_successfully"
        }
        while waiting or not all(self._ready(r) for r in self._running.values()):
            for name, service in list(waiting.items()):
                if all(self._holds(dep, cond) for dep, cond in service.depends_on.items()):
                    self._start(service)
                    del waiting[name]
            for running in self._running.values():
                if running.service.name in one_shot and running.process.exit_code() == 0:
                    continue
                running.process.check_running()
                if running.service.healthcheck and not running.healthy:
                    running.healthy = self._probe(running)
                    if running.healthy:
                        logger.info("compose: %s is healthy", running.service.name)
            if time.monotonic() > deadline:
                late = [n for n, r in self._running.items() if not self._ready(r)]
                raise HarnessError(
                    "compose",
                    f"not ready within {self.options.start_timeout_s:.0f}s: "
                    f"{', '.join(late + list(waiting))}",
                    "\n".join(f"--- {n}\n{self._running[n].process.log_tail(15)}" for n in late),
                )
            time.sleep(self.options.poll_s)

    @staticmethod
    def _ready(running: _Running) -> bool:
        return running.healthy or running.service.healthcheck is None

    def _holds(self, dependency: str, condition: str) -> bool:
        running = self._running.get(dependency)
        if running is None:
            return False
        if condition == "service_healthy":
            return running.healthy
        if condition == "service_completed_successfully":
            return running.process.exit_code() == 0
        return True

    # -- one service ------------------------------------------------------------------

    def _start(self, service: Service) -> None:
        mapping = self._paths(service)
        native = _native_for(service)
        env, argv = native.prepare(self, service, mapping)
        home = self.options.run_dir / "home" / service.name
        home.mkdir(parents=True, exist_ok=True)
        env.setdefault("HOME", str(home))
        argv = [_map_path(part, mapping) for part in argv]
        binary = shutil.which(argv[0], path=env.get("PATH", _SYSTEM_PATH))
        if binary is None:
            raise HarnessError(service.name, f"{argv[0]} is not installed here")
        process = ManagedProcess(
            service.name,
            self.exec_argv([binary, *argv[1:]]),
            self.options.run_dir / f"{service.name}.log",
            env=env,
            cwd=mapping.get(native.workdir(self, service), home),
        )
        self._running[service.name] = _Running(service, process, env)
        process.start()

    def _paths(self, service: Service) -> dict[str, Path]:
        """Container path -> host path for this service: its mounts, and for a build its
        WORKDIR (the checkout)."""
        mapping: dict[str, Path] = {}
        if service.build is not None:
            workdir, _ = _dockerfile(self._dockerfile(service))
            mapping[workdir] = self.options.root
        for volume in service.volumes:
            if volume.named:
                host = self.options.run_dir / "volumes" / volume.source
                host.mkdir(parents=True, exist_ok=True)
            else:
                host = (self.compose.path.parent / volume.source).resolve()
            mapping[volume.target] = host
        for target in service.tmpfs:
            host = self.options.run_dir / "tmpfs" / service.name / target.strip("/")
            host.mkdir(parents=True, exist_ok=True)
            mapping[target.split(":")[0]] = host
        return mapping

    def _dockerfile(self, service: Service) -> Path:
        assert service.build is not None
        return (self.compose.path.parent / service.build / "Dockerfile").resolve()

    def _probe(self, running: _Running) -> bool:
        check = running.service.healthcheck
        assert check is not None
        mapping = self._paths(running.service)
        argv = [_map_path(part, mapping) for part in check.argv]
        stand_in = _HEALTH_STAND_INS.get(argv[0])
        if stand_in is not None:
            argv = stand_in(running.env)
        binary = shutil.which(argv[0], path=running.env.get("PATH", _SYSTEM_PATH))
        if binary is None:
            raise HarnessError(running.service.name, f"health check {argv[0]} not found here")
        try:
            result = subprocess.run(
                self.exec_argv([binary, *argv[1:]]), env=running.env, capture_output=True,
                timeout=check.timeout_s, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0


def _map_path(text: str, mapping: Mapping[str, Path]) -> str:
    """``text`` with each container path under a mapped prefix made the host path (the
    longest prefix wins: a volume inside the WORKDIR is the volume)."""
    for prefix in sorted(mapping, key=len, reverse=True):
        pattern = rf"(?<![\w/.-]){re.escape(prefix.rstrip('/'))}(?=/|$|[\s'\";:])"
        text = re.sub(pattern, str(mapping[prefix]).replace("\\", "\\\\"), text)
    return text


# -- images, natively -------------------------------------------------------------------


class _Native:
    """How one image's container starts: its environment and argv here."""

    def prepare(
        self, compose: NativeCompose, service: Service, mapping: Mapping[str, Path]
    ) -> tuple[dict[str, str], list[str]]:
        env = {"PATH": _SYSTEM_PATH}
        env.update({k: _map_path(v, mapping) for k, v in service.environment.items()})
        return env, list(service.command)

    def workdir(self, compose: NativeCompose, service: Service) -> str:
        return "/"


class _Build(_Native):
    """``build: .``: this checkout with its venv, the Dockerfile's WORKDIR and ENV."""

    def prepare(
        self, compose: NativeCompose, service: Service, mapping: Mapping[str, Path]
    ) -> tuple[dict[str, str], list[str]]:
        _, image_env = _dockerfile(compose._dockerfile(service))
        venv = compose.options.root / ".venv" / "bin"
        env = {"PATH": f"{venv}:{_SYSTEM_PATH}"}
        for key, value in {**image_env, **service.environment}.items():
            env[key] = _map_path(value, mapping)
        return env, list(service.command)

    def workdir(self, compose: NativeCompose, service: Service) -> str:
        return _dockerfile(compose._dockerfile(service))[0]


class _Entrypoint(_Native):
    """An image whose entrypoint is a program: ``command`` is its arguments."""

    def __init__(self, program: Callable[[NativeCompose], str]) -> None:
        self.program = program

    def prepare(
        self, compose: NativeCompose, service: Service, mapping: Mapping[str, Path]
    ) -> tuple[dict[str, str], list[str]]:
        env, command = super().prepare(compose, service, mapping)
        return env, [self.program(compose), *command]


class _Coturn(_Native):
    """coturn's entrypoint runs ``turnserver`` when the command starts with an option."""

    def prepare(
        self, compose: NativeCompose, service: Service, mapping: Mapping[str, Path]
    ) -> tuple[dict[str, str], list[str]]:
        env, command = super().prepare(compose, service, mapping)
        if not command or command[0].startswith("-"):
            command = ["turnserver", *command]
        return env, command


class _MariaDB(_Native):
    """The mariadb image's entrypoint: a data directory made once, then the database and
    user its MARIADB_* environment names, then the server on TCP 3306."""

    def prepare(
        self, compose: NativeCompose, service: Service, mapping: Mapping[str, Path]
    ) -> tuple[dict[str, str], list[str]]:
        env, _ = super().prepare(compose, service, mapping)
        data = mapping.get("/var/lib/mysql")
        if data is None:
            raise HarnessError(service.name, "no volume at /var/lib/mysql")
        run = compose.options.run_dir / service.name
        run.mkdir(parents=True, exist_ok=True)
        init = run / "init.sql"
        init.write_text(_mariadb_init(env))
        if not (data / "mysql").exists():
            result = subprocess.run(
                [_sbin("mariadb-install-db"), "--no-defaults", f"--datadir={data}",
                 "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise HarnessError(service.name, "mariadb-install-db failed", result.stderr)
        return env, [
            _sbin("mariadbd"), "--no-defaults", f"--datadir={data}", "--user=root",
            f"--socket={run / 'mysqld.sock'}", f"--pid-file={run / 'mysqld.pid'}",
            "--port=3306", "--bind-address=0.0.0.0", "--skip-name-resolve",
            f"--init-file={init}", "--innodb-buffer-pool-size=64M",
        ]  # fmt: skip


def _mariadb_init(env: Mapping[str, str]) -> str:
    def quoted(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    database, user = env.get("MARIADB_DATABASE", ""), env.get("MARIADB_USER", "")
    statements = []
    if database:
        statements.append(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4;")
    if user:
        password = quoted(env.get("MARIADB_PASSWORD", ""))
        statements.append(f"CREATE USER IF NOT EXISTS {quoted(user)}@'%' IDENTIFIED BY {password};")
        if database:
            statements.append(f"GRANT ALL ON `{database}`.* TO {quoted(user)}@'%';")
    return "\n".join(statements) + "\n"


def _sbin(name: str) -> str:
    found = shutil.which(name, path=_SYSTEM_PATH)
    if found is None:
        raise HarnessError(name, "is not installed (scripts/debian-packages.sh)")
    return found


def _livekit_server(compose: NativeCompose) -> str:
    return str(compose.options.root / "bin" / "livekit-server")


NATIVE_IMAGES: dict[str, _Native] = {
    "livekit/livekit-server": _Entrypoint(_livekit_server),
    "redis": _Native(),  # the command names redis-server
    "coturn/coturn": _Coturn(),
    "mariadb": _MariaDB(),
}


def _native_for(service: Service) -> _Native:
    if service.build is not None:
        return _Build()
    repository = (service.image or "").rsplit(":", 1)[0]
    native = NATIVE_IMAGES.get(repository)
    if native is None:
        raise HarnessError(service.name, f"no native stand-in for image {service.image!r}")
    return native


def _mariadb_health(env: Mapping[str, str]) -> list[str]:
    """The image's healthcheck.sh --connect: a TCP login as the service's user."""
    return [
        "mariadb-admin", "--protocol=tcp", "--host=127.0.0.1", "--port=3306",
        f"--user={env.get('MARIADB_USER', 'root')}",
        f"--password={env.get('MARIADB_PASSWORD', '')}", "status",
    ]  # fmt: skip


_HEALTH_STAND_INS: dict[str, Callable[[Mapping[str, str]], list[str]]] = {
    "healthcheck.sh": _mariadb_health,
}
