"""The CLI's client side against a real daemon process (fake backend): client commands never
import grpc (nor the engine), errors in a stream are one line, the TLS flags reach a mutual-TLS
daemon, and only the named command's parser is built."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.cli import COMMANDS, build_parser, verb_of
from engine.cli_api import CliError
from engine.cli_commands import _signal
from tests.api.pki import authority, leaf
from tests.cli.conftest import BERTH, Cli, start_daemon, stop_daemon

# Runs one CLI command in a fresh interpreter, then names the modules it should not have loaded.
PROBE = """
import sys
from engine.cli import main
status = main(sys.argv[1:])
loaded = sorted(name for name in sys.modules
                if name.split(".")[0] in ("grpc", "grpc_health", "grpc_reflection", "sqlalchemy",
                                          "alembic", "transitions")
                or name in ("engine.service", "engine.api.server", "engine.api.v1.system_pb2_grpc",
                            "engine.api.v1.containers_pb2_grpc"))
print("LOADED", ",".join(loaded), file=sys.stderr)
raise SystemExit(status)
"""


@pytest.fixture(scope="module")
def daemon_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    root = tmp_path_factory.mktemp("client") / "root"
    daemon = start_daemon(root, backend="fake")
    try:
        yield root
    finally:
        stop_daemon(daemon)


def probe(root: pathlib.Path, *arguments: str) -> tuple[int, str, str]:
    environment = {**os.environ, "BERTH_ROOT": str(root)}
    environment.pop("BERTH_HOST", None)
    result = subprocess.run([sys.executable, "-c", PROBE, *arguments], env=environment,
                            capture_output=True, text=True, timeout=60, check=False)
    loaded = [line for line in result.stderr.splitlines() if line.startswith("LOADED")]
    assert len(loaded) == 1, result.stderr
    return result.returncode, result.stdout, loaded[0].removeprefix("LOADED").strip()


@pytest.mark.parametrize(("arguments", "status"), [
    (("version",), 0), (("version", "--format", "json"), 0), (("ps", "-a"), 0),
    (("ps", "--format", "json"), 0), (("info",), 0), (("images",), 0),
    (("inspect", "ghost"), 1), (("logs", "ghost"), 1), (("history", "ghost"), 1),
    (("create", "busybox", "true"), 0), (("rm", "-f", "ghost"), 0), (("rm", "ghost"), 1),
    (("-H", "unix:///nonexistent/berth.sock", "version"), 1),
])
def test_client_commands_load_neither_grpc_nor_the_engine(daemon_root: pathlib.Path,
                                                          arguments: tuple[str, ...],
                                                          status: int) -> None:
    returncode, _, loaded = probe(daemon_root, *arguments)
    assert returncode == status
    assert loaded == ""


def test_berth_version_imports_no_grpc_module(daemon_root: pathlib.Path) -> None:
    """The real console script, timed import by import (``-X importtime``)."""
    environment = {**os.environ, "BERTH_ROOT": str(daemon_root)}
    result = subprocess.run([sys.executable, "-X", "importtime", BERTH, "version"],
                            env=environment, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "Server:\n Version: " in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "engine.api.channel" in imported and "engine.api.v1.system_pb2" in imported
    assert [name for name in imported if name == "grpc" or name.startswith("grpc")] == []


def test_an_error_in_a_stream_is_one_line(daemon_root: pathlib.Path) -> None:
    result = Cli(daemon_root)("logs", "ghost")
    assert result.returncode == 1
    assert result.stderr == "Error: No such container: ghost\n"


def test_the_tls_flags_reach_a_mutual_tls_daemon(tmp_path: pathlib.Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    authority(pki, "ca")
    leaf(pki, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    leaf(pki, "client", "ca", "extendedKeyUsage=clientAuth\n")
    root = tmp_path / "root"
    daemon = start_daemon(root, "--listen", f"unix://{root}/berth.sock",
                          "--listen", "tcp://127.0.0.1:0", "--tls-cert", str(pki / "server.pem"),
                          "--tls-key", str(pki / "server.key"), "--tls-ca", str(pki / "ca.pem"),
                          backend="fake")
    try:
        assert daemon.stdout is not None
        line = daemon.stdout.readline()
        while "listening on" not in line:
            line = daemon.stdout.readline()
        address = next(word.rstrip(",") for word in line.split() if word.startswith("tcp://"))
        cli = Cli(root)
        served = cli("-H", address, "--tls-ca", str(pki / "ca.pem"), "--tls-cert",
                     str(pki / "client.pem"), "--tls-key", str(pki / "client.key"), "version")
        assert served.returncode == 0, served.stderr
        assert "Server:\n Version: " in served.stdout
        refused = cli("-H", address, "--tls-ca", str(pki / "ca.pem"), "version")
        assert refused.returncode == 1
        # The daemon runs: no "is it running?" hint, but Docker's line with the TLS reason.
        assert refused.stderr.startswith("error during connect: "), refused.stderr
        assert refused.stderr.count("\n") == 1 and "Is the daemon running" not in refused.stderr
    finally:
        stop_daemon(daemon)


@pytest.mark.parametrize(("argv", "verb"), [
    (["version"], "version"),
    (["-H", "unix:///x.sock", "ps", "-a"], "ps"),
    (["--host=unix:///x.sock", "--tls-ca", "ca.pem", "logs", "-f", "web"], "logs"),
    (["-Hunix:///x.sock", "info"], "info"),
    (["-H", "version", "ps"], "ps"),  # "version" is -H's value
    (["--ho", "x", "ps"], None),  # an abbreviation: the full parser decides
    (["--help"], None),
    (["frobnicate"], None),
    ([], None),
])
def test_the_verb_is_found_only_when_nothing_is_in_doubt(argv: list[str],
                                                         verb: str | None) -> None:
    assert verb_of(argv) == verb


def test_each_command_parses_alone_as_in_the_full_parser() -> None:
    samples = {
        "create": ["create", "busybox", "true"],
        "run": ["run", "-d", "--rm", "--name", "n", "-e", "A=1", "-v", "d:/d", "busybox", "sh",
                "-c", "exit 3"],
        "stop": ["stop", "-t", "3", "a", "b"], "restart": ["restart", "a"],
        "kill": ["kill", "-s", "TERM", "a"], "rm": ["rm", "-f", "-v", "a"],
        "events": ["events", "--since", "7", "--all"], "logs": ["logs", "-f", "web"],
        "history": ["history", "web", "--format", "json"],
        "import": ["import", "rootfs.tar", "busybox"], "rmi": ["rmi", "busybox"],
        "volume": ["volume", "rm", "--force", "a", "b"],
        "daemon": ["daemon", "--backend", "fake", "--listen", "tcp://127.0.0.1:0"],
    }
    for verb in COMMANDS:
        argv = ["-H", "unix:///x.sock", *samples.get(verb, [verb])]
        if verb in ("start", "pause", "unpause", "wait", "inspect"):
            argv.append("web")
        alone = build_parser(verb_of(argv)).parse_args(argv)
        assert vars(alone) == vars(build_parser().parse_args(argv)), verb
    single = build_parser("version")
    assert single.parse_args(["version"]).verb == "version"
    with pytest.raises(SystemExit):
        single.parse_args(["ps"])  # only version's parser was built


def test_help_still_lists_every_command() -> None:
    result = subprocess.run([BERTH, "--help"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0
    for verb in COMMANDS:
        assert verb in result.stdout


def test_no_daemon_gets_the_one_line_hint(tmp_path: pathlib.Path) -> None:
    address = f"unix://{tmp_path}/berth.sock"
    result = Cli(tmp_path)("-H", address, "version")
    assert result.returncode == 1
    assert result.stderr == (f"Cannot connect to the berth daemon at {address}. "
                             "Is the daemon running?\n")


# Runs the CLI in a child that becomes ``nobody`` after importing all that `version` loads:
# neither the interpreter (under /root) nor a checkout in a private directory is readable
# by nobody.
AS_NOBODY = """
import os, pwd, sys
import _socket, errno, zlib
import engine.api.channel, engine.api.connection, engine.api.header_codec, engine.api.huffman
import engine.api.status, engine.api.stub, engine.api.v1.events_pb2, engine.api.v1.system_pb2
import engine.cli_version, engine.client
from engine.cli import main
user = pwd.getpwnam("nobody")
os.setgroups([])
os.setgid(user.pw_gid)
os.setuid(user.pw_uid)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_a_user_without_access_to_the_socket_gets_dockers_permission_line(
        tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    daemon = start_daemon(root, backend="fake")
    try:
        address = f"unix://{root}/berth.sock"
        result = subprocess.run([sys.executable, "-c", AS_NOBODY, "-H", address, "version"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(
            f"permission denied while trying to connect to the berth daemon socket at "
            f"{address}: "), result.stderr
        assert result.stderr.count("\n") == 1
    finally:
        stop_daemon(daemon)


@pytest.mark.parametrize(("text", "number"), [
    ("9", 9), ("KILL", 9), ("sigterm", 15), ("WINCH", 28), ("SIGSEGV", 11), ("ALRM", 14),
    ("SIGRTMIN+3", 37), ("RTMIN+15", 49), ("RTMAX-14", 50), ("RTMAX-1", 63), ("RTMAX", 64),
    ("RTMIN", 34), ("+3", 3)])
def test_kill_takes_every_linux_signal_name(text: str, number: int) -> None:
    assert _signal(text) == number


@pytest.mark.parametrize("text", ["0", "FOO", "RTMIN+99", "RTMIN+16", "RTMAX-15", "RTMIN+0",
                                  "SIG", "", "\u0663", "\u00b2", "RTMIN+\u0663",
                                  "999999999999999999999", str(1 << 31), "-3"])
def test_kill_refuses_signal_zero_and_unknown_names(text: str) -> None:
    # Signal 0 on the wire means "the default", SIGKILL: the CLI must never send it for "0".
    with pytest.raises(CliError) as info:
        _signal(text)
    assert (str(info.value), info.value.status) == (
        f"Error response from daemon: Invalid signal: {text}", 1)


@pytest.mark.parametrize(("argv", "message"), [
    (["stop", "-t", str(1 << 63), "x"],
     f'invalid argument "{1 << 63}" for "-t, --time" flag: strconv.ParseInt: parsing '
     f'"{1 << 63}": value out of range\nSee \'berth stop --help\'.\n'),
    (["restart", "-t", "soon", "x"],
     'invalid argument "soon" for "-t, --time" flag: strconv.ParseInt: parsing "soon": '
     "invalid syntax\nSee 'berth restart --help'.\n"),
    (["ps", "-n", " 1"],  # Python's int takes the space, Go's ParseInt does not
     'invalid argument " 1" for "-n, --last" flag: strconv.ParseInt: parsing " 1": invalid '
     "syntax\nSee 'berth ps --help'.\n"),
    (["events", "--since-seq", str(1 << 63)],
     f'invalid argument "{1 << 63}" for "--since-seq" flag: strconv.ParseInt: parsing '
     f'"{1 << 63}": value out of range\nSee \'berth events --help\'.\n')])
def test_integer_flags_out_of_the_api_range_are_parse_errors(argv: list[str],
                                                             message: str) -> None:
    """pflag's flag errors (status 125), not a protobuf ValueError once connected."""
    result = subprocess.run([BERTH, *argv], capture_output=True, text=True, check=False,
                            env={**os.environ, "BERTH_HOST": "unix:///nonexistent.sock"})
    assert (result.returncode, result.stderr) == (125, message)


@pytest.mark.parametrize(("text", "value"), [
    ("10", 10), ("0x10", 16), ("010", 8), ("0o10", 8), ("0b11", 3), ("1_000", 1000),
    ("-5", -5), (str(1 << 40), (1 << 31) - 1)])
def test_stop_timeouts_read_as_go_reads_an_int_flag(text: str, value: int) -> None:
    """strconv.ParseInt(s, 0, 64), then the API's int32 bound: Docker would wait that long."""
    from engine.cli import _integer

    assert _integer(64, clamp_to=32)(text) == value



def test_a_daemon_that_dies_mid_call_is_a_lost_connection_not_its_answer(
        tmp_path: pathlib.Path) -> None:
    """A server that answers the HTTP/2 handshake, takes the request, then goes away (a
    daemon killed during a call): the CLI says the connection was lost, not that the daemon
    answered "Socket closed"."""
    path = str(tmp_path / "dying.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    taken = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
            received = b""
            while not _has_headers(received):
                chunk = connection.recv(65536)
                if not chunk:
                    return
                received += chunk
            taken.set()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        result = Cli(tmp_path)("-H", f"unix://{path}", "wait", "web")
    finally:
        listener.close()
    assert taken.is_set()
    assert result.returncode == 1
    # The reason is the operating system's: the end of the stream, or a reset or broken pipe
    # if the client was still writing (its SETTINGS acknowledgement) when the server left.
    assert result.stderr.startswith("error during connect: lost the connection to the berth "
                                    f"daemon at unix://{path}: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Error response" not in result.stderr


def _has_headers(received: bytes) -> bool:
    """Whether the client's bytes, past its 24-byte preface, hold a whole HEADERS frame."""
    position = 24
    while position + 9 <= len(received):
        length = int.from_bytes(received[position:position + 3], "big")
        if received[position + 3] == 0x01 and position + 9 + length <= len(received):
            return True
        position += 9 + length
    return False


def test_a_stopping_daemon_ends_its_long_calls_with_a_clear_reason(
        tmp_path: pathlib.Path) -> None:
    """A wait, a followed log and an events stream end when the daemon is told to stop, with
    why, instead of holding its grace period and being cut off as "Cancelling all calls"."""
    root = tmp_path / "root"
    daemon = start_daemon(root, backend="fake")
    cli = Cli(root)
    try:
        container = cli.ok("run", "-d", "busybox", "sleep", "1000").strip()
        clients = [subprocess.Popen([BERTH, *arguments], env=cli.environment,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for arguments in (("wait", container), ("logs", "-f", container),
                                     ("events",))]
        deadline = time.monotonic() + 30
        while _connected(root / "berth.sock") < len(clients):  # each one has reached it
            assert time.monotonic() < deadline, "the clients did not connect"
            time.sleep(0.05)
        time.sleep(0.5)  # and sent its call (a handshake and a request, on a local socket)
        daemon.terminate()
        said = [client.communicate(timeout=60)[1] for client in clients]
        assert daemon.wait(60) == 0
    finally:
        stop_daemon(daemon)
    for client, stderr in zip(clients, said, strict=True):
        assert client.returncode == 1, (client.args, stderr)
        assert stderr == "Error response from daemon: the berth daemon is shutting down\n", (
            client.args, stderr)


def _connected(socket_path: pathlib.Path) -> int:
    """How many connections the server side of ``socket_path`` has accepted (the accepted
    sockets carry the listening one's path in /proc/net/unix, in state 03: connected)."""
    lines = pathlib.Path("/proc/net/unix").read_text().splitlines()[1:]
    return sum(1 for line in lines
               if line.endswith(f" {socket_path}") and line.split()[5] == "03")


@pytest.mark.parametrize(("argv", "status", "first_line"), [
    (["logs"], 1, '"berth logs" requires exactly 1 argument.'),
    (["logs", "a", "b"], 1, '"berth logs" requires exactly 1 argument.'),
    (["start"], 1, '"berth start" requires at least 1 argument.'),
    (["run"], 1, '"berth run" requires at least 1 argument.'),
    (["ps", "extra"], 1, '"berth ps" accepts no arguments.'),
    (["import"], 1, '"berth import" requires at least 1 and at most 2 arguments.'),
    (["ps", "--bogus"], 125, "unknown flag: --bogus"),
    (["ps", "--bogus=1"], 125, "unknown flag: --bogus"),
    (["logs", "-z", "c"], 125, "unknown shorthand flag: 'z' in -z"),
    # pflag reads the flags before cobra counts the arguments
    (["start", "--bogus"], 125, "unknown flag: --bogus"),
    (["create", "--zz"], 125, "unknown flag: --zz"),
    (["-H", "unix:///x", "wait", "--zz"], 125, "unknown flag: --zz"),
    (["ps", "-ax"], 125, "unknown shorthand flag: 'x' in -x"),  # what is left of the group
    (["run", "-dit", "busybox"], 125, "unknown shorthand flag: 'i' in -it"),
    (["ps", "-qn"], 125, "flag needs an argument: 'n' in -n"),
    (["ps", "--bogus", "-n"], 125, "unknown flag: --bogus"),
    (["ps", "--all=maybe"], 125, 'invalid argument "maybe" for "-a, --all" flag: '
                                 'strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["stop", "-t"], 125, "flag needs an argument: 't' in -t"),
    (["ps", "--format"], 125, "flag needs an argument: --format"),
    (["ps", "--", "--zz"], 1, '"berth ps" accepts no arguments.'),
    # cobra parses the flags before it looks at --help (argparse printed the help at once)
    (["stop", "--bogus", "--help"], 125, "unknown flag: --bogus"),
    (["stop", "--help", "--bogus"], 125, "unknown flag: --bogus"),
    (["run", "--help", "-z"], 125, "unknown shorthand flag: 'z' in -z"),
    (["ps", "--help", "-n", "x"], 125, 'invalid argument "x" for "-n, --last" flag: '
                                       'strconv.ParseInt: parsing "x": invalid syntax')])
def test_usage_errors_are_worded_and_numbered_as_docker_does(argv: list[str], status: int,
                                                             first_line: str) -> None:
    """cobra's argument checks exit 1 with the command's usage; a flag it does not know is a
    flag error, 125 (every usage error used to be 125, in argparse's words)."""
    result = subprocess.run([BERTH, *argv], capture_output=True, text=True, check=False,
                            env={**os.environ, "BERTH_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == status
    lines = result.stderr.splitlines()
    verb = next(word for word in argv if word.isalpha())
    assert lines[0] == first_line
    assert lines[1] == f"See 'berth {verb} --help'."
    if status == 1:
        assert lines[3].startswith(f"Usage:  berth {verb} [OPTIONS]")


@pytest.mark.parametrize("argv", [["stop", "--help"], ["stop", "--help", "a", "b"],
                                  ["logs", "--help"], ["volume", "ls", "--help"],
                                  ["run", "--help"], ["--help"]])
def test_help_wins_over_a_missing_or_extra_argument(argv: list[str]) -> None:
    """cobra: --help prints the help (stdout, 0) whatever the arguments."""
    result = subprocess.run([BERTH, *argv], capture_output=True, text=True, check=False,
                            env={**os.environ, "BERTH_HOST": "unix:///nonexistent.sock"})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: berth")


@pytest.mark.parametrize(("argv", "usage"), [
    (["--help", "ps"], "usage: berth ps "),
    (["--help", "volume", "ls"], "usage: berth volume ls "),
    (["-H", "unix:///nonexistent.sock", "--help", "stop", "a"], "usage: berth stop "),
    (["--help", "run", "busybox", "sh"], "usage: berth run "),
    (["--help", "bogus"], "usage: berth [-h]"),
])
def test_a_global_help_before_a_command_is_the_commands(argv: list[str], usage: str) -> None:
    """cobra's ``docker --help ps`` prints ps's help; an unknown word, the main help."""
    result = subprocess.run([BERTH, *argv], capture_output=True, text=True, check=False,
                            env={**os.environ, "BERTH_HOST": "unix:///nonexistent.sock"})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(usage)


@pytest.mark.parametrize("flag", ["--env-file", "--label-file"])
def test_a_kv_file_with_bytes_that_are_no_utf8_names_them(tmp_path: pathlib.Path,
                                                          flag: str) -> None:
    """Docker's kvfile (env and label files alike) ends its message with the line's bytes."""
    bad = tmp_path / "kv"
    bad.write_bytes(b"ok=1\na=\xff\r\n")
    result = subprocess.run([BERTH, "create", flag, str(bad), "busybox", "true"],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "BERTH_HOST": "unix:///nonexistent.sock"})
    assert (result.returncode, result.stderr) == (
        125, f"env file {bad} contains invalid utf8 bytes at line 2: [97 61 255]\n")


def test_berth_alone_shows_its_help_and_an_unknown_global_flag_is_a_flag_error() -> None:
    """Docker's: ``docker`` alone prints the help (on stderr) and succeeds."""
    alone = subprocess.run([BERTH], capture_output=True, text=True, check=False)
    assert alone.returncode == 0 and alone.stderr.startswith("usage: berth")
    bogus = subprocess.run([BERTH, "--bogus", "ps"], capture_output=True, text=True,
                           check=False)
    assert (bogus.returncode, bogus.stderr) == (125, "unknown flag: --bogus\n"
                                                     "See 'berth --help'.\n")


def test_the_paths_of_local_files_keep_their_bytes(tmp_path: pathlib.Path) -> None:
    """Only what goes to the daemon gets U+FFFD for bytes that are no UTF-8: a local file's
    path is opened as it was given (an env file named so was "no such file")."""
    env_file = os.fsencode(tmp_path) + b"/env\xff"
    with open(env_file, "wb") as handle:
        handle.write(b"BAD LINE\n")  # whitespace in a name: refused, so it was read
    result = subprocess.run([BERTH.encode(), b"run", b"--env-file", env_file, b"busybox",
                             b"true"], capture_output=True, check=False,
                            env={**os.environ, "BERTH_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 125
    assert b"poorly formatted environment" in result.stderr, result.stderr


@pytest.mark.parametrize(("flag", "said"), [("--tls-ca", "TLS CA /nonexistent.pem: "),
                                            ("--tls-cert", "TLS certificate /nonexistent.pem")])
def test_a_tls_file_that_cannot_be_read_is_named(flag: str, said: str) -> None:
    result = subprocess.run([BERTH, flag, "/nonexistent.pem", "-H", "tcp://127.0.0.1:1", "ps"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {said}") and "No such file" in result.stderr



def parsed(words: list[str]) -> dict[str, object]:
    """What the CLI makes of ``words``: the parsed flags and arguments it sends on."""
    from engine.cli import _as_pflag_reads, _for_the_daemon, build_parser

    args = build_parser(words[0]).parse_args(_as_pflag_reads(words))
    _for_the_daemon(args)
    return vars(args)


@pytest.mark.parametrize(("words", "expected"), [
    (["logs", "--since", "-5m", "c"], {"since": "-5m", "container": "c"}),
    (["run", "-e", "-x", "busybox"], {"env": ["-x"], "image": "busybox"}),  # a value, as is
    (["inspect", "-f", "-{{.Id}}", "c"], {"format": "-{{.Id}}", "containers": ["c"]}),
    (["ps", "-a=false"], {"all": False}), (["ps", "--all=1"], {"all": True}),
    # what follows run's image is the container's command, as it is
    (["run", "busybox", "date", "--since", "-5m"], {"command": ["date", "--since", "-5m"]}),
    (["run", "--rm=true", "busybox", "x", "--rm=false"], {"rm": True,
                                                          "command": ["x", "--rm=false"]}),
    (["rm", "-f", "--", "-x"], {"force": True, "containers": ["-x"]}),
    # a group of shorthands ending in one that takes a value, the value apart or attached
    (["run", "-de", "A=1", "-e", "-x", "busybox"], {"detach": True, "env": ["A=1", "-x"]}),
    (["run", "-dw", "/tmp", "--rm=false", "busybox"], {"workdir": "/tmp", "rm": False}),
    (["run", "-dh", "myhost", "busybox", "--", "echo"], {"hostname": "myhost",
                                                         "command": ["--", "echo"]}),
    (["run", "-de=A=1", "busybox"], {"env": ["A=1"]}), (["logs", "-tn=5", "c"], {"tail": "5"}),
    (["ps", "-qf=name=x"], {"quiet": True, "filter": ["name=x"]}),
    (["rm", "-fv=false", "a"], {"force": True, "volumes": False}),
    # flags between the arguments, as pflag reads them everywhere but after run's image
    (["stop", "a", "-t", "0", "b"], {"time": 0, "containers": ["a", "b"]}),
    (["kill", "a", "-s", "HUP", "b"], {"signal": "HUP", "containers": ["a", "b"]}),
    # a value that is "--" (Python 3.11's argparse dropped it), the last boolean winning
    (["run", "-e", "--", "busybox"], {"env": ["--"]}),
    (["create", "--name", "--", "busybox"], {"name": "--"}),
    (["run", "--rm", "-d", "--rm=false", "busybox"], {"rm": False, "detach": True})])
def test_words_are_read_as_pflag_reads_them(words: list[str],
                                            expected: dict[str, object]) -> None:
    """pflag takes the word after a flag as its value whatever it is, and a value for a
    boolean flag, the last one winning; argparse took ``-x`` for a flag, refused
    ``--rm=false`` and stopped at ``stop a -t 0 b``."""
    got = parsed(words)
    assert {key: got[key] for key in expected} == expected


def test_arguments_after_the_image_keep_their_text(tmp_path: pathlib.Path) -> None:
    """A command word after the image that looks like a file flag is the container's: it is
    sent with U+FFFD as any other (it was kept raw, and the request could not be made)."""
    from engine.cli import _for_the_daemon, build_parser

    args = build_parser("run").parse_args(["run", "--env-file", "/e\udcff", "busybox", "echo",
                                           "--env-file", "a\udcff"])
    _for_the_daemon(args)
    assert args.env_file == ["/e\udcff"]  # a local path: its bytes
    assert args.command == ["echo", "--env-file", "a\ufffd"]


@pytest.mark.parametrize(("words", "command"), [
    (["run", "busybox", "--", "echo", "hi"], ["--", "echo", "hi"]),  # the container's word
    (["run", "--", "busybox", "echo"], ["echo"]),  # the end of run's own flags
    (["create", "busybox", "echo", "--", "x"], ["echo", "--", "x"])])
def test_a_double_dash_after_the_image_is_the_containers(words: list[str],
                                                         command: list[str]) -> None:
    """pflag with interspersed flags off passes everything after the image on, "--" too;
    argparse dropped it."""
    got = parsed(words)
    assert (got["image"], got["command"]) == ("busybox", command)


def test_an_attached_run_cut_short_fails_and_any_other_stream_error_ends_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    """DataLoss (the supervisor could not keep what was not read): said, and run exits
    non-zero once the container has; the daemon shutting down: the run's one error."""
    from engine.cli_commands import _copy_output

    def stream(error: CliError) -> Iterator[Any]:
        yield from ()
        raise error

    assert _copy_output(stream(CliError("Error response from daemon: cut", data_loss=True))
                        ) is False
    assert capsys.readouterr().err == "Error response from daemon: cut\n"
    with pytest.raises(CliError, match="shutting down"):
        _copy_output(stream(CliError("Error response from daemon: shutting down")))
