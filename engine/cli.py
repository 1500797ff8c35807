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
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, cast

from engine.cli_api import EXIT_REFUSED, CliError, valid_text
from engine.cli_commands import (
    cmd_create,
    cmd_daemon,
    cmd_demo,
    cmd_events,
    cmd_failpoints,
    cmd_history,
    cmd_images,
    cmd_import,
    cmd_info,
    cmd_inspect,
    cmd_kill,
    cmd_logs,
    cmd_pause,
    cmd_ps,
    cmd_reload,
    cmd_restart,
    cmd_rm,
    cmd_rmi,
    cmd_run,
    cmd_start,
    cmd_stop,
    cmd_unpause,
    cmd_version,
    cmd_volume,
    cmd_wait,
)


class _DeferredHelp(argparse.Action):
    """``--help`` as cobra reads it: the flags are parsed first, so an unknown one is still
    refused (argparse printed the help at once); the help comes once parsing is done."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if isinstance(parser, Parser):
            parser.help_wanted = True
        namespace.help_of = parser


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # Docker's flags have no abbreviations
        add_help = kwargs.pop("add_help", True)
        kwargs["add_help"] = False  # its own --help: deferred (see _DeferredHelp)
        super().__init__(*args, **kwargs)
        self.register("action", "help", _DeferredHelp)
        if add_help:
            self.add_argument("-h", "--help", action="help",
                              help="show this help message and exit")
        # A command of a command's (volume ls): the name it was called by, and its parent's.
        self.invoked_as = ""
        self.parent: argparse.ArgumentParser | None = None
        self.help_wanted = False

    def error(self, message: str) -> NoReturn:
        """Docker's CLI errors, in pflag's and cobra's order: a flag it does not know or one
        without its value first (status 125), then an argument too many or missing (status 1,
        with the command's usage), an unknown command (status 1); anything else as argparse
        words it (status 125)."""
        command = self._command()
        flag_error = _flag_error(self if command is None else command, message)
        parent = command.parent if command is not None else None
        if flag_error is None and isinstance(parent, Parser):
            # a flag between the command and its own (volume -q ls): the parent's to refuse
            flag_error = _unknown_flag(parent)
            if flag_error is not None:
                command = parent
        if flag_error is not None:
            where = "berth" if command is None else command.prog
            print(f"{flag_error}\nSee '{where} --help'.", file=sys.stderr)
            raise SystemExit(EXIT_REFUSED)
        parsed = re.fullmatch(r'argument (\S+): (strconv\.\w+: parsing "(.*)": .*)', message,
                              re.DOTALL)
        if parsed:  # pflag's words for a value its flag cannot parse
            flags = ", ".join(parsed.group(1).split("/"))
            where = "berth" if command is None else command.prog
            print(f'invalid argument "{parsed.group(3)}" for "{flags}" flag: '
                  f"{parsed.group(2)}\nSee '{where} --help'.", file=sys.stderr)
            raise SystemExit(EXIT_REFUSED)
        helped = next((parser for parser in (command, self)
                       if isinstance(parser, Parser) and parser.help_wanted), None)
        if helped is not None:  # asked for: the help, whatever argument is missing or extra
            helped.print_help()
            raise SystemExit(0)
        if command is not None and message.startswith(("unrecognized arguments: ",
                                                        "the following arguments are required")):
            command.arity_error()
        unknown = re.match(r"argument COMMAND: invalid choice: '(.*?)'", message)
        if unknown and self.prog != "berth":  # a command's own commands (volume)
            print(f"{self.prog}: unknown command \"{unknown.group(1)}\"\n"
                  f"See '{self.prog} --help'.", file=sys.stderr)
            raise SystemExit(1)
        if unknown:
            print(f"berth: '{unknown.group(1)}' is not a berth command.\n"
                  "See 'berth --help'", file=sys.stderr)
            raise SystemExit(1)
        print(f"berth: {message}\nSee 'berth --help'.", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)

    def _command(self) -> Parser | None:
        """This parser if it is a command's, else the one command parsed (build_parser makes
        only the named command's parser when the command is known)."""
        if self.prog != "berth":
            return self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and len(action.choices) == 1:
                return cast(Parser, next(iter(action.choices.values())))._own_command()
        return None

    def _own_command(self) -> Parser:
        """The command of this command's own commands (volume ls) the words name, else this
        one."""
        verb = self.prog.split(" ")[-1]
        if verb not in _ARGUMENTS:
            return self
        found = _subcommand(self, _ARGUMENTS[_ARGUMENTS.index(verb) + 1:])
        return self if found is None else found[0]


    def arity_error(self) -> NoReturn:
        """cobra's argument checks as the Docker CLI words them."""
        least, most, words = 0, 0.0, []
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):  # volume, without its command
                print(f'"{self.prog}" requires a command: {", ".join(action.choices)}.\n'
                      f"See '{self.prog} --help'.", file=sys.stderr)
                raise SystemExit(1)
            if action.option_strings:
                continue
            name = str(action.metavar or action.dest).upper()
            single = name[:-1] if name.endswith("S") else name
            if action.nargs is None:
                least, most = least + 1, most + 1
                words.append(name)
            elif action.nargs == "?":
                most += 1
                words.append(f"[{name}]")
            elif action.nargs == "+":
                least, most = least + 1, math.inf
                words.append(f"{single} [{single}...]")
            else:  # "*", REMAINDER
                most = math.inf
                words.append(f"[{name}...]")
        noun = "argument" if least == 1 else "arguments"
        if most == 0:
            rule = "accepts no arguments"
        elif least == most:
            rule = f"requires exactly {least} {noun}"
        elif most == math.inf:
            rule = f"requires at least {least} {noun}"
        else:
            rule = f"requires at least {least} and at most {int(most)} arguments"
        usage = " ".join([self.prog, "[OPTIONS]", *words])
        text = self.description or ""
        print(f'"{self.prog}" {rule}.\nSee \'{self.prog} --help\'.\n\nUsage:  {usage}\n\n'
              f"{text[:1].upper()}{text[1:]}", file=sys.stderr)
        raise SystemExit(1)


