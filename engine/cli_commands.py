"""The CLI's commands: one ``cmd_<verb>(args) -> exit status`` each, Docker's behaviour."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from engine.cli_api import EXIT_REFUSED, Api, CliError, messages, valid_text
from engine.cli_filters import (
    FilterError,
    match_kv_list,
    matcher,
    parse_filter_flag,
    parse_filters,
    wants_all,
)
from engine.cli_output import (
    PS_HEADERS,
    ago,
    docker_inspect,
    iso,
    label_method,
    parse_moment,
    print_json,
    ps_fields,
    table,
)
from engine.cli_template import (
    HEADER_FUNCTIONS,
    Method,
    NilMap,
    Template,
    TemplateError,
    WithMethods,
    go_quote,
    json_text,
)
from engine.cli_template import parse as parse_template
from engine.cli_version import VERSION
from engine.log_pump import padded_rfc3339_nano

ENV_LINE_MAX = 65536  # Go's bufio.Scanner buffer: a line must be shorter, newline included
# Go's unicode.IsSpace (Python's str.isspace also takes \x1c-\x1f).
_GO_SPACES = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
              "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _config(args: argparse.Namespace) -> Any:
    pb = messages()
    name, _, retries = (args.restart or "no").partition(":")
    try:
        max_retries = int(retries) if retries else 0
    except ValueError:  # Docker's flag error (opts.ParseRestartPolicy)
        raise CliError(f'invalid argument "{args.restart}" for "--restart" flag: maximum retry '
                       "count must be an integer", EXIT_REFUSED) from None
    for label in args.label:  # Docker's ValidateLabel, as the flag is parsed: before all else
        _validate_label(label, args.verb)
    env = []
    for variable in [*_env_files(args.env_file), *args.env]:  # Docker's order: files first
        if not variable or variable.startswith("="):
            raise CliError(f"invalid environment variable: {variable}", EXIT_REFUSED)
        if "=" not in variable and variable in os.environ:
            # Docker's ValidateEnv: a bare name takes the client's value; one the client does
            # not have stays bare, and the daemon unsets it.
            variable = f"{variable}={os.environ[variable]}"
        env.append(valid_text(variable))
    labels: dict[str, str] = {}
    for label in [*_kv_files(args.label_file, lookup=False), *args.label]:  # files first
        key, _, value = valid_text(label).partition("=")
        labels[key] = value
    return pb.ContainerConfig(
        image=args.image, cmd=args.command, name=args.name or "", env=env, labels=labels,
        working_dir=args.workdir or "", user=args.user or "", hostname=args.hostname or "",
        network_mode=args.network, mounts=[_absolute_source(spec) for spec in args.volume],
        restart_policy=name, restart_max_retries=max_retries,
        auto_remove=args.rm, runtime=args.runtime or "", secrets=args.secret,
    )


def _validate_label(label: str, verb: str) -> None:
    """docker/cli's ValidateLabel (a flag validator, so pflag's words around it): the key,
    spaces and tabs on its left trimmed, must be there and hold neither."""
    key = label.partition("=")[0].lstrip(" \t")
    if not key:
        why = f"invalid label '{label}': empty name"
    elif " " in key or "\t" in key:
        why = f"label '{key}' contains whitespaces"
    else:
        return
    raise CliError(f'invalid argument {go_quote(label)} for "-l, --label" flag: {why}\n'
                   f"See 'berth {verb} --help'.", EXIT_REFUSED)


def _absolute_source(spec: str) -> str:
    """Docker's CLI (23 and later): a ``-v`` host part that is ``.`` or starts with ``./`` is
    made absolute on the client, from its working directory."""
    source, colon, rest = spec.partition(":")
    if colon and (source == "." or source.startswith("./")):
        return f"{os.path.abspath(source)}:{rest}"
    return spec


def _env_files(paths: list[str]) -> list[str]:
    """Docker's --env-file (its kvfile): a VAR=VALUE a line, the value kept as written; blank
    lines and lines starting with # skipped; a bare VAR takes the client's value, and is left
    out when the client has none (unlike -e VAR, which then unsets it)."""
    return _kv_files(paths, lookup=True)


def _kv_files(paths: list[str], *, lookup: bool) -> list[str]:
    """Docker's kvfile, for ``--env-file`` and (without ``lookup``) ``--label-file``, with the
    same errors for both. A bare KEY takes the client's variable with ``lookup`` and is left
    out without it (Docker's ReadKVStrings reads label files with no lookup)."""
    variables = []
    for path in paths:
        try:
            lines = _file_lines(path)
        except IsADirectoryError:
            raise CliError(f"read {path}: is a directory", EXIT_REFUSED) from None
        except OSError as exc:
            raise CliError(f"open {path}: {(exc.strerror or str(exc)).lower()}",
                           EXIT_REFUSED) from None
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode().lstrip(_GO_SPACES)
            except UnicodeDecodeError:
                raise CliError(f"env file {path} contains invalid utf8 bytes at line {number}: "
                               f"[{' '.join(str(byte) for byte in raw)}]", EXIT_REFUSED) from None
            if not line or line.startswith("#"):
                continue
            variable, equals, value = line.partition("=")
            variable = variable.lstrip(" \t")
            if " " in variable or "\t" in variable:
                raise CliError(f"poorly formatted environment: variable '{variable}' contains "
                               "whitespaces", EXIT_REFUSED)
            if not variable:
                raise CliError(f"poorly formatted environment: no variable name on line "
                               f"'{line}'", EXIT_REFUSED)
            if equals:
                variables.append(f"{variable}={value}")
            elif lookup and variable in os.environ:
                variables.append(f"{variable}={os.environ[variable]}")
    return variables


def _file_lines(path: str) -> list[bytes]:
    """The lines of ``path`` as Go's bufio.Scanner gives them: split at \\n, a \\r before it
    dropped, a BOM at the start dropped; a line over 64 KiB is refused. Raises OSError."""
    lines: list[bytes] = []
    with open(path, "rb") as file:
        while raw := file.readline(ENV_LINE_MAX):
            if len(raw) == ENV_LINE_MAX and not raw.endswith(b"\n"):
                raise CliError("bufio.Scanner: token too long", EXIT_REFUSED)
            line = raw.removesuffix(b"\n").removesuffix(b"\r")
            lines.append(line.removeprefix(b"\xef\xbb\xbf") if not lines else line)
    return lines


def cmd_create(args: argparse.Namespace) -> int:
    api = Api(args)
    reply = api.call(api.containers.Create, messages().CreateRequest(config=_config(args)))
    _warn(reply)
    print(reply.container.id)
    return 0


def _no_such(kind: str, reference: str, error: CliError) -> CliError:
    """Docker's client words a NotFound answer to its inspect and remove calls itself
    (``Error: No such container: X``); other answers, and other calls', stay the daemon's."""
    if not error.not_found:
        return error
    return CliError(f"Error: No such {kind}: {reference}", error.status, not_found=True)


def _warn(reply: Any) -> None:
    for warning in reply.warnings:  # as Docker's CLI prints the daemon's
        print(f"WARNING: {warning}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    pb = messages()
    api = Api(args)
    try:
        created = api.call(api.containers.Create, pb.CreateRequest(config=_config(args)))
    except CliError as error:
        raise CliError(str(error), EXIT_REFUSED) from None
    _warn(created)
    container_id = created.container.id
    batches: Iterator[Any] = iter(())
    output: Iterator[Any] | None = None
    if not args.detach:
        # Docker attaches before it starts: the output of the run, raw, as it is written
        # (partial lines, bytes that are no UTF-8). Where the daemon cannot attach, the log
        # is held open by the daemon before the start instead (the handshake's empty entry),
        # so that a fast container removed at its exit (--rm) has all its output read all
        # the same. A second connection: a channel carries one call at a time.
        stream = Api(args)
        try:
            output = iter(stream.call(stream.containers.Attach,
                                      pb.AttachRequest(container=container_id)))
            next(output)
        except (CliError, StopIteration) as error:  # not attached: not started either
            output = None
            if not (isinstance(error, CliError) and error.unimplemented):
                _remove_unstarted(api, args, container_id)
                raise CliError(str(error) or "the daemon cannot attach", EXIT_REFUSED) from None
            batches = iter(stream.call(stream.containers.Logs, pb.LogsRequest(
                container=container_id, follow=True, from_start=True)))
            try:
                next(batches)
            except (CliError, StopIteration) as error:
                _remove_unstarted(api, args, container_id)
                raise CliError(str(error) or "the daemon cannot follow the log",
                               EXIT_REFUSED) from None
    proxy = _SignalProxy(args, container_id) if not args.detach and args.sig_proxy else None
    with proxy or contextlib.nullcontext():
        try:
            api.call(api.containers.Start, pb.StartRequest(container=container_id))
        except CliError as error:
            raise CliError(str(error), _run_start_status(str(error))) from None
        if args.detach:
            print(container_id)
            return 0
        complete = _copy_output(output) if output is not None else True
        for batch in batches:
            write_entries(batch.entries, timestamps=False)
        result = _wait_for_run(api, container_id, removed=args.rm)
    if args.rm:
        with contextlib.suppress(CliError):  # auto-removed already
            api.call(api.containers.Remove, pb.RemoveRequest(container=container_id,
                                                             force=True, volumes=True))
    # Output lost on the way is a failure, whatever the container says (its log has it).
    return int(result.exit_code) if complete else int(result.exit_code) or 1


def _remove_unstarted(api: Api, args: argparse.Namespace, container_id: str) -> None:
    if args.rm:
        with contextlib.suppress(CliError):
            api.call(api.containers.Remove, messages().RemoveRequest(
                container=container_id, force=True, volumes=True))


def _copy_output(output: Iterator[Any]) -> bool:
    """An attached run's output to this command's stdout and stderr, bytes as they come;
    whether all of it came. An attachment cut short says so and the run goes on to its exit
    (its log has it all); any other failure (the daemon shutting down) ends the run."""
    targets = {1: sys.stdout, 2: sys.stderr}
    try:
        for chunk in output:
            target = targets.get(chunk.stream)
            if target is not None:
                target.flush()
                target.buffer.write(chunk.data)
                target.buffer.flush()
    except CliError as error:
        if not error.data_loss:
            raise
        print(str(error), file=sys.stderr)
        return False
    return True


class _SignalProxy:
    """Docker's ``--sig-proxy`` (on by default without a TTY): each signal this command gets
    while it runs a container is sent to the container, and the command goes on until the
    container exits (a Ctrl-C that the container traps does not end the run). Every
    catchable signal but SIGCHLD, SIGPIPE and SIGURG, as Docker's ForwardAllSignals. The
    handler only queues the signal; a thread of its own, on a connection of its own, sends
    it (a handler runs between two steps of whatever call this thread was making)."""

    _KEPT = frozenset({"SIGCHLD", "SIGPIPE", "SIGURG", "SIGKILL", "SIGSTOP"})

    def __init__(self, args: argparse.Namespace, container_id: str) -> None:
        import queue

        self._args = args
        self._container_id = container_id
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._previous: dict[int, Any] = {}
        self._thread: Any = None

    def __enter__(self) -> _SignalProxy:
        import signal
        import threading

        self._thread = threading.Thread(target=self._forward, name="sig-proxy", daemon=True)
        self._thread.start()
        for number in signal.valid_signals():
            if not 0 < number < signal.NSIG:
                continue
            with contextlib.suppress(ValueError):
                if signal.Signals(number).name in self._KEPT:
                    continue
            with contextlib.suppress(OSError, ValueError):  # not catchable (glibc's own)
                self._previous[number] = signal.signal(number, self._caught)
        return self

    def _caught(self, number: int, _frame: Any) -> None:
        self._queue.put(number)  # SimpleQueue.put may be called from a handler

    def _forward(self) -> None:
        api: Api | None = None
        while (number := self._queue.get()) is not None:
            try:
                api = api or Api(self._args)
                api.call(api.containers.Kill, messages().KillRequest(
                    container=self._container_id, signal=number))
            except CliError:  # exited, or not started yet: nothing to send it to
                pass

    def __exit__(self, *_exception: object) -> None:
        import signal

        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._queue.put(None)
        self._thread.join(5)


def _wait_for_run(api: Api, container_id: str, *, removed: bool) -> Any:
    """The exit of a run whose output ended. Docker's run sets its wait up before the start
    ("removed" with --rm); this one comes after, when the container may be gone (--rm, or an
    rm -f meanwhile): a "removed" wait answers with its last exit all the same."""
    from engine.api.status import CallError, StatusCode

    pb = messages()
    try:
        return api.containers.Wait(pb.WaitRequest(
            container=container_id, condition="removed" if removed else "not-running"))
    except CallError as error:
        if error.code() != StatusCode.NOT_FOUND:
            raise api.translate(error) from None
    return api.call(api.containers.Wait, pb.WaitRequest(container=container_id,
                                                        condition="removed"))


PARALLEL_CALLS = 50  # Docker's CLI: how many containers its verbs act on at once


def _each(args: argparse.Namespace, action: Callable[[Api, str], None], *,
          parallel: bool = False, missing_ok: bool = False, failed_verb: str = "") -> int:
    """``action`` on each container named, printing its name or its error, in the order
    given. ``parallel``: as Docker's parallelOperation (stop, kill, rm, pause, unpause), up to
    ``PARALLEL_CALLS`` at once, each on a connection of its own (start and restart go one
    by one). ``missing_ok``: a container not found is only reported (``rm -f``).
    ``failed_verb``: a last line naming the failed ones, as Docker's start ends."""
    containers: list[str] = args.containers
    outcomes: Iterator[CliError | None]
    if parallel and len(containers) > 1:
        outcomes = _at_once(args, action, containers)
    else:
        api = Api(args)

        def one_by_one() -> Iterator[CliError | None]:
            for container in containers:
                try:
                    action(api, container)
                except CliError as error:
                    yield error
                    continue
                yield None

        outcomes = one_by_one()
    status = 0
    failed: list[str] = []
    for container, error in zip(containers, outcomes, strict=True):
        if error is None:
            print(container, flush=True)
            continue
        print(error, file=sys.stderr, flush=True)
        if not (missing_ok and error.not_found):
            status = error.status
            failed.append(container)
    if failed and failed_verb:
        print(f"Error: failed to {failed_verb} containers: {', '.join(failed)}",
              file=sys.stderr)
    return status


def _at_once(args: argparse.Namespace, action: Callable[[Api, str], None],
             containers: list[str]) -> Iterator[CliError | None]:
    """``action`` on every container, ``PARALLEL_CALLS`` threads at most, each with a
    connection of its own; the outcomes in the order given, each as soon as it is known.
    The threads are daemons: a Ctrl-C ends the command at once, as Docker's."""
    import queue
    import threading

    done = [threading.Event() for _ in containers]
    outcomes: list[CliError | None] = [None] * len(containers)
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(containers)):
        work.put(index)

    Api(args)  # an address or a TLS file it cannot use: the command's error, at once

    def worker() -> None:
        api: Api | None = None
        while True:
            try:
                index = work.get_nowait()
            except queue.Empty:
                return
            try:
                api = api or Api(args)
                action(api, containers[index])
            except CliError as error:
                outcomes[index] = error
            except Exception as error:  # never a success it was not
                outcomes[index] = CliError(str(error))
            finally:
                done[index].set()

    for _ in range(min(len(containers), PARALLEL_CALLS)):
        threading.Thread(target=worker, daemon=True).start()
    for index, finished in enumerate(done):
        finished.wait()
        yield outcomes[index]


def cmd_start(args: argparse.Namespace) -> int:
    return _each(args, lambda api, c: api.call(api.containers.Start,
                                               messages().StartRequest(container=c)),
                 failed_verb="start")


def cmd_stop(args: argparse.Namespace) -> int:
    return _stopping(args, "Stop")


def cmd_restart(args: argparse.Namespace) -> int:
    return _stopping(args, "Restart")


def _stopping(args: argparse.Namespace, method: str) -> int:
    """``stop`` and ``restart``: ``-s`` as ``kill`` reads it, ``-t`` in seconds."""
    signal = _signal(args.signal) if args.signal else 0

    def call(api: Api, container: str) -> None:
        request = messages().StopRequest(container=container, signal=signal)
        if args.time is not None:
            request.timeout = args.time
        api.call(getattr(api.containers, method), request)

    return _each(args, call, parallel=method == "Stop")


def _signal(text: str) -> int:
    """Docker's ParseSignal: a number other than 0, or a name of its Linux signal map, with
    or without ``SIG``, any case (``RTMIN+1``..``RTMIN+15``, ``RTMAX-14``..``RTMAX-1``
    included). Raises CliError ``Invalid signal: X``, worded as Docker's daemon answers it
    (its CLI sends the text; berth's API takes the number)."""
    import signal

    name = text.upper().removeprefix("SIG")
    number = 0
    digits = text.removeprefix("+")  # strconv.Atoi takes a sign
    if digits.isascii() and digits.isdigit():
        number = int(digits) if int(digits) < 1 << 31 else 0  # the API's int32
    elif name.startswith("RTMIN+") and name[6:].isascii() and name[6:].isdigit():
        offset = int(name[6:])
        number = signal.SIGRTMIN + offset if 1 <= offset <= 15 else 0
    elif name.startswith("RTMAX-") and name[6:].isascii() and name[6:].isdigit():
        offset = int(name[6:])
        number = signal.SIGRTMAX - offset if 1 <= offset <= 14 else 0
    elif name.isascii() and name.isalnum():
        member = getattr(signal.Signals, f"SIG{name}", None)
        number = int(member) if member is not None else 0
    if number == 0:
        raise CliError(f"Error response from daemon: Invalid signal: {text}")
    return number


def cmd_kill(args: argparse.Namespace) -> int:
    signal = _signal(args.signal)
    return _each(args, lambda api, c: api.call(
        api.containers.Kill, messages().KillRequest(container=c, signal=signal)), parallel=True)


def cmd_pause(args: argparse.Namespace) -> int:
    return _each(args, lambda api, c: api.call(api.containers.Pause,
                                               messages().ContainerRequest(container=c)),
                 parallel=True)


def cmd_unpause(args: argparse.Namespace) -> int:
    return _each(args, lambda api, c: api.call(api.containers.Unpause,
                                               messages().ContainerRequest(container=c)),
                 parallel=True)


def cmd_rm(args: argparse.Namespace) -> int:
    def remove(api: Api, container: str) -> None:
        try:
            api.call(api.containers.Remove, messages().RemoveRequest(
                container=container, force=args.force, volumes=args.volumes))
        except CliError as error:
            raise _no_such("container", container, error) from None

    return _each(args, remove, parallel=True, missing_ok=args.force)


def cmd_wait(args: argparse.Namespace) -> int:
    api = Api(args)
    status = 0
    for container in args.containers:
        try:
            print(api.call(api.containers.Wait, messages().WaitRequest(container=container))
                  .exit_code)
        except CliError as error:
            print(error, file=sys.stderr)
            status = 1
    return status


def _run_start_status(message: str) -> int:
    """The status of a ``run`` whose start failed, as Docker's CLI reads it from the message
    (``runStartContainerErr``, not the daemon's classifier: "not a directory", 127 in the
    container's ExitCode, is 125 here): 127 for a command not found, 126 for permission
    denied or a directory, else 125."""
    if any(marker in message for marker in (
            "executable file not found", "no such file or directory",
            "system cannot find the file specified")):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return EXIT_REFUSED


def cmd_ps(args: argparse.Namespace) -> int:
    # As Docker's: the template is parsed, and tried on an empty row, before the daemon is
    # asked anything; a typed \t or \n in it is the character.
    form = args.format.strip()
    template, is_table = _list_format(form, ps_fields(None))
    try:  # the flag's own format first (Docker's flag error), then what the daemon refuses
        for spec in args.filter:
            parse_filter_flag(spec)
    except FilterError as error:
        raise CliError(f"{error}\nSee 'berth ps --help'.", EXIT_REFUSED) from None
    try:
        filters = parse_filters(args.filter)
    except FilterError as error:
        raise CliError(f"Error response from daemon: {error}") from None
    # Docker's: -l is -n 1 unless -n is given; a limit of 0 or less is none.
    last = 1 if args.latest and args.last == -1 else args.last
    last = last if last > 0 else -1
    api = Api(args)
    listed_all = args.all or last >= 0 or wants_all(filters)
    listed = list(api.call(api.containers.List,
                           messages().ListRequest(all=listed_all)).containers)
    # before= and since= may name a container the list leaves out (a stopped one).
    every = listed if listed_all or not {"before", "since"} & set(filters) else list(
        api.call(api.containers.List, messages().ListRequest(all=True)).containers)
    images = None
    if "ancestor" in filters:  # Docker's filter resolves a name to the image it names now
        images = {image.reference: image.digest for image in api.call(
            api.containers.Images, messages().ImagesRequest()).images}
    try:
        wanted = matcher(filters, every, images)
    except FilterError as error:
        raise CliError(f"Error response from daemon: {error}") from None
    containers = [container for container in listed if wanted(container)]
    newest_first = list(reversed(containers))
    if last >= 0:  # docker ps -n N: the N last created, whatever their state
        newest_first = newest_first[:last]
        containers = list(reversed(newest_first))
    width = None if args.no_trunc else 12
    if args.quiet:  # docker ps -q: short IDs, newest first
        for container in newest_first:
            print(container.id[:width])
        return 0
    if form == "json":  # Docker 23's: one object a line, the row's fields, newest first
        _print_json_rows([ps_fields(container, truncate=not args.no_trunc)
                          for container in newest_first])
        return 0
    if template is None:  # Docker's default table
        rows = []
        for container in newest_first:
            fields = ps_fields(container, truncate=not args.no_trunc)
            rows.append((fields["ID"], fields["Image"], fields["Command"],
                         fields["RunningFor"], fields["Status"], fields["Names"]))
        table(rows, ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"))
        return 0
    _print_formatted(template, is_table, [ps_fields(container, truncate=not args.no_trunc)
                                          for container in newest_first], PS_HEADERS)
    return 0


def _list_format(form: str, empty_row: Mapping[str, Any]) -> tuple[Template | None, bool]:
    """A listing's ``--format`` (ps, images, volume ls) as Docker reads it: ``table`` or
    ``json`` (no template), else a Go template, ``table`` first for a table with a header; a
    typed \\t or \\n in it is the character. The template is parsed, and tried on an empty
    row, before the daemon is asked anything."""
    is_table = form.startswith("table")
    if form in ("", "json", "table"):
        return None, is_table
    source = form.removeprefix("table").strip() if is_table else form
    source = source.replace("\\t", "\t").replace("\\n", "\n")
    try:
        template = parse_template(source)
    except TemplateError as error:
        raise CliError(f"failed to parse template: {error}") from None
    try:
        template.execute(empty_row)
    except TemplateError as error:
        raise CliError(f"failed to execute template: {error}") from None
    return template, is_table


def _as_go_map(row: Mapping[str, Any]) -> dict[str, Any]:
    """A listing's row as Docker's formatter hands it over, a Go map: written as JSON (its
    ``--format json``, ``{{json .}}``), its keys come sorted."""
    ordered = dict(sorted(row.items()))
    return WithMethods(ordered, row.methods) if isinstance(row, WithMethods) else ordered


def _print_json_rows(rows: Sequence[Mapping[str, Any]]) -> None:
    """``--format json`` of a listing (Docker 23's): one object a line."""
    for row in rows:
        print(json_text(_as_go_map(row)))


def _print_formatted(template: Template, is_table: bool, rows: Sequence[Mapping[str, Any]],
                     headers: Mapping[str, str]) -> None:
    """Each row through ``template``; as a table, under a header of each field's name as
    ``headers`` words it (whatever its cell does to it; errors ignored)."""
    lines = [_render(template, _as_go_map(row)) for row in rows]
    if not is_table:
        for line in lines:
            print(line)
        return
    if rows and isinstance(rows[0], WithMethods) and "Label" in rows[0].methods:
        headers = WithMethods(headers, {"Label": Method("Label", _label_header, 1)})
    try:
        header = template.execute(headers, HEADER_FUNCTIONS)
    except TemplateError:
        header = ""
    cells = [line.split("\t") for text in ([header] if header else []) + lines
             for line in text.split("\n")]
    width = max((len(row) for row in cells), default=0)
    padded = [row + [""] * (width - len(row)) for row in cells]
    if header:
        table(padded[1:], padded[0])
    else:
        table(padded, [""] * width, header_row=False)


def _label_header(name: str) -> str:
    """docker/cli's SubHeaderContext.Label: a ``{{.Label "com.example.app-name"}}`` column's
    header is the key's last dotted part, ``-`` and ``_`` as spaces (``app name``)."""
    return name.rsplit(".", 1)[-1].replace("-", " ").replace("_", " ")


def _render(template: Template, data: Any) -> str:
    try:
        return template.execute(data)
    except TemplateError as error:
        raise CliError(f"Template parsing error: {error}") from None


# docker inspect --type: berth has objects of the first three kinds only.
_INSPECT_TYPES = ("container", "image", "volume", "config", "network", "node", "plugin",
                  "secret", "service", "task")


def cmd_inspect(args: argparse.Namespace) -> int:
    """Docker's ``inspect``: each name is the first container, image or volume that has it
    (``--type`` says which kind); an image is found by name or by ID (a unique prefix)."""
    if args.type and args.type not in _INSPECT_TYPES:
        raise CliError(f'"{args.type}" is not a valid value for --type')
    api = Api(args)
    images: list[Any] = []

    def container(reference: str) -> dict[str, Any]:
        return docker_inspect(api.call(api.containers.Inspect,
                                       messages().InspectRequest(container=reference)))

    def image(reference: str) -> dict[str, Any]:
        if not images:
            images.extend(api.call(api.containers.Images, messages().ImagesRequest()).images)
        return _image_document(reference, images)

    def volume(reference: str) -> dict[str, Any]:
        [found] = api.call(api.containers.Volumes,
                           messages().VolumesRequest(names=[reference])).volumes
        return _volume_document(found)

    kinds = {"container": container, "image": image, "volume": volume}
    wanted = [kinds[args.type]] if args.type in kinds else [] if args.type else list(
        kinds.values())

    def document_of(reference: str) -> dict[str, Any]:
        for find in wanted:
            try:
                return find(reference)
            except CliError as error:
                if not error.not_found:
                    raise
        raise CliError(f"No such object: {reference}", not_found=True)

    return _inspected(args.containers, args.format, args.type or "object", document_of)


def _image_document(reference: str, images: Sequence[Any]) -> dict[str, Any]:
    """Docker's image inspect, for what berth's images have: one layer (the rootfs), no
    configuration of their own. Found as the store finds one: a name (``:latest`` by
    default) or an ID, ``sha256:`` or not, or a unique prefix of it. Raises CliError."""
    import platform

    from engine.errors import InvalidParameter
    from engine.reference import image_id_prefix, normalize_reference

    try:
        name: str | None = normalize_reference(reference)
    except InvalidParameter:
        name = None
    digests = {image.digest for image in images if name is not None and image.reference == name}
    prefix = image_id_prefix(reference)
    if not digests and prefix is not None:
        digests = {image.digest for image in images if image.digest.startswith(prefix)}
        if len(digests) > 1:
            raise CliError("Error response from daemon: multiple IDs found with provided "
                           f"prefix: {reference}")
    if not digests:
        raise CliError(f"No such image: {reference}", not_found=True)
    [digest] = digests
    named = [image for image in images if image.digest == digest]
    tags = sorted(image.reference for image in named if image.reference != image.digest)
    architectures = {"x86_64": "amd64", "aarch64": "arm64"}
    return {"Id": digest, "RepoTags": tags, "RepoDigests": [], "Parent": "", "Comment": "",
            "Created": iso(min(image.created_ms for image in named)),
            "Architecture": architectures.get(platform.machine(), platform.machine()),
            "Os": "linux", "Size": named[0].size_bytes,
            "RootFS": {"Type": "layers", "Layers": [digest]}}


def _inspected(references: list[str], form: str, kind: str,
               document_of: Callable[[str], dict[str, Any]]) -> int:
    """Docker's inspect: each object found, as one JSON array, one line of JSON each
    (``json``) or through the template (taken as it is: no escapes; one that does not parse
    exits 64); the errors of the others after, and exit 1."""
    template = _template_of(form)
    found: list[Any] = []
    status = 0
    for reference in references:
        try:
            document = document_of(reference)
            found.append(json_text(document) if form == "json" else
                         document if template is None else _render(template, document))
        except CliError as error:
            print(_no_such(kind, reference, error), file=sys.stderr)
            status = 1
    if not form:
        print_json(found)
    else:
        for text in found:
            print(text)
    return status


def cmd_logs(args: argparse.Namespace) -> int:
    request = messages().LogsRequest(container=args.container, follow=args.follow,
                                     since_ns=_moment("since", args.since),
                                     until_ns=_moment("until", args.until))
    if re.fullmatch(r"[+-]?\d+", args.tail):  # Docker's: anything but a number is all
        request.tail = max(-1, min(int(args.tail), (1 << 31) - 1))
    api = Api(args)
    try:
        for batch in api.call(api.containers.Logs, request):
            write_entries(batch.entries, timestamps=args.timestamps)
    except CliError as error:  # Docker's logs inspects the container first
        raise _no_such("container", args.container, error) from None
    return 0


def write_entries(entries: Any, *, timestamps: bool) -> None:
    """Log entries to stdout and stderr as their streams say, in their order: a run of one
    stream's lines is one write, and both are flushed after the batch."""
    run: list[str] = []
    current = None
    for entry in entries:
        target = sys.stdout if entry.stream == "stdout" else sys.stderr
        if target is not current and run:
            assert current is not None
            current.write("".join(run))
            current.flush()  # before the other stream's lines: the order holds
            run = []
        current = target
        # Docker's -t: the time with all nine digits of its fraction, then the line.
        run.append(f"{padded_rfc3339_nano(entry.time)} {entry.line}" if timestamps
                   else entry.line)
    if run and current is not None:
        current.write("".join(run))
        current.flush()


def _moment(flag: str, value: str) -> int:
    """``--since`` / ``--until`` as nanoseconds since the epoch (0: not given; Docker's
    daemon takes "0" as not given too)."""
    if not value or value == "0":
        return 0
    try:
        # Nanoseconds fit in 64 bits until 2262; a later time is as good as the last one.
        return max(1, min(parse_moment(value), (1 << 63) - 1))
    except (ValueError, OverflowError) as error:
        raise CliError(f'invalid value for "{flag}": {error}') from None


def _listing_filters(specs: list[str], keys: Sequence[str], verb: str
                     ) -> dict[str, list[str]]:
    """``-f KEY=VALUE`` flags by key, for a listing whose daemon knows ``keys``: a flag
    without ``=`` is the flag's error (status 125), an unknown key the daemon's."""
    filters: dict[str, list[str]] = {}
    for spec in specs:
        try:
            parsed = parse_filter_flag(spec)
        except FilterError as error:
            raise CliError(f"{error}\nSee 'berth {verb} --help'.", EXIT_REFUSED) from None
        if parsed is None:
            continue
        if parsed[0] not in keys:
            raise CliError(f"Error response from daemon: invalid filter '{parsed[0]}'")
        filters.setdefault(parsed[0], []).append(parsed[1])
    return filters


def _docker_event(event: Any) -> dict[str, Any]:
    """Docker's event message (``docker events --format '{{json .}}'``) of a journal row:
    the actor's attributes are the row's own (die: ``exitCode``; kill: ``signal``), the
    container's ``name`` and ``image``, berth's ``seq``, and ``step`` for a saga step's."""
    attributes = {**dict(event.attributes), "name": event.container_name, "seq": str(event.seq)}
    if event.image:
        attributes["image"] = event.image
    if event.step:
        attributes["step"] = event.step
    if event.error:
        attributes["error"] = event.error
    return {"status": event.event, "id": event.container_id, "Type": "container",
            "Action": event.event, "Actor": {"ID": event.container_id, "Attributes": attributes},
            "scope": "local", "time": event.at_ms // 1000, "timeNano": event.at_ms * 1_000_000}


def _event_line(event: Any) -> str:
    """Docker's line: the time, the type, the action, the ID, then the attributes sorted."""
    import datetime

    document = _docker_event(event)
    at = datetime.datetime.fromtimestamp(event.at_ms / 1000, datetime.UTC).astimezone()
    attributes = ", ".join(f"{key}={value}" for key, value in
                           sorted(document["Actor"]["Attributes"].items()))
    return (f"{at.strftime('%Y-%m-%dT%H:%M:%S')}.{event.at_ms % 1000:03d}000000"
            f"{at.strftime('%z')[:3]}:{at.strftime('%z')[3:]} container {event.event} "
            f"{event.container_id} ({attributes})")


_EVENT_FILTERS = ("container", "event", "image", "label", "type")


def cmd_events(args: argparse.Namespace) -> int:
    """Docker's ``events``: new events only, unless ``--since`` (a time) or ``--since-seq``
    (berth's: the journal's seq) replays; ``--until`` ends it."""
    from engine.api.v1 import system_pb2

    template = _template_of(args.format)
    filters = _listing_filters(args.filter, _EVENT_FILTERS, "events")
    containers = [*args.container, *filters.get("container", [])]
    events = [*args.event, *filters.get("event", [])]
    if "type" in filters and "container" not in filters["type"]:
        events = [""]  # only containers have events here: a quiet stream
    labels = filters.get("label", [])
    since_ns, until_ns = _moment("since", args.since), _moment("until", args.until)
    if since_ns and until_ns and since_ns > until_ns:
        raise CliError(f"Error response from daemon: `since` time ({args.since}) cannot be "
                       f"after `until` time ({args.until})")
    since_ms = since_ns // 1_000_000
    until_ms = max(1, until_ns // 1_000_000) if until_ns else 0
    # Docker's: either time replays what is stored (up to --until), then follows.
    replay = args.since_seq is not None or bool(args.since) or bool(args.until)
    request = system_pb2.EventsRequest(
        since_seq=args.since_seq or 0, containers=containers, events=events,
        images=filters.get("image", []),
        docker_only=not args.all, since_ms=since_ms, until_ms=until_ms, new_only=not replay)
    api = Api(args)
    try:
        for event in api.call(api.system.Events, request):
            # moby's events filter: over the event's attributes, the labels among them
            if labels and not match_kv_list(_docker_event(event)["Actor"]["Attributes"],
                                            labels):
                continue
            if args.format == "json":
                print(json_text(_docker_event(event)), flush=True)
            elif template is not None:
                print(_render(template, _docker_event(event)), flush=True)
            else:
                print(_event_line(event), flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    api = Api(args)
    events = api.call(api.containers.History,
                      messages().HistoryRequest(container=args.container)).events
    if args.format == "json":
        from google.protobuf.json_format import MessageToDict

        print_json([MessageToDict(event) for event in events])
        return 0
    table(((str(e.container_seq), iso(e.at_ms), e.event, e.from_state or "-", e.to_state,
             e.step or "-", e.outcome, e.actor, e.error) for e in events),
           ("SEQ", "AT", "EVENT", "FROM", "TO", "STEP", "OUTCOME", "ACTOR", "ERROR"))
    return 0


IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                 "Digest": "DIGEST", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                 "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}
_IMAGE_FILTERS = ("dangling", "reference", "before", "since", "label")


def cmd_images(args: argparse.Namespace) -> int:
    """Docker's ``images [REPOSITORY[:TAG]]``, newest first, with its filters and formats."""
    form = args.format.strip()
    template, is_table = _list_format(form, dict.fromkeys(IMAGE_HEADERS, ""))
    filters = _listing_filters(args.filter, _IMAGE_FILTERS, "images")
    if args.reference:
        filters.setdefault("reference", []).append(args.reference)
    if "dangling" in filters:
        filters["dangling"] = [str(_filter_boolean("dangling", filters["dangling"]))]
    api = Api(args)
    images = api.call(api.containers.Images, messages().ImagesRequest()).images
    for key in ("before", "since"):  # the creation time of the image each names, once
        filters[key] = [str(_created_ms(value, images)) for value in filters.get(key, [])]
    # Docker's order: the newest image first (a stable sort keeps an image's names together).
    images = [image for image in sorted(images, key=lambda image: -image.created_ms)
              if _image_matches(image, filters)]
    rows = [_image_fields(image, truncate=not args.no_trunc) for image in images]
    if args.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    if form == "json":  # Docker 23's: one object a line, its fields'
        _print_json_rows(rows)
        return 0
    if template is not None:
        _print_formatted(template, is_table, rows, IMAGE_HEADERS)
        return 0
    table(((row["Repository"], row["Tag"], row["ID"], row["CreatedSince"], row["Size"])
           for row in rows), ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"))
    return 0


def _image_fields(image: Any, *, truncate: bool) -> dict[str, str]:
    """What ``{{.Field}}`` reads in ``images --format`` (Docker's names)."""
    import datetime

    dangling = image.reference == image.digest
    repository, _, tag = (("<none>", "", "<none>") if dangling
                          else image.reference.rpartition(":"))
    created = datetime.datetime.fromtimestamp(image.created_ms / 1000, datetime.UTC)
    return {"Repository": repository, "Tag": tag,
            "ID": image.digest.removeprefix("sha256:")[:12] if truncate else image.digest,
            "Digest": "<none>", "CreatedSince": f"{ago(image.created_ms)} ago",
            "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
            "Size": human_size(image.size_bytes), "Containers": "N/A", "SharedSize": "N/A",
            "UniqueSize": "N/A", "VirtualSize": human_size(image.size_bytes)}


def _filter_boolean(key: str, values: list[str]) -> bool:
    """moby's boolean filter: true or false (1 or 0), any case; both is true (images: the
    dangling ones). Raises CliError ``Invalid filter 'KEY=[VALUES]'``."""
    wanted = {value.lower() for value in values}
    if not wanted <= {"true", "false", "1", "0"}:
        raise CliError(f"Error response from daemon: Invalid filter "
                       f"'{key}=[{' '.join(values)}]'")
    return bool(wanted & {"true", "1"})


def _path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: ``*`` and ``?`` never match a ``/``; ``[...]`` a class (``^``
    negates it, ``\\`` escapes, a reversed range matches nothing). Raises CliError for a
    pattern Go refuses (``syntax error in pattern``)."""
    bad = CliError("Error response from daemon: syntax error in pattern")
    out: list[str] = []
    index = 0

    def escaped(position: int) -> tuple[str, int]:
        """The character at ``position`` of a class (a ``\\`` escapes the next one), and
        the position after it; Go's getEsc refuses a ``-`` or ``]`` there, and the end."""
        if position >= len(pattern) or pattern[position] in "-]":
            raise bad
        if pattern[position] == "\\":
            position += 1
            if position >= len(pattern):
                raise bad
        return pattern[position], position + 1

    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if index + 1 >= len(pattern):
                raise bad  # a trailing backslash
            index += 1
            out.append(re.escape(pattern[index]))
        elif char == "[":
            index += 1
            negated = index < len(pattern) and pattern[index] == "^"
            index += negated
            ranges: list[tuple[str, str]] = []
            while True:
                if index < len(pattern) and pattern[index] == "]" and ranges:
                    break
                low, index = escaped(index)
                high = low
                if index < len(pattern) and pattern[index] == "-":
                    high, index = escaped(index + 1)
                ranges.append((low, high))
            items = "".join(f"{re.escape(low)}-{re.escape(high)}" for low, high in ranges
                            if low <= high)
            if not items:  # only reversed ranges: nothing is in the class
                out.append("[\\s\\S]" if negated else "[^\\s\\S]")
            else:
                out.append(f"[{'^' if negated else ''}{items}]")
        else:
            out.append(re.escape(char))
        index += 1
    return re.fullmatch("".join(out), name, re.DOTALL) is not None


def _created_ms(reference: str, images: Any) -> int:
    """When the image ``reference`` names (a name, a name without its tag, an ID or its
    prefix) was created. Raises CliError ``No such image``."""
    for image in images:
        if reference in (image.reference, image.digest) or (
                image.reference == f"{reference}:latest"
                or image.digest.removeprefix("sha256:").startswith(reference)):
            return int(image.created_ms)
    raise CliError(f"Error response from daemon: No such image: {reference}")


def _image_matches(image: Any, filters: Mapping[str, list[str]]) -> bool:
    """Docker's image filters: dangling (no name), reference (a glob over the familiar
    ``name:tag`` or the name), before/since a creation time (``_created_ms``), label
    (imported images have none)."""
    dangling = image.reference == image.digest
    for key, values in filters.items():
        if key == "dangling":
            if dangling is not (values == ["True"]):
                return False
        elif key == "reference":
            if dangling:
                return False
            # moby's FamiliarMatch: the whole name:tag, else the name alone.
            name = image.reference.rpartition(":")[0]
            if not any(_path_match(pattern, image.reference) or _path_match(pattern, name)
                       for pattern in values):
                return False
        elif key in ("before", "since"):  # values: the named images' creation times
            for created in map(int, values):
                if (key == "before" and image.created_ms >= created) or (
                        key == "since" and image.created_ms <= created):
                    return False
        elif key == "label":
            return False
    return True


def human_size(size: int) -> str:
    """go-units' HumanSizeWithPrecision(size, 3), as ``docker images`` prints a size:
    decimal units, three significant digits (``1.99MB``, ``315MB``, ``0B``)."""
    value = float(size)
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    index = 0
    while value >= 1000 and index < len(units) - 1:
        value /= 1000
        index += 1
    return f"{value:.3g}{units[index]}"


def cmd_import(args: argparse.Namespace) -> int:
    """The daemon reads the tarball or directory at the path given (on its host); ``-`` is the
    standard input, spooled to a temporary file for a daemon on this host."""
    if not args.source:
        raise CliError("import source: a tarball, a directory or - (standard input)")
    api = Api(args)
    if args.source != "-":
        return _import(api, os.path.abspath(args.source), args.reference)
    if not api.address.startswith("unix://"):
        raise CliError(f"importing standard input needs a daemon on this host, not "
                       f"{api.address}: give it a path on the daemon's host")
    import shutil
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="berth-import-", suffix=".tar") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        spool.flush()
        return _import(api, spool.name, args.reference)


def _import(api: Api, source: str, reference: str) -> int:
    image = api.call(api.containers.Import, messages().ImportRequest(source=source,
                                                                     reference=reference))
    print(image.digest)
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    api = Api(args)
    status = 0
    for reference in args.images:
        try:
            removal = api.call(api.containers.RemoveImage,
                               messages().RemoveImageRequest(reference=reference,
                                                             force=args.force))
            for name in removal.untagged:  # as Docker prints them
                print(f"Untagged: {name}")
            if removal.deleted:
                print(f"Deleted: {removal.deleted}")
        except CliError as error:
            print(_no_such("image", reference, error), file=sys.stderr)
            if not (args.force and error.not_found):  # Docker: -f only reports those
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
        print_json(MessageToDict(info, always_print_fields_with_no_presence=True))
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
        print_json({"Client": {"Version": VERSION},
                     "Server": {"Version": server.version, "ApiVersion": server.api_version,
                                "Python": server.python, "SQLite": server.sqlite}})
        return 0
    print(f"Client:\n Version: {VERSION}\nServer:\n Version: {server.version}\n"
          f" API version: {server.api_version}\n Python: {server.python}\n"
          f" SQLite: {server.sqlite}")
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    import signal

    # Before the daemon's modules load (a second or so): a SIGHUP now is a reload to do once
    # the daemon serves, and a SIGTERM a stop, never the default action's sudden death.
    early: list[int] = []
    for number in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda received, _frame: early.append(received))
    from engine.daemon import run_daemon

    return run_daemon(args, early)


def cmd_failpoints(_args: argparse.Namespace) -> int:
    from engine.steps import failpoint_names

    print("\n".join(failpoint_names()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    return run_demo(args.root)


_VOLUME_ACTIONS = {"ls": "ls", "list": "ls", "create": "create", "rm": "rm", "remove": "rm",
                   "inspect": "inspect", "prune": "prune"}


def cmd_volume(args: argparse.Namespace) -> int:
    """Docker's ``volume ls|create|rm|inspect|prune`` on the local driver's volumes."""
    action = _VOLUME_ACTIONS[args.action]
    api = Api(args)
    pb = messages()
    if action == "create":
        print(api.call(api.containers.CreateVolume, pb.CreateVolumeRequest(name=args.name)).name)
        return 0
    if action == "rm":
        status = 0
        for name in args.names:
            try:
                api.call(api.containers.RemoveVolume,
                         pb.RemoveVolumeRequest(name=name, force=args.force))
                print(name)
            except CliError as error:
                print(_no_such("volume", name, error), file=sys.stderr)
                status = 1
        return status
    if action == "prune":
        return _prune_volumes(api, everything=args.all, force=args.force)
    if action == "inspect":
        return _inspect_volumes(api, args.names, args.format)
    return _list_volumes(api, args)


def _volume_document(volume: Any) -> dict[str, Any]:
    """``docker volume inspect``'s object of one volume."""
    import datetime

    created = datetime.datetime.fromtimestamp(volume.created_ms / 1000, datetime.UTC)
    local = created.astimezone().isoformat(timespec="seconds")
    # Go's RFC 3339, as Docker formats it in the daemon's zone: "Z" for UTC, not "+00:00".
    return {"CreatedAt": local.removesuffix("+00:00") + "Z" if local.endswith("+00:00")
            else local,
            "Driver": "local",
            "Labels": {"com.docker.volume.anonymous": ""} if volume.anonymous else NilMap(),
            "Mountpoint": volume.mountpoint, "Name": volume.name, "Options": NilMap(),
            "Scope": "local"}


def _inspect_volumes(api: Api, names: list[str], form: str) -> int:
    def document_of(name: str) -> dict[str, Any]:
        [volume] = api.call(api.containers.Volumes, messages().VolumesRequest(names=[name])
                            ).volumes
        return _volume_document(volume)

    return _inspected(names, form, "volume", document_of)


def _template_of(form: str) -> Template | None:
    """An inspect-like ``--format``: a Go template (one that does not parse exits 64), or
    None for none or ``json``."""
    if not form or form == "json":
        return None
    try:
        return parse_template(form)
    except TemplateError as error:
        raise CliError(f"Template parsing error: {error}", status=64) from None


_VOLUME_FILTERS = ("dangling", "driver", "label", "name")
VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                  "Mountpoint": "MOUNTPOINT", "Links": "LINKS", "Labels": "LABELS",
                  "Size": "SIZE"}


def _list_volumes(api: Api, args: argparse.Namespace) -> int:
    """``volume ls`` with Docker's filters (dangling: used by no container; name: a part of
    it; driver; label: only the anonymous volumes' one) and ``--format``."""
    filters = _listing_filters(args.filter, _VOLUME_FILTERS, "volume ls")
    if "dangling" in filters:
        _filter_boolean("dangling", filters["dangling"])  # refused before anything is asked
    volumes = [volume for volume in api.call(api.containers.Volumes,
                                             messages().VolumesRequest()).volumes
               if _volume_matches(volume, filters)]
    template, is_table = _list_format(args.format.strip(), WithMethods(
        dict.fromkeys(VOLUME_HEADERS, ""), {"Label": label_method({})}))
    if args.quiet:
        for volume in volumes:
            print(volume.name)
        return 0
    rows = [WithMethods({"Name": volume.name, "Driver": "local", "Scope": "local",
                         "Mountpoint": volume.mountpoint, "Links": str(len(volume.users)),
                         "Labels": "com.docker.volume.anonymous=" if volume.anonymous else "",
                         "Size": "N/A"},
                        {"Label": label_method({"com.docker.volume.anonymous": ""}
                                               if volume.anonymous else {})})
            for volume in volumes]
    if args.format.strip() == "json":
        _print_json_rows(rows)
        return 0
    if template is not None:
        _print_formatted(template, is_table, rows, VOLUME_HEADERS)
        return 0
    table(((row["Driver"], row["Name"]) for row in rows), ("DRIVER", "VOLUME NAME"))
    return 0


def _searched(patterns: list[str], text: str) -> bool:
    """moby's filters.Args.Match: a pattern is a regular expression searched in ``text``
    (one that does not compile matches nothing)."""
    for pattern in patterns:
        try:
            if re.search(pattern, text):
                return True
        except re.error:
            continue
    return False


def _volume_matches(volume: Any, filters: dict[str, list[str]]) -> bool:
    """moby's volume filters: dangling (a boolean), name (a regular expression searched in
    it), driver (its name), label."""
    labels = {"com.docker.volume.anonymous": ""} if volume.anonymous else {}
    for key, values in filters.items():
        if key == "dangling":
            if (not volume.users) is not _filter_boolean(key, values):
                return False
        elif ((key == "name" and not _searched(values, volume.name))
              or (key == "driver" and "local" not in values)
              or (key == "label" and not match_kv_list(labels, values))):
            return False
    return True


def _prune_volumes(api: Api, *, everything: bool, force: bool) -> int:
    """Docker 23's prune: the unused anonymous volumes, every unused one with -a."""
    which = "all local volumes" if everything else "anonymous local volumes"
    if not force:
        print(f"WARNING! This will remove {which} not used by at least one container.\n"
              "Are you sure you want to continue? [y/N] ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    reply = api.call(api.containers.PruneVolumes, messages().PruneVolumesRequest(all=everything))
    removed, reclaimed = list(reply.removed), reply.reclaimed_bytes
    if removed:
        print("Deleted Volumes:\n" + "".join(f"{name}\n" for name in removed))
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
