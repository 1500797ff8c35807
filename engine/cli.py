"""The ``berth`` command line: Docker's verbs and conventions over the gRPC API.

Each command imports only what it needs, and only its own subparser is built. Client commands
talk to the daemon through ``engine.api.channel`` (gRPC over HTTP/2 without grpc) and the
generated messages; they never import grpc or the engine. Exit statuses follow Docker's CLI: an
error prints ``Error response from daemon: <message>`` on stderr and exits 1; ``run`` exits with
the container's exit code, 125 when the daemon refused, 126/127 when the start classifier says
so; a bad flag exits 125.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn

from engine.cli_version import VERSION

EXIT_REFUSED = 125


class CliError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"berth: {message}\nSee 'berth --help'.", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)


# -- talking to the daemon ------------------------------------------------------------------


class Api:
    def __init__(self, args: argparse.Namespace) -> None:
        from engine.client import default_address, open_channel

        self.address = args.host or default_address()
        self.channel = open_channel(self.address, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                                    tls_key=args.tls_key, user_agent=f"berth/{VERSION}")

    @functools.cached_property
    def containers(self) -> Any:
        from engine.api.stub import Stub
        from engine.api.v1 import containers_pb2

        return Stub(self.channel, containers_pb2.DESCRIPTOR.services_by_name["Containers"])

    @functools.cached_property
    def system(self) -> Any:
        from engine.api.stub import Stub
        from engine.api.v1 import system_pb2

        return Stub(self.channel, system_pb2.DESCRIPTOR.services_by_name["System"])

    def call(self, method: Callable[..., Any], request: Any, **options: Any) -> Any:
        """``method(request)``; a streaming method's replies, as they come. Raises CliError,
        for a stream while iterating."""
        from engine.api.status import CallError

        try:
            result = method(request, **options)
        except CallError as error:
            raise self.translate(error) from None
        if getattr(method, "server_streaming", False):
            return self._translated(result)
        return result

    def _translated(self, replies: Iterator[Any]) -> Iterator[Any]:
        from engine.api.status import CallError

        try:
            yield from replies
        except CallError as error:
            raise self.translate(error) from None

    def translate(self, error: Any) -> CliError:
        """Docker's words for a failed call: why the daemon could not be reached, else what
        it answered."""
        from engine.api.status import Unreachable

        why = getattr(error, "unreachable", None)
        if why is Unreachable.ABSENT:
            return CliError(f"Cannot connect to the berth daemon at {self.address}. "
                            "Is the daemon running?")
        if why is Unreachable.DENIED:
            return CliError("permission denied while trying to connect to the berth daemon "
                            f"socket at {self.address}: {error.details()}")
        if why is not None:
            return CliError(f"error during connect: {error.details()}")
        return CliError(f"Error response from daemon: {error.details()}")


def _pb() -> Any:
    from engine.api.v1 import containers_pb2

    return containers_pb2


# -- formatting -------------------------------------------------------------------------------

ZERO_TIME = "0001-01-01T00:00:00Z"


def _iso(milliseconds: int) -> str:
    if not milliseconds:
        return ZERO_TIME
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ago(milliseconds: int) -> str:
    if not milliseconds:
        return ""
    seconds = max(0, datetime.datetime.now(datetime.UTC).timestamp() - milliseconds / 1000)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            count = int(seconds // size)
            plural = "s" if count != 1 else ""
            return f"{count} {unit}{plural}"
    return "Less than a second"


def docker_inspect(container: Any) -> dict[str, Any]:
    config = container.config
    cmd = list(config.cmd)
    return {
        "Id": container.id,
        "Created": _iso(container.created_ms),
        "Path": cmd[0] if cmd else "",
        "Args": cmd[1:],
        "State": {
            "Status": container.status, "Running": container.running,
            "Paused": container.paused, "Restarting": container.restarting,
            "OOMKilled": container.oom_killed, "Dead": container.dead,
            "Pid": container.pid, "ExitCode": container.exit_code, "Error": container.error,
            "StartedAt": _iso(container.started_ms), "FinishedAt": _iso(container.finished_ms),
        },
        "Image": container.image_digest or container.image,
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "HostConfig": {
            "Runtime": container.runtime, "AutoRemove": config.auto_remove,
            "RestartPolicy": {"Name": config.restart_policy or "no",
                              "MaximumRetryCount": config.restart_max_retries},
            "NetworkMode": config.network_mode or "none",
        },
        "Config": {"Cmd": cmd, "Env": list(config.env), "Image": container.image,
                   "WorkingDir": config.working_dir, "User": config.user},
    }


def _status_text(container: Any) -> str:
    if container.status == "running":
        return f"Up {_ago(container.started_ms)}"
    if container.status == "paused":
        return f"Up {_ago(container.started_ms)} (Paused)"
    if container.status == "exited":
        return f"Exited ({container.exit_code}) {_ago(container.finished_ms)} ago"
    return str(container.status).capitalize()


def _table(rows: Iterable[Sequence[str]], header: Sequence[str]) -> None:
    rows = [list(header), *[list(row) for row in rows]]
    widths = [max(len(row[index]) for row in rows) for index in range(len(header))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())


def _print_json(value: Any) -> None:
    import json

    print(json.dumps(value, indent=4))


# -- commands -----------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> Any:
    pb = _pb()
    name, _, retries = (args.restart or "no").partition(":")
    try:
        max_retries = int(retries) if retries else 0
    except ValueError:
        raise CliError(f"invalid restart policy format: {args.restart}",
                       EXIT_REFUSED) from None
    for variable in args.env:
        if not variable or variable.startswith("="):
            raise CliError(f"invalid environment variable: {variable}", EXIT_REFUSED)
    return pb.ContainerConfig(
        image=args.image, cmd=args.command, name=args.name or "", env=args.env,
        working_dir=args.workdir or "", user=args.user or "", network_mode=args.network,
        mounts=args.volume, restart_policy=name, restart_max_retries=max_retries,
        auto_remove=args.rm, runtime=args.runtime or "", secrets=args.secret,
    )


def cmd_create(args: argparse.Namespace) -> int:
    api = Api(args)
    reply = api.call(api.containers.Create, _pb().CreateRequest(config=_config(args)))
    print(reply.container.id)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    pb = _pb()
    api = Api(args)
    try:
        created = api.call(api.containers.Create, pb.CreateRequest(config=_config(args)))
    except CliError as error:
        raise CliError(str(error), EXIT_REFUSED) from None
    container_id = created.container.id
    try:
        api.call(api.containers.Start, pb.StartRequest(container=container_id))
    except CliError as error:
        # moby's start classifier decides 126/127 from the message; the container may be
        # gone already (--rm), so read the verdict from the message, as the daemon did.
        from engine.exit_code import classify_start_error

        code, _ = classify_start_error(Exception(str(error)))
        raise CliError(str(error), code if code in (126, 127) else EXIT_REFUSED) from None
    if args.detach:
        print(container_id)
        return 0
    for entry in api.call(api.containers.Logs, pb.LogsRequest(container=container_id,
                                                              follow=True)):
        stream = sys.stdout if entry.stream == "stdout" else sys.stderr
        stream.write(entry.line)
        stream.flush()
    result = api.call(api.containers.Wait, pb.WaitRequest(container=container_id))
    if args.rm:
        with contextlib.suppress(CliError):  # auto-removed already
            api.call(api.containers.Remove, pb.RemoveRequest(container=container_id,
                                                             force=True, volumes=True))
    return int(result.exit_code)


def _each(args: argparse.Namespace, action: Callable[[Api, str], None]) -> int:
    api = Api(args)
    status = 0
    for container in args.containers:
        try:
            action(api, container)
            print(container)
        except CliError as error:
            print(error, file=sys.stderr)
            status = error.status
    return status


def cmd_start(args: argparse.Namespace) -> int:
    return _each(args, lambda api, c: api.call(api.containers.Start,
                                               _pb().StartRequest(container=c)))


def cmd_stop(args: argparse.Namespace) -> int:
    def stop(api: Api, container: str) -> None:
        request = _pb().StopRequest(container=container)
        if args.time is not None:
            request.timeout = args.time
        api.call(api.containers.Stop, request)

    return _each(args, stop)


def cmd_restart(args: argparse.Namespace) -> int:
    def restart(api: Api, container: str) -> None:
        request = _pb().StopRequest(container=container)
        if args.time is not None:
            request.timeout = args.time
        api.call(api.containers.Restart, request)

    return _each(args, restart)


SIGNALS = {"KILL": 9, "TERM": 15, "INT": 2, "HUP": 1, "QUIT": 3, "USR1": 10, "USR2": 12,
           "STOP": 19, "CONT": 18}


def _signal(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise CliError(f"invalid signal: {text}", EXIT_REFUSED)
    return SIGNALS[name]


def cmd_kill(args: argparse.Namespace) -> int:
    signal = _signal(args.signal)
    return _each(args, lambda api, c: api.call(
        api.containers.Kill, _pb().KillRequest(container=c, signal=signal)))


def cmd_pause(args: argparse.Namespace) -> int:
    return _each(args, lambda api, c: api.call(api.containers.Pause,
                                               _pb().ContainerRequest(container=c)))


def cmd_unpause(args: argparse.Namespace) -> int:
    return _each(args, lambda api, c: api.call(api.containers.Unpause,
                                               _pb().ContainerRequest(container=c)))


def cmd_rm(args: argparse.Namespace) -> int:
    return _each(args, lambda api, c: api.call(api.containers.Remove, _pb().RemoveRequest(
        container=c, force=args.force, volumes=args.volumes)))


def cmd_wait(args: argparse.Namespace) -> int:
    api = Api(args)
    status = 0
    for container in args.containers:
        try:
            print(api.call(api.containers.Wait, _pb().WaitRequest(container=container))
                  .exit_code)
        except CliError as error:
            print(error, file=sys.stderr)
            status = 1
    return status


def cmd_ps(args: argparse.Namespace) -> int:
    api = Api(args)
    containers = api.call(api.containers.List, _pb().ListRequest(all=args.all)).containers
    if args.format == "json":
        _print_json([docker_inspect(container) for container in containers])
        return 0
    rows = []
    for container in reversed(list(containers)):
        command = " ".join(container.config.cmd)
        command = f'"{command[:20]}…"' if len(command) > 20 else f'"{command}"'
        rows.append((container.id[:12], container.image, command,
                     f"{_ago(container.created_ms)} ago", _status_text(container),
                     container.name))
    _table(rows, ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    api = Api(args)
    found, status = [], 0
    for container in args.containers:
        try:
            found.append(docker_inspect(api.call(api.containers.Inspect,
                                                 _pb().InspectRequest(container=container))))
        except CliError as error:
            print(error, file=sys.stderr)
            status = 1
    _print_json(found)
    return status


def cmd_logs(args: argparse.Namespace) -> int:
    api = Api(args)
    for entry in api.call(api.containers.Logs, _pb().LogsRequest(container=args.container,
                                                                 follow=args.follow)):
        stream = sys.stdout if entry.stream == "stdout" else sys.stderr
        stream.write(entry.line)
        stream.flush()
    return 0


def _event_line(event: Any) -> str:
    detail = f" step={event.step}" if event.step else ""
    error = f" error={event.error!r}" if event.error else ""
    return (f"{_iso(event.at_ms)} seq={event.seq} container {event.event} "
            f"{event.container_id[:12]} (name={event.container_name}, "
            f"{event.from_state or '-'}->{event.to_state}{detail}, actor={event.actor}{error})")


def cmd_events(args: argparse.Namespace) -> int:
    from engine.api.v1 import system_pb2

    api = Api(args)
    request = system_pb2.EventsRequest(since_seq=args.since, containers=args.container,
                                       events=args.event, docker_only=not args.all)
    try:
        for event in api.call(api.system.Events, request):
            if args.format == "json":
                import json

                from google.protobuf.json_format import MessageToDict

                print(json.dumps(MessageToDict(event)), flush=True)
            else:
                print(_event_line(event), flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    api = Api(args)
    events = api.call(api.containers.History,
                      _pb().HistoryRequest(container=args.container)).events
    if args.format == "json":
        from google.protobuf.json_format import MessageToDict

        _print_json([MessageToDict(event) for event in events])
        return 0
    _table(((str(e.container_seq), _iso(e.at_ms), e.event, e.from_state or "-", e.to_state,
             e.step or "-", e.outcome, e.actor, e.error) for e in events),
           ("SEQ", "AT", "EVENT", "FROM", "TO", "STEP", "OUTCOME", "ACTOR", "ERROR"))
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    api = Api(args)
    images = api.call(api.containers.Images, _pb().ImagesRequest()).images
    if args.format == "json":
        from google.protobuf.json_format import MessageToDict

        _print_json([MessageToDict(image) for image in images])
        return 0
    rows = []
    for image in images:
        repository, _, tag = image.reference.rpartition(":")
        rows.append((repository, tag, image.digest.removeprefix("sha256:")[:12],
                     f"{_ago(image.created_ms)} ago", f"{image.size_bytes / 1e6:.1f}MB"))
    _table(rows, ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import os

    api = Api(args)
    image = api.call(api.containers.Import, _pb().ImportRequest(
        source=os.path.abspath(args.source), reference=args.reference))
    print(image.digest)
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    api = Api(args)
    status = 0
    for reference in args.images:
        try:
            api.call(api.containers.RemoveImage, _pb().RemoveImageRequest(reference=reference))
            print(f"Untagged: {reference}")
        except CliError as error:
            print(error, file=sys.stderr)
            status = 1
    return status


def cmd_reload(args: argparse.Namespace) -> int:
    from engine.api.v1 import system_pb2

    api = Api(args)
    reply = api.call(api.system.Reload, system_pb2.ReloadRequest())
    print(f"configuration generation {reply.generation}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    from engine.api.v1 import system_pb2

    api = Api(args)
    info = api.call(api.system.Info, system_pb2.InfoRequest())
    if args.format == "json":
        _print_json(MessageToDict(info, always_print_fields_with_no_presence=True))
        return 0
    print(f"Containers: {info.containers}\n Running: {info.running}\n Paused: {info.paused}\n"
          f" Stopped: {info.stopped}\nImages: {info.images}\nBackend: {info.backend}\n"
          f"Data root: {info.data_root}\nDatabase: {info.database}\n"
          f"Default runtime: {info.default_runtime}\n"
          f"Configuration generation: {info.config_generation}\nRuntimes:")
    for runtime in info.runtimes:
        digest = f" (sha256 {runtime.digest})" if runtime.digest else ""
        print(f" {runtime.name}: {runtime.binary}{digest}")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    from engine.api.v1 import system_pb2

    api = Api(args)
    server = api.call(api.system.Version, system_pb2.VersionRequest())
    if args.format == "json":
        _print_json({"Client": {"Version": VERSION},
                     "Server": {"Version": server.version, "ApiVersion": server.api_version,
                                "Python": server.python, "SQLite": server.sqlite}})
        return 0
    print(f"Client:\n Version: {VERSION}\nServer:\n Version: {server.version}\n"
          f" API version: {server.api_version}\n Python: {server.python}\n"
          f" SQLite: {server.sqlite}")
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    from engine.daemon import run_daemon

    return run_daemon(args)


def cmd_failpoints(_args: argparse.Namespace) -> int:
    from engine.steps import failpoint_names

    print("\n".join(failpoint_names()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    return run_demo(args.root)


# -- the parser ------------------------------------------------------------------------------


def _container_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name")
    parser.add_argument("-e", "--env", action="append", default=[])
    parser.add_argument("-v", "--volume", action="append", default=[])
    parser.add_argument("--secret", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--network", default="none", choices=["none", "host"])
    parser.add_argument("--restart", default="no")
    parser.add_argument("--runtime")
    parser.add_argument("-w", "--workdir")
    parser.add_argument("-u", "--user")
    parser.add_argument("--rm", action="store_true")
    parser.add_argument("image")
    parser.add_argument("command", nargs=argparse.REMAINDER)


def _containers(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("containers", nargs="+")


def _format_flag(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--format", choices=["table", "json"], default="table")


def _run_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-d", "--detach", action="store_true")
    _container_flags(sub)


def _stop_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-t", "--time", type=int, help="seconds to wait before SIGKILL")
    _containers(sub)


def _kill_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-s", "--signal", default="KILL")
    _containers(sub)


def _rm_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", "--force", action="store_true")
    sub.add_argument("-v", "--volumes", action="store_true")
    _containers(sub)


def _ps_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-a", "--all", action="store_true")
    _format_flag(sub)


def _logs_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", "--follow", action="store_true")
    sub.add_argument("container")


def _events_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--since", type=int, default=0, help="global event seq to resume after")
    sub.add_argument("--container", action="append", default=[])
    sub.add_argument("--event", action="append", default=[])
    sub.add_argument("--all", action="store_true", help="saga steps too")
    _format_flag(sub)


def _history_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("container")
    _format_flag(sub)


def _import_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("source")
    sub.add_argument("reference")


def _rmi_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("images", nargs="+")


def _daemon_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--root", default=None, help="data root (default $BERTH_ROOT)")
    sub.add_argument("--db", default=None, help="database file (default $BERTH_DB)")
    sub.add_argument("--config", default=None, help="daemon.json")
    sub.add_argument("--backend", choices=["runc", "fake"], default=None)
    sub.add_argument("--tls-cert", dest="tls_cert")
    sub.add_argument("--tls-key", dest="tls_key")
    sub.add_argument("--tls-ca", dest="tls_ca", help="require client certificates")
    sub.add_argument("--insecure-tcp", action="store_true",
                     help="allow plain TCP listeners (unsafe)")
    sub.add_argument("--debug", action="store_true")
    sub.add_argument("--listen", dest="listen", action="append", default=[],
                     help="listen address (repeatable); default $BERTH_HOST or the socket")


def _demo_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--root", default=None)


def _no_flags(_sub: argparse.ArgumentParser) -> None:
    pass


Handler = Callable[[argparse.Namespace], int]
# verb: (handler, help, its flags), in the order ``berth --help`` lists them.
COMMANDS: dict[str, tuple[Handler, str, Callable[[argparse.ArgumentParser], None]]] = {
    "create": (cmd_create, "create a container", _container_flags),
    "run": (cmd_run, "create and start a container", _run_flags),
    "start": (cmd_start, "start containers", _containers),
    "pause": (cmd_pause, "pause containers", _containers),
    "unpause": (cmd_unpause, "unpause containers", _containers),
    "wait": (cmd_wait, "wait for containers to stop", _containers),
    "stop": (cmd_stop, "stop containers", _stop_flags),
    "restart": (cmd_restart, "restart containers", _stop_flags),
    "kill": (cmd_kill, "send a signal to containers", _kill_flags),
    "rm": (cmd_rm, "remove containers", _rm_flags),
    "ps": (cmd_ps, "list containers", _ps_flags),
    "inspect": (cmd_inspect, "show containers as JSON", _containers),
    "logs": (cmd_logs, "show a container's output", _logs_flags),
    "events": (cmd_events, "stream events (replayed from --since)", _events_flags),
    "history": (cmd_history, "show a container's journaled history", _history_flags),
    "images": (cmd_images, "list images", _format_flag),
    "import": (cmd_import, "import a rootfs tarball or directory as an image", _import_flags),
    "rmi": (cmd_rmi, "remove images", _rmi_flags),
    "reload": (cmd_reload, "reload the daemon's configuration", _no_flags),
    "info": (cmd_info, "show system information", _format_flag),
    "version": (cmd_version, "show versions", _format_flag),
    "daemon": (cmd_daemon, "run the daemon in the foreground", _daemon_flags),
    "failpoints": (cmd_failpoints, "list every failpoint name", _no_flags),
    "demo": (cmd_demo, "journal demonstration on the in-process fake runtime", _demo_flags),
}
_VALUE_FLAGS = ("-H", "--host", "--tls-ca", "--tls-cert", "--tls-key")


def build_parser(verb: str | None = None) -> Parser:
    """The parser of every command, or of ``verb``'s alone (what its arguments need)."""
    parser = Parser(prog="berth", description="A durable, auditable container engine.")
    parser.add_argument("-H", "--host", help="daemon address (unix://PATH or tcp://HOST:PORT)")
    parser.add_argument("--tls-ca")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    commands = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for name, (handler, text, flags) in COMMANDS.items():
        if verb is None or name == verb:
            sub = commands.add_parser(name, help=text, description=text)
            sub.set_defaults(handler=handler)
            flags(sub)
    return parser


def verb_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when the global flags before it leave no doubt (exact
    spellings, each with its value); None otherwise (help, an abbreviation, an unknown verb)."""
    arguments = iter(argv)
    for argument in arguments:
        if argument in _VALUE_FLAGS:
            next(arguments, None)
        elif argument.startswith(tuple(f"{flag}=" for flag in _VALUE_FLAGS[1:])) or (
                argument.startswith("-H") and len(argument) > 2):
            continue
        elif argument.startswith("-"):
            return None
        else:
            return argument if argument in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(verb_of(arguments)).parse_args(arguments)
    if args.verb == "daemon":
        args.host = args.listen or None
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CliError as error:
        print(error, file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # the one place that turns any error into one line
        print(f"Error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