def _subcommand(parser: argparse.ArgumentParser, words: Sequence[str]
                ) -> tuple[Parser, int] | None:
    """For a command with commands of its own (volume): the one the first word that is no
    flag names (an alias too), and that word's index in ``words``; None if there is none.
    The parser found remembers the command's parser and the name it was called by."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for index, word in enumerate(words):
            if word.startswith("-"):
                continue
            if word not in action.choices:
                return None
            found = cast(Parser, action.choices[word])
            found.invoked_as, found.parent = word, parser
            return found, index
    return None


_ARGUMENTS: list[str] = []  # what main parses: the flag checks read the words themselves


def _flag_error(parser: Parser, message: str) -> str | None:
    """pflag's error for the first word after the command that is a flag the command does
    not know (``unknown flag: --x``, ``unknown shorthand flag: 'x' in -x``), else for one
    whose value is missing (``flag needs an argument``); None if there is none. argparse
    reports a missing argument before an unknown flag; pflag reads the flags first."""
    unknown = _unknown_flag(parser)
    if unknown is not None:
        return unknown
    missing = re.match(r"argument (\S+): expected one argument", message)
    if missing:
        spellings = missing.group(1).split("/")
        short = next((spelling for spelling in spellings if not spelling.startswith("--")), "")
        used = next((word for word in reversed(_ARGUMENTS) if word in spellings or (
            short and word.startswith("-") and not word.startswith("--")
            and word.endswith(short[1:]))), spellings[-1])
        return (f"flag needs an argument: {used}" if used.startswith("--") else
                f"flag needs an argument: '{short[1:]}' in {short}")
    return None


def _unknown_flag(parser: Parser) -> str | None:
    """pflag's error for the first flag after the command that the command does not know."""
    if parser.prog == "berth":  # no command parsed: its own flags come before the command
        words = _ARGUMENTS
    elif isinstance(parser, Parser) and parser.parent is not None:  # volume ls: after ls
        top = parser.parent.prog.split(" ")[-1]
        after = _ARGUMENTS[_ARGUMENTS.index(top) + 1:] if top in _ARGUMENTS else []
        found = _subcommand(parser.parent, after)
        words = after[found[1] + 1:] if found is not None else []
    else:
        verb = parser.prog.split(" ")[-1]
        words = _ARGUMENTS[_ARGUMENTS.index(verb) + 1:] if verb in _ARGUMENTS else []
        found = _subcommand(parser, words)
        if found is not None:  # volume -q ls: only the words before ls are volume's
            words = words[:found[1]]
    known = parser._option_string_actions
    taking = {flag for flag, action in known.items() if action.nargs != 0}
    remainder = any(action.nargs == argparse.REMAINDER for action in parser._actions)
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "--":
            return None
        if not word.startswith("-") or word == "-":
            if remainder:  # run, create: what follows the image is the command's
                return None
            continue
        if parser.prog == "berth" and word in COMMANDS:
            return None
        flag = word.split("=", 1)[0]
        if flag.startswith("--"):
            if flag not in known:
                return f"unknown flag: {flag}"
            skip = flag in taking and "=" not in word
            continue
        for index, letter in enumerate(flag[1:], start=1):  # -abc: -a -b -c, or -a's value
            if f"-{letter}" not in known:  # pflag names what is left of the group
                return f"unknown shorthand flag: '{letter}' in -{word[index:]}"
            if f"-{letter}" in taking:
                skip = index == len(flag) - 1 and "=" not in word
                break
    return None


# -- the parser ------------------------------------------------------------------------------


def _container_flags(parser: argparse.ArgumentParser) -> None:
    # Docker's -h is the hostname here: help is --help alone (see build_parser).
    parser.add_argument("--help", action="help", help="show this help message and exit")
    parser.add_argument("--name")
    parser.add_argument("-h", "--hostname")
    parser.add_argument("-e", "--env", action="append", default=[])
    parser.add_argument("--env-file", action="append", default=[],
                        help="read environment variables from a file")
    parser.add_argument("-l", "--label", action="append", default=[], help="KEY[=VALUE]")
    parser.add_argument("--label-file", action="append", default=[],
                        help="read labels from a file")
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
    sub.add_argument("--sig-proxy", action="store_true", default=True,
                     help="send the signals this command gets to the container (default "
                     "true; --sig-proxy=false)")
    sub.add_argument(_NEGATED + "sig-proxy", dest="sig_proxy", action="store_false",
                     help=argparse.SUPPRESS)
    _container_flags(sub)


def _integer(bits: int, *, clamp_to: int = 0) -> Callable[[str], int]:
    """An argparse type: Go's ``strconv.ParseInt(text, 0, bits)`` (pflag's int flags), else
    pflag's parse error (status 125); ``clamp_to`` bits: a value beyond the API field's range
    is its bound (``stop -t 99999999999999`` waits as long as Docker's would: for good)."""
    def parse(text: str) -> int:
        try:
            if not text.isascii() or text.strip() != text:  # Python's int takes both
                raise ValueError(text)
            # Go's base 0: 0x, 0o, 0b, underscores; a leading 0 alone is octal.
            value = int(text, 8) if re.fullmatch(r"[+-]?0[0-7_]+", text) else int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise argparse.ArgumentTypeError(
                f'strconv.ParseInt: parsing "{text}": value out of range')
        if clamp_to:
            value = max(-(1 << (clamp_to - 1)), min(value, (1 << (clamp_to - 1)) - 1))
        return value
    return parse


def _stop_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-s", "--signal", default="", help="the signal to stop with (default: "
                     "the container's stop signal)")
    sub.add_argument("-t", "--time", type=_integer(64, clamp_to=32),
                     help="seconds to wait before SIGKILL")
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
    sub.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    sub.add_argument("--format", default="table",
                     help="table (default), json, 'table TEMPLATE' or a Go TEMPLATE")
    sub.add_argument("-f", "--filter", action="append", default=[],
                     help="filter output based on conditions provided (KEY=VALUE)")
    sub.add_argument("-n", "--last", type=_integer(64), default=-1,
                     help="show n last created containers (includes all states)")
    sub.add_argument("-l", "--latest", action="store_true",
                     help="show the latest created container (includes all states)")
    sub.add_argument("--no-trunc", action="store_true", help="don't truncate output")


def _inspect_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", "--format", default="", help="format each object with a Go "
                                                          "template ('{{.State.ExitCode}}')")
    sub.add_argument("--type", default="",
                     help="container, image or volume (default: the first that has the name)")
    _containers(sub)


def _logs_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", "--follow", action="store_true")
    sub.add_argument("-n", "--tail", default="all",
                     help='number of lines to show from the end of the logs (default "all")')
    sub.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    sub.add_argument("--since", default="", help="show logs since a timestamp "
                     "(2013-01-02T13:23:37Z) or relative (42m for 42 minutes)")
    sub.add_argument("--until", default="", help="show logs before a timestamp "
                     "(2013-01-02T13:23:37Z) or relative (42m for 42 minutes)")
    sub.add_argument("container")


def _events_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--since", default="", help="replay from this time (Docker's: 10m, "
                     "2006-01-02T15:04:05, a Unix time); without it, only new events")
    sub.add_argument("--until", default="", help="end at this time")
    sub.add_argument("--since-seq", type=_integer(64), default=None, metavar="SEQ",
                     help="replay every event after this global seq (the journal's)")
    sub.add_argument("-f", "--filter", action="append", default=[],
                     help="container=ID|NAME, event=NAME, type=container")
    sub.add_argument("--container", action="append", default=[])
    sub.add_argument("--event", action="append", default=[])
    sub.add_argument("--all", action="store_true", help="saga steps too")
    sub.add_argument("--format", default="", help="json, or a Go template")


def _history_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("container")
    _format_flag(sub)


def _import_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("source")
    sub.add_argument("reference", nargs="?", default="")  # none: an untagged image


def _images_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-q", "--quiet", action="store_true", help="only display image IDs")
    sub.add_argument("-a", "--all", action="store_true",
                     help="intermediate images too (imported images have none)")
    sub.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    sub.add_argument("-f", "--filter", action="append", default=[],
                     help="dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE")
    sub.add_argument("--format", default="", help="table, json, or a Go template")
    sub.add_argument("reference", nargs="?", default="", metavar="REPOSITORY[:TAG]")


def _rmi_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", "--force", action="store_true")
    sub.add_argument("images", nargs="+")


def _volume_flags(sub: argparse.ArgumentParser) -> None:
    """Docker's ``volume`` commands, each with its own flags (``-f`` is ``--filter`` for ls,
    ``--format`` for inspect, ``--force`` for rm and prune)."""
    actions = sub.add_subparsers(dest="action", metavar="COMMAND", parser_class=Parser)
    actions.required = True
    listing = actions.add_parser("ls", aliases=["list"], description="list volumes")
    listing.add_argument("-q", "--quiet", action="store_true", help="only display names")
    listing.add_argument("-f", "--filter", action="append", default=[],
                         help="dangling=true|false, name=TEXT, driver=local, label=KEY")
    listing.add_argument("--format", default="", help="a Go template, or json")
    create = actions.add_parser("create", description="create a volume")
    create.add_argument("name", nargs="?", default="")
    inspect = actions.add_parser("inspect", description="show volumes as JSON")
    inspect.add_argument("-f", "--format", default="", help="a Go template, or json")
    inspect.add_argument("names", nargs="+", metavar="VOLUMES")
    remove = actions.add_parser("rm", aliases=["remove"], description="remove volumes")
    remove.add_argument("-f", "--force", action="store_true",
                        help="a volume that is not there is no error")
    remove.add_argument("names", nargs="+", metavar="VOLUMES")
    prune = actions.add_parser("prune", description="remove unused anonymous volumes")
    prune.add_argument("-a", "--all", action="store_true", help="named volumes too")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask")


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
    "inspect": (cmd_inspect, "show containers, images or volumes as JSON", _inspect_flags),
    "logs": (cmd_logs, "show a container's output", _logs_flags),
    "events": (cmd_events, "stream events (replayed from --since)", _events_flags),
    "history": (cmd_history, "show a container's journaled history", _history_flags),
    "images": (cmd_images, "list images", _images_flags),
    "import": (cmd_import, "import a rootfs tarball or directory as an image", _import_flags),
    "rmi": (cmd_rmi, "remove images", _rmi_flags),
    "volume": (cmd_volume, "manage volumes: ls, create, inspect, rm, prune", _volume_flags),
    "reload": (cmd_reload, "reload the daemon's configuration", _no_flags),
    "info": (cmd_info, "show system information", _format_flag),
    "version": (cmd_version, "show versions", _format_flag),
    "daemon": (cmd_daemon, "run the daemon in the foreground", _daemon_flags),
    "failpoints": (cmd_failpoints, "list every failpoint name", _no_flags),
    "demo": (cmd_demo, "journal demonstration on the in-process fake runtime", _demo_flags),
}
_VALUE_FLAGS = ("-H", "--host", "--tls-ca", "--tls-cert", "--tls-key")
_HOSTNAME_VERBS = frozenset({"create", "run"})  # their -h is --hostname, as Docker's


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
            sub = commands.add_parser(name, help=text, description=text,
                                      add_help=name not in _HOSTNAME_VERBS)
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


def _help_of_verb(argv: list[str]) -> list[str]:
    """cobra's ``docker --help ps``: a ``--help`` among the global flags, before a command,
    is that command's (``berth ps --help``; ``berth --help volume ls``, the subcommand's)."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in _VALUE_FLAGS else 1
    globals_ = argv[:index]
    if index >= len(argv) or "--help" not in globals_ or argv[index] not in COMMANDS:
        return argv
    rest = [word for word in globals_ if word != "--help"]
    after = index + 1
    if argv[index] in _GROUPS and after < len(argv) and not argv[after].startswith("-"):
        after += 1  # the group's command: its own help
    return [*rest, *argv[index:after], "--help", *argv[after:]]


_GROUPS = frozenset({"volume"})  # commands of commands


_KEPT_DASHES = "\0--"  # no argument can hold a NUL: a "--" argparse would drop (3.11 does)
# The argparse spelling of ``--FLAG=false`` for a flag on by default: no one can type it.
_NEGATED = "--\0no-"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _as_pflag_reads(arguments: list[str]) -> list[str]:
    """The words as argparse must see them to read them as pflag reads them: each value-taking
    flag as ``--long=VALUE`` whatever its value starts with (``-e -x``, ``-de A=1``,
    ``--since -5m``), a boolean flag's value applied, the last one winning (``--rm=false``),
    the command's flags before its arguments (``stop a -t 0 b``); for run and create, what
    follows the image is the container's command, as it is (a ``--`` right after the image
    too). Words it cannot place are left for argparse to refuse. Raises CliError for a
    boolean value Go's ParseBool refuses."""
    verb = verb_of(arguments)
    if verb is None or verb == "daemon":
        return arguments
    parser = build_parser(verb)._command()
    assert parser is not None
    start = arguments.index(verb) + 1
    if any(isinstance(action, argparse._SubParsersAction) for action in parser._actions):
        found = _subcommand(parser, arguments[start:])  # volume: its command's flags
        if found is None or found[1] > 0:  # none, or flags before it: argparse refuses
            return arguments
        parser, start = found[0], start + 1
    known = parser._option_string_actions
    words = arguments[start:]
    ends = any(action.nargs == argparse.REMAINDER for action in parser._actions)
    flags: list[str] = []
    switches: dict[str, bool] = {}  # a boolean flag's long name -> its last value
    positionals: list[str] = []
    index = 0

    def value_of(action: argparse.Action, value: str) -> None:
        name = next(flag for flag in action.option_strings if flag.startswith("--"))
        flags.append(f"{name}={_KEPT_DASHES if value == '--' else value}")

    def switch(action: argparse.Action, flag: str, value: str | None) -> None:
        # Every boolean flag has a long name (and at most one shorthand), as pflag's do.
        long = next(name for name in action.option_strings if name.startswith("--"))
        if value is not None and value not in (*_TRUE, *_FALSE):
            short = next((name for name in action.option_strings if name != long), None)
            named = f"{short}, {long}" if short else long
            raise CliError(f'invalid argument "{value}" for "{named}" flag: '
                           f'strconv.ParseBool: parsing "{value}": invalid syntax\n'
                           f"See '{parser.prog} --help'.", EXIT_REFUSED)
        switches[long] = value is None or value in _TRUE

    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            positionals.extend(words[index:])
            break
        if not word.startswith("-") or word == "-":
            if ends:  # the image: the rest is the container's command
                rest = words[index:]
                if rest[:1] == ["--"]:
                    rest = [_KEPT_DASHES, *rest[1:]]  # argparse would drop it; pflag does not
                positionals.extend([word, *rest])
                break
            positionals.append(word)
            continue
        if word.startswith("--"):
            flag, equals, value = word.partition("=")
            action = known.get(flag)
            if action is None or action.dest == "help":
                flags.append(word)  # unknown (argparse refuses it), or the help
            elif action.nargs == 0:
                switch(action, flag, value if equals else None)
            elif equals:
                value_of(action, value)
            elif index < len(words):
                value_of(action, words[index])
                index += 1
            else:
                flags.append(word)  # its value is missing: argparse says so
            continue
        letters = word[1:]  # a group of shorthands: -dt, -de A=1, -n5, -n=5
        for position, letter in enumerate(letters):
            action = known.get(f"-{letter}")
            if action is None or action.dest == "help":
                flags.append(f"-{letters[position:]}")  # refused (or help) with what is left
                break
            attached = letters[position + 1:]
            if action.nargs == 0:
                if attached.startswith("="):  # -d=false
                    switch(action, f"-{letter}", attached[1:])
                    break
                switch(action, f"-{letter}", None)
                continue
            if attached:  # -n5, -n=5
                value_of(action, attached.removeprefix("="))
            elif index < len(words):
                value_of(action, words[index])
                index += 1
            else:
                flags.append(f"-{letter}")  # its value is missing: argparse says so
            break
    for name, on in switches.items():
        if on:
            flags.append(name)
        elif known[name].default is True:  # a flag on by default: its negation
            flags.append(_NEGATED + name[2:])
    if not ends and any(word.startswith("-") for word in positionals):
        positionals = ["--", *positionals]  # an argument that looks like a flag, after --
    elif ends and positionals and positionals[0].startswith("-"):
        positionals = ["--", *positionals]
    return [*arguments[:start], *flags, *positionals]


# The values of these name files this process opens: their bytes are kept as they are.
_LOCAL_PATHS = frozenset({"env_file", "label_file", "tls_ca", "tls_cert", "tls_key", "host",
                          "root"})


def _for_the_daemon(args: argparse.Namespace) -> None:
    """U+FFFD for bytes that are no UTF-8 in what goes to the daemon, as the Docker CLI's JSON
    sends them; the paths of local files, and every argument of ``daemon``, keep theirs."""
    if args.verb == "daemon":
        return
    for name, value in vars(args).items():
        if isinstance(value, str):
            value = "--" if value == _KEPT_DASHES else value
            setattr(args, name, value if name in _LOCAL_PATHS else valid_text(value))
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            value = ["--" if item == _KEPT_DASHES else item for item in value]
            setattr(args, name, value if name in _LOCAL_PATHS else
                    [valid_text(item) for item in value])


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if not arguments:  # Docker's: the help (on stderr), and success
        build_parser().print_help(sys.stderr)
        return 0
    arguments = _help_of_verb(arguments)
    try:
        arguments = _as_pflag_reads(arguments)
    except CliError as error:
        print(error, file=sys.stderr)
        return error.status
    _ARGUMENTS[:] = arguments
    args = build_parser(verb_of(arguments)).parse_args(arguments)
    helped = getattr(args, "help_of", None)
    if helped is not None:
        helped.print_help()
        return 0
    _for_the_daemon(args)
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
        # Docker's Go CLI dies of SIGPIPE when its reader goes (`berth run img yes | head`):
        # its status, 128 + 13. Stdout goes to /dev/null first, so the last flush is quiet.
        import contextlib
        import os
        import signal

        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        return 128 + signal.SIGPIPE
    except Exception as error:  # the one place that turns any error into one line
        print(f"Error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
