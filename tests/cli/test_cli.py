"""The real ``berth`` executable against a real daemon: Docker's session and exit codes."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from tests.cli.conftest import BERTH, Cli
from tests.integration.conftest import REASON, available

pytestmark = pytest.mark.skipif(not available, reason=REASON)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_docker_style_session(session: Cli) -> None:
    assert "busybox" in session.ok("images")
    container_id = session.ok("create", "--name", "web", "busybox", "sh", "-c",
                              "echo hello; sleep 1000").strip()
    assert len(container_id) == 64
    assert session.ok("start", "web").strip() == "web"
    table = session.ok("ps")
    assert "web" in table and "Up" in table and container_id[:12] in table
    (inspected,) = json.loads(session.ok("inspect", "web"))
    assert inspected["Id"] == container_id and inspected["Name"] == "/web"
    state = inspected["State"]
    assert (state["Status"], state["Running"], state["Paused"], state["Dead"]) == (
        "running", True, False, False)
    assert state["Pid"] > 0 and state["StartedAt"].endswith("Z")
    assert inspected["Path"] == "sh" and inspected["Args"] == ["-c", "echo hello; sleep 1000"]
    assert inspected["HostConfig"] == {"Binds": None, "Runtime": "runc", "AutoRemove": False,
                                       "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                                       "NetworkMode": "none"}
    assert inspected["Config"]["Image"] == "busybox" and inspected["Config"]["Volumes"] is None
    # Go prints the nil slice and map of Docker's structs as [] and map[] (not <no value>).
    assert session.ok("inspect", "-f", "{{.HostConfig.Binds}}|{{.Config.Volumes}}",
                      "web") == "[]|map[]\n"
    deadline = time.monotonic() + 10
    while "hello" not in session.ok("logs", "web") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session.ok("logs", "web") == "hello\n"
    assert session.ok("stop", "-t", "1", "web").strip() == "web"
    (stopped,) = json.loads(session.ok("inspect", "web"))
    assert (stopped["State"]["Status"], stopped["State"]["ExitCode"]) == ("exited", 137)
    assert "Exited (137)" in session.ok("ps", "-a")
    session.ok("start", "web")
    assert session("start", "web").returncode == 0  # already started: not an error
    # Docker's start of several: each one in turn, then the failed ones named.
    several = session("start", "web", "nosuch", "web")
    assert (several.returncode, several.stdout) == (1, "web\nweb\n")
    assert several.stderr == ("Error response from daemon: No such container: nosuch\n"
                              "Error: failed to start containers: nosuch\n")
    session.ok("rm", "-f", "web")
    assert "web" not in session.ok("ps", "-a")


def test_run_exits_with_the_container_exit_code(session: Cli) -> None:
    result = session("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_run_sends_the_signals_it_gets_to_the_container(session: Cli) -> None:
    """Docker's --sig-proxy: a Ctrl-C of a foreground run went to the CLI alone, which
    exited 130 and left the container running (helper-40)."""
    script = ('trap "echo got INT; exit 4" INT; trap "echo got USR1" USR1; echo ready; '
              'while :; do sleep 0.1; done')
    run = subprocess.Popen([BERTH, "run", "--rm", "busybox", "sh", "-c", script],
                           env=session.environment, stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        assert run.stdout.readline() == "ready\n"
        run.send_signal(signal.SIGUSR1)
        assert run.stdout.readline() == "got USR1\n"
        run.send_signal(signal.SIGINT)
        assert run.stdout.readline() == "got INT\n"
        assert run.wait(30) == 4
    finally:
        run.kill()
        run.wait()
    off = subprocess.Popen([BERTH, "run", "--sig-proxy=false", "--name", "unproxied",
                            "busybox", "sh", "-c", "echo ready; sleep 30"],
                           env=session.environment, stdout=subprocess.PIPE, text=True)
    try:
        assert off.stdout is not None
        assert off.stdout.readline() == "ready\n"
        off.send_signal(signal.SIGINT)
        assert off.wait(30) == 130
        assert session.ok("inspect", "-f", "{{.State.Status}}", "unproxied") == "running\n"
    finally:
        off.kill()
        off.wait()
        session("rm", "-f", "unproxied")


def test_run_of_a_missing_command_exits_127_and_is_removed(session: Cli) -> None:
    before = session.ok("ps", "-a")
    result = session("run", "--rm", "busybox", "no-such-command")
    assert result.returncode == 127
    assert one_line(result.stderr).startswith("Error response from daemon:")
    assert "executable file not found" in result.stderr
    assert session.ok("ps", "-a") == before


def test_a_failed_start_of_run_exits_as_dockers_cli_reads_it(session: Cli) -> None:
    """Docker's runStartContainerErr reads the message: 126 for a directory, 125 for
    "not a directory", whose container still records the daemon's 127 (helper-45)."""
    directory = session("run", "--name", "a-directory", "busybox", "/bin")
    assert directory.returncode == 126 and "permission denied" in directory.stderr
    under_a_file = session("run", "--name", "under-a-file", "busybox", "/bin/sh/x")
    assert under_a_file.returncode == 125, under_a_file.stderr
    assert "not a directory" in under_a_file.stderr
    assert session.ok("inspect", "-f", "{{.State.ExitCode}}", "under-a-file") == "127\n"
    session.ok("rm", "a-directory", "under-a-file")


def test_run_refused_by_the_daemon_exits_125(session: Cli) -> None:
    session.ok("create", "--name", "taken", "busybox", "true")
    taken = session("run", "--name", "taken", "busybox", "true")
    assert taken.returncode == 125
    assert 'Conflict. The container name "/taken" is already in use' in one_line(taken.stderr)
    bad_name = session("run", "--name", "x", "busybox", "true")
    assert bad_name.returncode == 125
    assert "Invalid container name (x)" in one_line(bad_name.stderr)
    session.ok("rm", "taken")


def test_bad_input_gets_one_line_and_the_right_status(session: Cli) -> None:
    unknown_verb = session("frobnicate")
    assert (unknown_verb.returncode, unknown_verb.stderr) == (
        1, "berth: 'frobnicate' is not a berth command.\nSee 'berth --help'\n")
    assert "Traceback" not in unknown_verb.stderr
    unknown_flag = session("ps", "--bogus")
    assert unknown_flag.returncode == 125 and "--bogus" in unknown_flag.stderr
    bad_env = session("create", "-e", "=oops", "busybox", "true")
    assert bad_env.returncode == 125 and one_line(bad_env.stderr) == (
        "invalid environment variable: =oops")
    bad_volume = session("create", "-v", "novolume", "busybox", "true")
    assert bad_volume.returncode == 1
    assert one_line(bad_volume.stderr) == (
        "Error response from daemon: invalid volume specification: 'novolume'")
    unknown = session("inspect", "ghost")  # no container, image or volume has the name
    assert unknown.returncode == 1
    assert one_line(unknown.stderr) == "Error: No such object: ghost"  # Docker's client's
    assert unknown.stdout == "[]\n"
    typed = session("inspect", "--type", "container", "ghost")
    assert (typed.returncode, one_line(typed.stderr)) == (1, "Error: No such container: ghost")
    assert one_line(session("rm", "ghost").stderr) == "Error: No such container: ghost"
    assert one_line(session("rmi", "ghost").stderr) == "Error: No such image: ghost"
    assert one_line(session("volume", "rm", "ghost").stderr) == "Error: No such volume: ghost"
    # The calls Docker's client does not word itself keep the daemon's answer.
    assert one_line(session("stop", "ghost").stderr) == (
        "Error response from daemon: No such container: ghost")
    stop_unknown = session("stop", "ghost")
    assert stop_unknown.returncode == 1
    # moby looks the image up before it asks for a command (an imported image has none).
    no_image = session("run", "nosuchimage")
    assert no_image.returncode == 125 and "No such image: nosuchimage" in no_image.stderr
    no_command = session("create", "busybox")
    assert no_command.returncode == 1 and one_line(no_command.stderr) == (
        "Error response from daemon: no command specified")
    assert session("version").returncode == 0  # the daemon keeps serving


def test_pause_unpause_kill_wait_and_events(session: Cli) -> None:
    session.ok("run", "-d", "--name", "worker", "busybox", "sleep", "1000")
    session.ok("pause", "worker")
    assert json.loads(session.ok("inspect", "worker"))[0]["State"]["Status"] == "paused"
    again = session("pause", "worker")
    assert again.returncode == 1 and "is already paused" in one_line(again.stderr)
    session.ok("unpause", "worker")
    session.ok("kill", "-s", "KILL", "worker")
    assert session.ok("wait", "worker").strip() == "137"
    # moby's router wraps every kill failure with the name as given (helper-45).
    stopped = session("kill", "worker")
    assert stopped.returncode == 1 and one_line(stopped.stderr).startswith(
        "Error response from daemon: Cannot kill container: worker: Container ")
    assert one_line(stopped.stderr).endswith(" is not running")
    missing = session("kill", "nosuch")
    assert (missing.returncode, one_line(missing.stderr)) == (
        1, "Error response from daemon: Cannot kill container: nosuch: No such container: nosuch")
    streamed = subprocess.run(["timeout", "3", BERTH, "events", "--since", "0", "--container",
                               "worker"], env=session.environment, capture_output=True,
                              text=True, check=False).stdout.splitlines()
    actions = [line.split()[2] for line in streamed]
    assert actions == ["create", "start", "pause", "unpause", "kill", "die"]
    # Docker's: without --since only new events (it replayed the whole journal); --until
    # ends the stream; --format reads Docker's event message.
    quiet = subprocess.run(["timeout", "2", BERTH, "events", "-f", "container=worker"],
                           env=session.environment, capture_output=True, text=True,
                           check=False)
    assert (quiet.returncode, quiet.stdout) == (124, "")  # still following: nothing new
    bounded = session.ok("events", "--since", "0", "--until", "1s", "--filter",
                         "container=worker", "--filter", "event=die", "--format",
                         "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert bounded == "container die worker\n"
    # --until alone replays too; a type other than container has nothing, whatever else.
    assert session.ok("events", "--until", "0s", "-f", "container=worker", "-f", "event=die",
                      "--format", "{{.Action}}") == "die\n"
    assert session.ok("events", "--since", "0", "--until", "0s", "-f", "container=worker",
                      "-f", "type=image", "-f", "event=die") == ""
    assert session.ok("events", "--since", "0", "--until", "0s", "-f", "container=worker",
                      "-f", "type=image", "-f", "type=container", "-f", "event=die") != ""
    backwards = session("events", "--since", "1s", "--until", "1h")
    assert backwards.returncode == 1 and "cannot be after `until` time" in backwards.stderr
    [line] = session.ok("events", "--since", "0", "--until", "1s", "-f", "container=worker",
                        "-f", "event=kill").splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d container kill "
                        r"[0-9a-f]{64} \(image=busybox, name=worker, seq=\d+, signal=9\)",
                        line), line
    # Docker's image filter (the image as given, or without its tag) and the die's exitCode.
    assert session.ok("events", "--since", "0", "--until", "0s", "-f", "container=worker",
                      "-f", "image=busybox", "-f", "event=die", "--format",
                      "{{.Actor.Attributes.exitCode}}") == "137\n"
    assert session.ok("events", "--since", "0", "--until", "0s", "-f", "container=worker",
                      "-f", "image=busybox:latest") == ""
    assert session.ok("events", "--since", "0", "--until", "0s", "-f", "container=worker",
                      "-f", "label=a=b") == ""
    session.ok("rm", "worker")


def test_info_version_and_json_formats(session: Cli) -> None:
    info = json.loads(session.ok("info", "--format", "json"))
    assert info["defaultRuntime"] == "runc" and info["backend"] == "runc"
    assert info["images"] >= 1
    version = json.loads(session.ok("version", "--format", "json"))
    assert version["Server"]["ApiVersion"] == "v1"
    # Docker 23's json: one object a line, with its table's fields, filtered as the table.
    [busybox] = [json.loads(line) for line in session.ok(
        "images", "--format", "json", "busybox").splitlines()]
    assert (busybox["Repository"], busybox["Tag"]) == ("busybox", "latest")
    assert session.ok("images", "--format", "json", "-f", "reference=nothing*") == ""
    # {{json .}} of a listing's row: a map to Go, its keys sorted (helper-43).
    [row] = session.ok("images", "--format", "{{json .}}", "busybox").splitlines()
    assert list(json.loads(row)) == sorted(json.loads(row)) and row == json.dumps(
        json.loads(row), separators=(",", ":"), ensure_ascii=False)


def test_a_daemon_that_is_not_running_gets_a_one_line_hint(tmp_path: object) -> None:
    environment = {**os.environ, "BERTH_HOST": "unix:///nonexistent/berth.sock"}
    result = subprocess.run([BERTH, "ps"], env=environment, capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 1
    assert one_line(result.stderr) == ("Cannot connect to the berth daemon at "
                                       "unix:///nonexistent/berth.sock. Is the daemon running?")


def test_an_image_in_use_cannot_be_removed(session: Cli, tmp_path: object) -> None:
    session.ok("create", "--name", "user", "busybox", "true")
    refused = session("rmi", "busybox")
    assert refused.returncode == 1
    assert "is using its referenced image" in one_line(refused.stderr)
    assert "busybox" in session.ok("images")
    session.ok("rm", "user")


def test_a_foreground_run_rm_never_loses_output(session: Cli) -> None:
    """The container is removed by the daemon as soon as its exit is recorded; its output
    must still all reach the terminal (it used to be lost 3 times in 20)."""
    for _ in range(12):
        assert session.ok("run", "--rm", "busybox", "sh", "-c", "echo a; echo b") == "a\nb\n"
    assert session.ok("ps", "-aq") == ""


def test_a_foreground_run_shows_the_output_raw_as_it_is_written(session: Cli,
                                                                tmp_path: pathlib.Path) -> None:
    """Docker's run attaches: bytes that are no UTF-8 reach stdout as they are (the log,
    JSON, has U+FFFD in their place: `tar c > x.tar` was corrupt), and a partial line shows
    before its newline (a prompt waited for it) (helper-45)."""
    binary = subprocess.run([BERTH, "run", "--rm", "busybox", "sh", "-c",
                             r"printf '\000\001\377\376\n\200abc'; printf 'err\377' >&2"],
                            env=session.environment, capture_output=True, timeout=60,
                            check=False)
    assert (binary.returncode, binary.stdout, binary.stderr) == (
        0, b"\x00\x01\xff\xfe\n\x80abc", b"err\xff")
    # The container prints a prompt, then waits until the test has read it: with the line
    # held back until its newline, the first read would only come once the wait gave up.
    script = ("printf 'prompt> '; i=0; while [ ! -e /shared/go ] && [ $i -lt 300 ]; "
              "do sleep 0.1; i=$((i+1)); done; echo done")
    running = subprocess.Popen([BERTH, "run", "--rm", "-v", f"{tmp_path}:/shared", "busybox",
                                "sh", "-c", script], env=session.environment,
                               stdout=subprocess.PIPE)
    try:
        assert running.stdout is not None
        first = os.read(running.stdout.fileno(), 100)
        (tmp_path / "go").touch()
        rest = running.stdout.read()
        assert running.wait(timeout=60) == 0
    finally:
        running.kill()
        running.wait()
    assert (first, rest) == (b"prompt> ", b"done\n")


def test_a_run_whose_reader_lags_loses_none_of_the_output(session: Cli) -> None:
    """The reader takes nothing until the container has exited, 24 MB later: what did not
    fit the supervisor's memory waited on disk. It was cut off at 16 MiB (helper-47)."""
    size = 24_000_000
    running = subprocess.Popen([BERTH, "run", "--name", "lagged", "busybox", "sh", "-c",
                                f"head -c {size} /dev/zero | tr '\\0' a"],
                               env=session.environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while session("inspect", "-f", "{{.State.Status}}", "lagged").stdout != "exited\n":
            assert time.monotonic() < deadline, "the container did not exit"
            time.sleep(0.2)
        output, errors = running.communicate(timeout=120)
    finally:
        running.kill()
        running.wait()
    assert (running.returncode, len(output), set(output), errors) == (0, size, {ord("a")}, b"")
    session.ok("rm", "lagged")


def test_a_run_whose_reader_goes_exits_as_killed_by_sigpipe(session: Cli) -> None:
    """Docker's Go CLI dies of SIGPIPE (`docker run img yes | head -1`); berth exited 0 as
    if all went well (helper-45). The container runs on, as Docker's."""
    running = subprocess.Popen([BERTH, "run", "--name", "yes", "busybox", "yes"],
                               env=session.environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        assert running.stdout is not None and running.stderr is not None
        assert running.stdout.readline() == b"y\n"
        running.stdout.close()
        assert running.wait(timeout=60) == 141
        assert running.stderr.read() == b""
    finally:
        running.kill()
        running.wait()
    assert session.ok("inspect", "-f", "{{.State.Status}}", "yes") == "running\n"
    session.ok("rm", "-f", "yes")


def test_stop_kill_and_rm_act_on_their_containers_at_once(session: Cli) -> None:
    """Docker's parallelOperation: ``stop -t 2 a b`` took 4 s, each stop after the last
    (helper-40). Containers ignoring SIGTERM each take the full 2 s to stop: stopped at
    once, every SIGTERM is journaled before the first death."""
    names = ["par1", "par2", "par3"]
    for name in names:
        session.ok("run", "-d", "--name", name, "busybox", "sh", "-c",
                   "trap '' TERM; while :; do sleep 0.1; done")
    stopped = session("stop", "-t", "2", *names, "ghost")
    assert stopped.returncode == 1
    assert stopped.stdout == "par1\npar2\npar3\n"  # in the order given, whatever finished
    assert "No such container: ghost" in stopped.stderr
    ids = [session.ok("inspect", "-f", "{{.Id}}", name).strip() for name in names]
    with sqlite3.connect(f"file:{session.root / 'berth.db'}?mode=ro", uri=True) as db:
        order = [event for (event,) in db.execute(
            f"SELECT event FROM history WHERE container_id IN ({', '.join('?' * len(ids))}) "
            "AND event IN ('kill', 'die') ORDER BY rowid", ids)]
    # Each one's SIGTERM was sent before any of them died: at once, not one after another.
    assert order[:3] == ["kill"] * 3 and "die" not in order[:3]
    # A Ctrl-C ends the command at once (it waited for every stop), leaving them stopping.
    for name in names:
        session.ok("start", name)
    stopping = subprocess.Popen([BERTH, "stop", "-t", "30", *names], env=session.environment,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with sqlite3.connect(f"file:{session.root / 'berth.db'}?mode=ro", uri=True) as db:
        for _ in range(200):  # until each SIGTERM is journaled: the stops are under way
            count = db.execute(
                f"SELECT count(*) FROM history WHERE container_id IN "
                f"({', '.join('?' * len(ids))}) AND event = 'kill'", ids).fetchone()[0]
            if count >= 2 * len(names) + len(names):
                break
            time.sleep(0.05)
    stopping.send_signal(signal.SIGINT)
    assert stopping.wait(20) == 130
    assert {session.ok("inspect", "-f", "{{.State.Status}}", name).strip()
            for name in names} == {"running"}  # their 30 s are not over
    unusable = session("-H", "bogus://x", "stop", *names)  # each at once: one error, no hang
    assert unusable.returncode == 1 and "Traceback" not in unusable.stderr
    assert one_line(unusable.stderr).startswith("Error: invalid address 'bogus://x'")
    removed = session("rm", "-f", *names, "ghost")
    assert (removed.returncode, removed.stdout) == (0, "par1\npar2\npar3\n")
    assert "No such container: ghost" in removed.stderr  # -f: reported, not a failure
    assert session("rm", "ghost").returncode == 1
    assert session("rmi", "-f", "ghost:none").returncode == 0
    assert session("rmi", "ghost:none").returncode == 1


def test_rmi_prints_what_it_untagged_and_deleted(session: Cli, tmp_path: object) -> None:
    import pathlib

    source = pathlib.Path(str(tmp_path)) / "tiny"
    source.mkdir()
    (source / "file").write_text("tiny")
    digest = session.ok("import", str(source), "tiny").strip()
    session.ok("import", str(source), "tiny:second")
    assert session.ok("rmi", "tiny") == "Untagged: tiny:latest\n"
    assert session.ok("rmi", "tiny:second") == f"Untagged: tiny:second\nDeleted: {digest}\n"
    assert "tiny" not in session.ok("images")


def test_rmi_force_deletes_an_image_a_stopped_container_uses(session: Cli,
                                                            tmp_path: object) -> None:
    import pathlib

    source = pathlib.Path(str(tmp_path)) / "forced"
    source.mkdir()
    (source / "file").write_text("forced")
    digest = session.ok("import", str(source), "forced").strip()
    session.ok("create", "--name", "forced-user", "forced", "true")
    refused = session("rmi", "forced")
    assert refused.returncode == 1 and "(must force)" in one_line(refused.stderr)
    assert session.ok("rmi", "-f", "forced") == f"Untagged: forced:latest\nDeleted: {digest}\n"
    assert "forced" not in session.ok("images")
    short = digest.removeprefix("sha256:")[:12]
    assert session.ok("ps", "-a", "--filter", "name=forced-user", "--format",
                      "{{.Image}}") == f"{short}\n"  # as Docker shows a deleted image
    session.ok("rm", "forced-user")


def test_volume_sources_dot_and_dot_slash_are_the_clients_directory(
        session: Cli, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """docker/cli 23: ``-v .:/m`` and ``-v ./sub:/m`` are made absolute on the client. Nested
    binds are mounted parents first, whatever their order (moby sorts them)."""
    here = pathlib.Path(str(tmp_path)) / "here"
    (here / "sub").mkdir(parents=True)
    (here / "sub" / "inner").write_text("nested\n")
    monkeypatch.chdir(here)
    assert session.ok("run", "--rm", "-v", "./sub:/m/b", "-v", ".:/m", "busybox",
                      "cat", "/m/b/inner", "/m/sub/inner") == "nested\nnested\n"


def test_volumes_are_listed_inspected_and_removed_unless_in_use(session: Cli) -> None:
    """Docker's ``volume`` commands on the local driver: a volume a container (not removed)
    mounts is in use; ``rm -v`` keeps named volumes; ``prune -a`` takes the unused ones."""
    assert session.ok("volume", "create", "cli-made") == "cli-made\n"
    user = session.ok("run", "-d", "-v", "cli-used:/data", "busybox",
                      "sh", "-c", "echo kept > /data/f").strip()
    session.ok("wait", user)
    listed = session.ok("volume", "ls").splitlines()
    assert listed[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert {"cli-made", "cli-used"} <= {line.split()[1] for line in listed[1:]}
    # --format json: one object a line, keys sorted as Go writes a map (as ps and images)
    rows = [json.loads(line) for line in session.ok("volume", "ls", "--format",
                                                    "json").splitlines()]
    assert {"cli-made", "cli-used"} <= {row["Name"] for row in rows}
    assert all(list(row) == sorted(row) for row in rows)
    # Docker's volume context has Label(name) too (helper-50).
    assert session.ok("volume", "ls", "-f", "name=cli-made", "--format",
                      '{{.Name}}:{{.Label "com.docker.volume.anonymous"}}:') == "cli-made::\n"
    [inspected] = json.loads(session.ok("volume", "inspect", "cli-used"))
    assert inspected["Name"] == "cli-used" and inspected["Driver"] == "local"
    assert (inspected["Labels"], inspected["Options"]) == (None, None)  # Docker's nil maps
    assert session.ok("volume", "inspect", "-f", "{{.Labels}}|{{.Options}}",
                      "cli-used") == "map[]|map[]\n"  # ... as Go prints them (<no value>)
    # Go's RFC 3339 in the daemon's zone: "Z" for UTC (it was "+00:00").
    zone = "Z" if time.localtime().tm_gmtoff == 0 else r"[+-]\d\d:\d\d"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d" + zone, inspected["CreatedAt"])
    assert pathlib.Path(inspected["Mountpoint"], "f").read_text() == "kept\n"
    # Each command's own flags (one set for all made -f mean --force everywhere).
    assert session.ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "cli-used",
                      "cli-made") == "cli-used local\ncli-made local\n"
    partly = session("volume", "inspect", "cli-used", "cli-nothing")
    assert partly.returncode == 1 and "cli-nothing" in partly.stderr
    assert [volume["Name"] for volume in json.loads(partly.stdout)] == ["cli-used"]
    assert "cli-used\n" in session.ok("volume", "ls", "-q", "-f", "dangling=false")
    dangling = session.ok("volume", "ls", "-q", "--filter", "dangling=true").split()
    assert "cli-made" in dangling and "cli-used" not in dangling
    assert session.ok("volume", "ls", "-f", "name=cli-u", "--format",
                      "{{.Name}}:{{.Links}}") == "cli-used:1\n"
    assert session.ok("volume", "ls", "-q", "-f", "name=^cli-us", "-f", "driver=local") == (
        "cli-used\n")  # moby's name filter is a regular expression, its driver a name
    assert session.ok("volume", "ls", "-q", "-f", "driver=loc") == ""
    assert session("volume", "ls", "-f", "dangling=maybe").returncode == 1
    assert session.ok("volume", "ls", "-q=false").startswith("DRIVER")  # pflag's =false
    unknown = session("volume", "frobnicate")
    assert unknown.returncode == 1 and 'unknown command "frobnicate"' in unknown.stderr
    refused = session("volume", "rm", "cli-used")
    assert refused.returncode == 1
    assert one_line(refused.stderr) == (
        f"Error response from daemon: remove cli-used: volume is in use - [{user}]")
    missing = session("volume", "rm", "cli-nothing")
    assert missing.returncode == 1 and "No such volume: cli-nothing" in missing.stderr
    assert session.ok("volume", "rm", "-f", "cli-nothing") == "cli-nothing\n"
    session.ok("rm", "-v", user)
    assert "cli-used" in session.ok("volume", "ls", "-q").split()  # named: kept by rm -v
    pruned = session.ok("volume", "prune", "-a", "-f")
    assert "cli-used\n" in pruned and "cli-made\n" in pruned
    assert pruned.endswith("Total reclaimed space: 5B\n")
    assert not {"cli-made", "cli-used"} & set(session.ok("volume", "ls", "-q").split())
    bad = session("volume", "create", "x")
    assert bad.returncode == 1 and "volume name is too short" in bad.stderr


def test_inspect_shows_mounts_hostname_and_log_path(session: Cli,
                                                    tmp_path: pathlib.Path) -> None:
    """Fields scripts read from docker inspect: ``{{range .Mounts}}`` failed with "map has
    no entry for key" (helper-40)."""
    (tmp_path / "host").mkdir()
    session.ok("create", "--name", "mounted", "-h", "box", "-v", "insp-vol:/data",
               "-v", f"{tmp_path / 'host'}:/host:ro", "-v", "/anon", "busybox", "true")
    [document] = json.loads(session.ok("inspect", "mounted"))
    volume, bind, anonymous = document["Mounts"]
    assert volume == {"Type": "volume", "Name": "insp-vol", "Source": str(
        session.root / "volumes" / "insp-vol" / "_data"), "Destination": "/data",
        "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}
    assert bind == {"Type": "bind", "Source": str(tmp_path / "host"), "Destination": "/host",
                    "Mode": "ro", "RW": False, "Propagation": "rprivate"}  # as typed
    assert anonymous["Type"] == "volume" and anonymous["Destination"] == "/anon"
    assert document["Config"]["Volumes"] == {"/anon": {}}
    assert document["HostConfig"]["Binds"] == ["insp-vol:/data", f"{tmp_path / 'host'}:/host:ro"]
    assert document["Config"]["Hostname"] == "box"
    assert document["LogPath"].endswith(f"{document['Id']}-json.log")
    assert session.ok("inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}",
                      "mounted") == "/data /host /anon \n"
    session.ok("rm", "-v", "mounted")
    session.ok("volume", "rm", "insp-vol")  # made by the create, as moby's


def test_a_create_makes_its_volumes_in_use_before_any_start(session: Cli) -> None:
    """moby's registerMountPoints makes a container's named and anonymous volumes at its
    create: listed, and refused for removal while the container is there. They were made at
    its first start: ``volume rm`` of one a created container mounts said "No such volume"."""
    before = set(session.ok("volume", "ls", "-q").split())
    created = session.ok("create", "-v", "made-at-create:/data", "-v", "/anon",
                         "busybox", "true").strip()
    made = set(session.ok("volume", "ls", "-q").split()) - before
    [anonymous] = made - {"made-at-create"}
    assert "made-at-create" in made and re.fullmatch(r"[0-9a-f]{64}", anonymous)
    [inspected] = json.loads(session.ok("volume", "inspect", anonymous))
    assert inspected["Labels"] == {"com.docker.volume.anonymous": ""}
    refused = session("volume", "rm", "made-at-create")
    assert refused.returncode == 1 and one_line(refused.stderr) == (
        "Error response from daemon: remove made-at-create: volume is in use - "
        f"[{created}]")
    session.ok("rm", "-v", created)
    assert set(session.ok("volume", "ls", "-q").split()) - before == {"made-at-create"}
    session.ok("volume", "rm", "made-at-create")


def test_anonymous_volumes_go_with_rm_v_and_rm_or_a_prune(session: Cli) -> None:
    """Docker's ``-v /path``: a volume of a random name, made for the container."""
    before = set(session.ok("volume", "ls", "-q").split())
    kept = session.ok("run", "-d", "-v", "/data", "busybox", "sh", "-c",
                      "ls /data | wc -l; echo x > /data/f").strip()
    session.ok("wait", kept)
    [name] = set(session.ok("volume", "ls", "-q").split()) - before
    assert re.fullmatch(r"[0-9a-f]{64}", name)
    [inspected] = json.loads(session.ok("volume", "inspect", name))
    assert inspected["Labels"] == {"com.docker.volume.anonymous": ""}
    assert pathlib.Path(inspected["Mountpoint"], "f").read_text() == "x\n"
    session.ok("rm", "-v", kept)
    assert name not in session.ok("volume", "ls", "-q").split()
    session.ok("run", "--rm", "-v", "/scratch", "busybox", "true")
    left = session.ok("create", "-v", "/left", "busybox", "true").strip()
    session.ok("start", left)
    session.ok("wait", left)
    session.ok("rm", left)  # without -v: it stays, unused, until a prune
    [orphan] = set(session.ok("volume", "ls", "-q").split()) - before
    assert orphan in session.ok("volume", "prune", "-f")
    assert set(session.ok("volume", "ls", "-q").split()) == before
    refused = session("create", "-v", "/", "busybox", "true")
    assert refused.returncode == 1 and "destination can't be '/'" in refused.stderr


def test_a_bare_env_name_takes_the_clients_value_or_is_unset(session: Cli) -> None:
    """Docker's ``-e NAME``: the client's value if it has one, else no variable at all."""
    session.environment["BERTH_TEST_GIVEN"] = "from the client"
    session.environment.pop("BERTH_TEST_ABSENT", None)
    try:
        shown = session.ok("run", "--rm", "-e", "BERTH_TEST_GIVEN", "-e", "BERTH_TEST_ABSENT",
                           "busybox", "sh", "-c",
                           'echo "$BERTH_TEST_GIVEN"; env | grep -c BERTH_TEST_ABSENT; true')
    finally:
        del session.environment["BERTH_TEST_GIVEN"]
    assert shown == "from the client\n0\n"


def test_logs_follow_streams_until_the_container_exits(session: Cli) -> None:
    session.ok("run", "-d", "--name", "talker", "busybox", "sh", "-c",
               "for i in 1 2 3; do echo line $i; sleep 0.3; done")
    followed = session("logs", "-f", "talker", timeout=30)
    assert followed.returncode == 0
    assert followed.stdout == "line 1\nline 2\nline 3\n"
    session.ok("rm", "talker")


def test_history_shows_the_journal(session: Cli) -> None:
    session.ok("run", "--name", "journaled", "busybox", "true")
    rows = json.loads(session.ok("history", "journaled", "--format", "json"))
    events = [row["event"] for row in rows]
    assert events[0] == "create" and "start" in events and events[-1] == "die"
    assert [int(row["containerSeq"]) for row in rows] == list(range(1, len(rows) + 1))
    session.ok("rm", "journaled")


def test_a_second_daemon_on_the_same_root_is_refused(session: Cli) -> None:
    """It would run recovery on the live daemon's journal and take over its socket."""
    second = subprocess.run([BERTH, "daemon", "--backend", "runc"], env=session.environment,
                            capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode != 0
    assert "another berth daemon is running on" in second.stderr
    assert "Traceback" not in second.stderr
    assert session.ok("ps", "-a") is not None  # the first one still answers on its socket


def test_a_second_daemon_on_the_same_database_is_refused(session: Cli,
                                                          tmp_path: pathlib.Path) -> None:
    """Another root, the same journal (``--db``): its recovery would judge the live daemon's
    running containers by its own runtime root, find none, and record them exited."""
    running = session.ok("run", "-d", "busybox", "sleep", "1000").strip()
    try:
        second = subprocess.run(
            [BERTH, "daemon", "--backend", "runc", "--root", str(tmp_path / "other"),
             "--db", str(session.root / "berth.db")],
            env={**session.environment, "BERTH_ROOT": str(tmp_path / "other")},
            capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode != 0
        assert (f"another berth daemon is using the database {session.root / 'berth.db'}"
                in second.stderr), second.stderr
        assert json.loads(session.ok("inspect", running))[0]["State"]["Status"] == "running"
    finally:
        session.ok("rm", "-f", running)


def test_ps_quiet_lists_short_ids_as_docker_does(session: Cli) -> None:
    first = session.ok("create", "--name", "quiet-a", "busybox", "true").strip()
    second = session.ok("create", "--name", "quiet-b", "busybox", "true").strip()
    listed = session.ok("ps", "-aq").split()
    assert listed[:2] == [second[:12], first[:12]]  # newest first
    assert first[:12] not in session.ok("ps", "-q").split()  # without -a: running ones only
    session.ok("rm", "quiet-a", "quiet-b")


def test_inspect_and_ps_take_go_templates(session: Cli) -> None:
    container = session.ok("create", "--name", "formatted", "busybox", "sh", "-c",
                           "exit 3").strip()
    session.ok("start", "formatted")
    session.ok("wait", "formatted")
    assert session.ok("inspect", "-f", "{{.State.ExitCode}} {{.Name}}",
                      "formatted") == "3 /formatted\n"
    assert session.ok("inspect", "--format", "{{json .Config.Cmd}}",
                      "formatted") == '["sh","-c","exit 3"]\n'
    listed = session.ok("ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}}").splitlines()
    assert f"{container[:12]} formatted exited" in listed
    table = session.ok("ps", "-a", "--format", r"table {{.Names}}\t{{.Status}}").splitlines()
    assert table[0].split() == ["NAMES", "STATUS"]
    assert any(line.startswith("formatted ") and "Exited (3)" in line for line in table[1:])
    # Rows of different widths; the header names each field whatever its cell does.
    ragged = session.ok("ps", "-a", "--format",
                        r"table {{lower .Names}}{{if .Mounts}}\t{{.Mounts}}{{end}}").splitlines()
    assert ragged[0].split() == ["NAMES", "MOUNTS"]
    assert "formatted" in [row.strip() for row in ragged[1:]]
    # inspect takes the template as it is: a \n inside a string is the template's own.
    assert session.ok("inspect", "-f", r'{{join .Config.Cmd "\n"}}',
                      "formatted") == "sh\n-c\nexit 3\n"
    assert json.loads(session.ok("inspect", "-f", "json", "formatted"))["Id"] == container
    # Docker 23's ps --format json: one object a line, the row's fields (helper-45: it was
    # an array of inspect documents, oldest first).
    rows = [json.loads(line) for line in session.ok("ps", "-a", "--format", "json").splitlines()]
    [row] = [row for row in rows if row["Names"] == "formatted"]
    assert (row["ID"], row["State"], row["Image"]) == (container[:12], "exited", "busybox")
    assert row["Status"].startswith("Exited (3)") and list(row) == sorted(row)
    assert row["Size"] == "0B"  # Docker's without --size (helper-47)
    session.ok("rm", "formatted")


def test_a_bad_template_is_refused_as_docker_refuses_it(session: Cli) -> None:
    session.ok("create", "--name", "templated", "busybox", "true")
    unparsed = session("inspect", "-f", "{{.State.ExitCode", "templated")
    assert unparsed.returncode == 64
    assert unparsed.stderr.strip() == "Template parsing error: template: :1: unclosed action"
    failing = session("inspect", "-f", "{{.State.Nope}}", "templated")
    assert failing.returncode == 1 and failing.stdout == ""
    assert ('Template parsing error: template: :1:8: executing "" at <.State.Nope>: map has '
            'no entry for key "Nope"') in failing.stderr
    # docker ps: a template that does not parse, or fails on an empty row, exits 1.
    unparsed_ps = session("ps", "--format", "{{nope}}")
    assert unparsed_ps.returncode == 1
    # Docker's flag errors: out of int64 (it was accepted), a retry count that is no number.
    assert session("ps", "-n", "99999999999999999999").returncode == 125
    unknown = session("run", "--no-sig-proxy", "busybox", "true")  # pflag has no --no-*
    assert (unknown.returncode, unknown.stderr.splitlines()[0]) == (
        125, "unknown flag: --no-sig-proxy")
    stored = session("create", "--restart", "always", "busybox", "true")
    assert stored.returncode == 0 and stored.stderr.startswith(
        "WARNING: the restart policy 'always' is stored, not applied")
    session.ok("rm", stored.stdout.strip())
    retries = session("run", "--restart", "on-failure:x", "busybox", "true")
    assert (retries.returncode, one_line(retries.stderr)) == (
        125, 'invalid argument "on-failure:x" for "--restart" flag: maximum retry count must '
        "be an integer")
    assert unparsed_ps.stderr.strip() == ('failed to parse template: template: :1: function '
                                          '"nope" not defined')
    failing_ps = session("ps", "--format", "{{.Nope}}")
    assert failing_ps.returncode == 1
    assert failing_ps.stderr.startswith("failed to execute template: ")
    session.ok("rm", "templated")


def test_logs_tail_timestamps_and_a_time_window(session: Cli) -> None:
    session.ok("run", "--name", "chatty", "busybox", "sh", "-c",
               "for i in 1 2 3 4 5; do echo line $i; done")
    assert session.ok("logs", "chatty").splitlines() == [f"line {i}" for i in range(1, 6)]
    assert session.ok("logs", "--tail", "2", "chatty").splitlines() == ["line 4", "line 5"]
    assert session.ok("logs", "-n", "0", "chatty") == ""
    assert session.ok("logs", "--tail", "all", "chatty").count("line") == 5
    stamped = session.ok("logs", "-t", "--tail", "1", "chatty").split()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamped[0])  # all 9 digits
    assert stamped[1:] == ["line", "5"]
    assert session.ok("logs", "--since", "1h", "chatty").count("line") == 5
    assert session.ok("logs", "--until", "1h", "chatty") == ""  # all written after
    assert session.ok("logs", "--since", "2999-01-01T00:00:00Z", "chatty") == ""
    assert session.ok("logs", "--until", "0", "chatty").count("line") == 5  # 0: no bound
    assert session.ok("logs", "--until", "-1h", "chatty").count("line") == 5  # 1 h from now
    refused = session("logs", "--since", "yesterday", "chatty")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ('invalid value for "since": failed to parse value as '
                                      'time or duration: "yesterday"')
    bad_date = session("logs", "--since", "2013-13-01", "chatty")
    assert bad_date.returncode == 1 and "month out of range" in bad_date.stderr
    session.ok("rm", "chatty")


def test_run_takes_a_hostname_and_env_files(session: Cli, tmp_path: pathlib.Path) -> None:
    assert session.ok("run", "--rm", "-h", "web1", "busybox", "hostname") == "web1\n"
    assert session.ok("run", "--rm", "--hostname", "web2", "busybox", "hostname") == "web2\n"
    env_file = tmp_path / "env"
    env_file.write_text("# settings\n\nA=1\n  B=two words \r\nFROM_CLIENT\nKEPT=1\nKEPT\n")
    session.environment["FROM_CLIENT"] = "client"
    try:
        printed = session.ok("run", "--rm", "--env-file", str(env_file), "-e", "A=2",
                             "busybox", "env").splitlines()
    finally:
        del session.environment["FROM_CLIENT"]
    assert "A=2" in printed and "A=1" not in printed  # the file's first, -e then replaces
    assert "B=two words " in printed and "FROM_CLIENT=client" in printed
    assert "KEPT=1" in printed  # a bare name the client lacks is left out, not unset
    env_file.write_text("BAD NAME=1\n")
    refused = session("run", "--rm", "--env-file", str(env_file), "busybox", "true")
    assert refused.returncode == 125
    assert "variable 'BAD NAME' contains whitespaces" in refused.stderr
    missing = session("run", "--rm", "--env-file", str(tmp_path / "nope"), "busybox", "true")
    assert missing.returncode == 125 and "no such file or directory" in missing.stderr
    assert "usage: berth run" in session.ok("run", "--help")
    # Docker's --network host: a UTS namespace of its own, named by -h if given.
    assert session.ok("run", "--rm", "--network", "host", "-h", "on-host", "busybox",
                      "hostname") == "on-host\n"
    assert session.ok("run", "--rm", "--network", "host", "busybox",
                      "hostname") == f"{socket.gethostname()}\n"


def test_inspect_finds_an_image_or_a_volume_as_dockers_does(session: Cli) -> None:
    """docker inspect: the first container, image or volume of the name (--type: that kind
    only); an image by name, by ID or by a prefix of it."""
    images = {line.split()[0]: line.split()[1] for line in session.ok(
        "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").splitlines()}
    digest = images["busybox:latest"]
    session.ok("volume", "create", "insp-vol")
    session.ok("create", "--name", "insp-box", "busybox", "true")
    try:
        [image] = json.loads(session.ok("inspect", "busybox"))
        assert image["Id"] == digest and "busybox:latest" in image["RepoTags"]
        assert image["RootFS"] == {"Type": "layers", "Layers": [digest]}
        assert image["Os"] == "linux" and image["Size"] > 0
        by_id = session.ok("inspect", "-f", "{{.Id}}", digest.removeprefix("sha256:")[:12])
        assert by_id == f"{digest}\n"
        [volume] = json.loads(session.ok("inspect", "insp-vol"))
        assert volume["Name"] == "insp-vol" and volume["Driver"] == "local"
        mixed = session("inspect", "-f", "{{.Name}}", "insp-box", "insp-vol", "nothing")
        assert (mixed.returncode, mixed.stdout) == (1, "/insp-box\ninsp-vol\n")
        assert mixed.stderr == "Error: No such object: nothing\n"
        wrong_kind = session("inspect", "--type", "volume", "busybox")
        assert (wrong_kind.returncode, wrong_kind.stderr) == (
            1, "Error: No such volume: busybox\n")
        assert session("inspect", "--type", "image", "insp-box").stderr == (
            "Error: No such image: insp-box\n")
        bad = session("inspect", "--type", "thing", "busybox")
        assert (bad.returncode, bad.stderr) == (1, '"thing" is not a valid value for --type\n')
    finally:
        session.ok("rm", "insp-box")
        session.ok("volume", "rm", "insp-vol")


def test_labels_as_docker_keeps_shows_and_filters_them(session: Cli,
                                                       tmp_path: pathlib.Path) -> None:
    """-l/--label and --label-file (its lines first, the flags over them; a file's bare KEY
    is left out, as Docker reads label files without a lookup), shown by inspect's
    Config.Labels, ps's LABELS and {{.Label "key"}} (a table's header: the key's last part),
    filtered by ps -f label= (every one given must match) and events -f label= (over the
    event's attributes, name and image included)."""
    labels = tmp_path / "labels"
    labels.write_text("# a comment\ntier=back\nbare\nowner=\n\n")
    since = str(time.time())
    session.ok("create", "--name", "lab-a", "--label-file", str(labels), "-l", "tier=front",
               "-l", "app=shop=1", "-l", "com.example.app-name=cart", "busybox", "true")
    session.ok("create", "--name", "lab-b", "--label", "tier", "busybox", "true")
    try:
        inspected = json.loads(session.ok("inspect", "lab-a", "lab-b"))
        assert inspected[0]["Config"]["Labels"] == {"app": "shop=1", "owner": "",
                                                    "tier": "front",
                                                    "com.example.app-name": "cart"}
        assert inspected[1]["Config"]["Labels"] == {"tier": ""}

        def listed(*arguments: str, form: str = "{{.Names}}") -> list[str]:
            return session.ok("ps", "-a", *arguments, "--format", form).splitlines()

        assert listed("-f", "name=lab-a", form="{{.Labels}}") == [
            "app=shop=1,com.example.app-name=cart,owner=,tier=front"]
        assert [line.split() for line in listed(
            "-f", "name=lab-a", form='table {{.Names}}\t{{.Label "com.example.app-name"}}')] \
            == [["NAMES", "app", "name"], ["lab-a", "cart"]]
        assert listed("-f", "name=lab-",
                      form='{{.Names}}:{{.Label "tier"}}:{{.Label "x"}}:') == [
            "lab-b:::", "lab-a:front::"]  # newest first
        assert sorted(listed("-f", "label=tier")) == ["lab-a", "lab-b"]
        assert listed("-f", "label=tier=front") == ["lab-a"]
        assert listed("-f", "label=tier", "-f", "label=owner") == ["lab-a"]
        assert listed("-f", "label=nope") == []
        row = json.loads(session.ok("ps", "-a", "-f", "name=lab-a", "--format", "json"))
        assert row["Labels"] == "app=shop=1,com.example.app-name=cart,owner=,tier=front"
        assert "Label" not in row
        wrong = session("ps", "-a", "--format", "{{.Label}}")
        assert wrong.returncode != 0 and "wrong number of args for Label: want 1 got 0" \
            in wrong.stderr
        refused = session("create", "-l", "=x", "busybox", "true")
        assert (refused.returncode, refused.stderr) == (
            125, "invalid argument \"=x\" for \"-l, --label\" flag: invalid label '=x': "
                 "empty name\nSee 'berth create --help'.\n")
        until = str(time.time() + 1)

        def events(*filters: str) -> list[str]:
            return session.ok("events", "--since", since, "--until", until, *filters,
                              "--format", '{{.Actor.Attributes.name}} {{.Action}} '
                              '{{index .Actor.Attributes "tier"}}').splitlines()

        assert events("-f", "label=tier=front") == ["lab-a create front"]
        assert events("-f", "label=name=lab-b") == ["lab-b create "]  # moby: name is one too
        spaced = session("create", "-l", "a b=c", "busybox", "true")
        assert (spaced.returncode, spaced.stderr) == (
            125, "invalid argument \"a b=c\" for \"-l, --label\" flag: label 'a b' contains "
                 "whitespaces\nSee 'berth create --help'.\n")
        first = session("create", "--env-file", str(tmp_path / "none"), "-l", "=x", "busybox",
                        "true")  # the flag is checked as it is parsed: before any file is read
        assert first.returncode == 125 and first.stderr.startswith('invalid argument "=x"')
    finally:
        session.ok("rm", "lab-a", "lab-b")


def test_ps_filters_last_and_no_trunc(session: Cli) -> None:
    sleeper = session.ok("run", "-d", "--name", "flt-up", "busybox", "sleep", "1000").strip()
    assert session("run", "--name", "flt-a", "busybox", "sh", "-c", "exit 3").returncode == 3
    latest = session.ok("create", "--name", "flt-b", "busybox", "true").strip()
    try:
        def listed(*arguments: str) -> list[str]:
            return session.ok("ps", *arguments, "--format", "{{.Names}}").split()

        assert listed("--filter", "status=exited") == ["flt-a"]  # no -a needed, as Docker's
        assert listed("-a", "-f", "name=^/flt-", "-f", "status=running") == ["flt-up"]
        assert listed("-a", "--filter", "exited=3") == ["flt-a"]
        assert listed("-f", "name=flt") == ["flt-up"]  # without -a: the running ones
        assert listed("-l") == ["flt-b"] and listed("-n", "2") == ["flt-b", "flt-a"]
        assert listed("-n", "0") == listed()  # no limit: plain ps, as Docker's
        assert listed("-l", "-n", "2") == ["flt-b", "flt-a"]  # -n wins
        assert listed("-f", "name=^flt-up$") == ["flt-up"]  # NAME, not only /NAME
        assert session.ok("ps", "-q", "--no-trunc", "-f", "name=flt-up").split() == [sleeper]
        assert session.ok("ps", "-lq").split() == [latest[:12]]
        refused = session("ps", "--filter", "colour=red")
        assert refused.returncode == 1
        assert refused.stderr.strip() == "Error response from daemon: invalid filter 'colour'"
        malformed = session("ps", "--filter", "name")
        assert malformed.returncode == 125
        assert malformed.stderr.startswith('invalid argument "name" for "-f, --filter" flag')
    finally:
        session.ok("rm", "-f", "flt-up", "flt-a", "flt-b")


def test_import_reads_standard_input_for_a_dash(session: Cli, tmp_path: object) -> None:
    """``docker import - NAME``: the tarball comes from the standard input; an empty source is
    an error, not the current directory."""
    import io
    import pathlib
    import tarfile

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    piped = subprocess.run([BERTH, "import", "-", "piped"], input=archive.getvalue(),
                           env=session.environment, capture_output=True, check=False)
    assert piped.returncode == 0, piped.stderr
    digest = piped.stdout.decode().strip()
    assert digest.startswith("sha256:")
    listed = [line.split() for line in session.ok("images").splitlines()]
    assert listed[0] == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert listed[1][:3] == ["piped", "latest", digest[7:19]]  # the newest first
    assert listed[1][-1] == "2B"  # Docker's size: three digits, decimal units
    assert session.ok("images", "-q").splitlines()[0] == digest[7:19]
    # Docker's arguments, filters and formats (each was refused, helper-40).
    assert session.ok("images", "-q", "piped") == f"{digest[7:19]}\n"
    assert session.ok("images", "-q", "piped:nope") == ""
    assert session.ok("images", "--format", "{{.Repository}}:{{.Tag}}", "-f",
                      "reference=pip*") == "piped:latest\n"
    assert digest in session.ok("images", "--no-trunc", "piped")
    assert session.ok("images", "-a", "-q", "-f", "dangling=true") == ""
    assert session.ok("images", "-q", "-f", "since=busybox", "piped").split() == [digest[7:19]]
    assert session.ok("images", "-q", "-f", "before=busybox", "piped") == ""
    assert session.ok("images", "--format", "table {{.ID}}\t{{.Size}}", "piped"
                      ).split() == ["IMAGE", "ID", "SIZE", digest[7:19], "2B"]
    bogus = session("images", "-f", "colour=red")
    assert bogus.returncode == 1 and "invalid filter 'colour'" in bogus.stderr
    maybe = session("images", "-f", "dangling=maybe")
    assert maybe.returncode == 1 and "Invalid filter 'dangling=[maybe]'" in maybe.stderr
    assert session.ok("images", "-q", "p?ped") == f"{digest[7:19]}\n"
    assert session.ok("images", "-q", "*/piped") == ""  # Go's path.Match: * stops at /
    assert session.ok("images", "-q", "*ped:latest") == f"{digest[7:19]}\n"  # name:tag
    for pattern in ("[", "piped\\", "[]]", "[a-]*"):  # Go's ErrBadPattern
        assert session("images", pattern).returncode == 1, pattern
    assert session.ok("images", "-q", "[z-a]*") == ""  # a reversed range: nothing
    empty = session("import", "", "nothing")
    assert (empty.returncode, empty.stderr) == (
        1, "import source: a tarball, a directory or - (standard input)\n")
    remote = session("-H", "tcp://127.0.0.1:1", "import", "-", "far")
    assert remote.returncode == 1
    assert "needs a daemon on this host" in remote.stderr
    assert not list(pathlib.Path("/tmp").glob("berth-import-*"))  # the spool went
    session.ok("rmi", "piped")


def test_arguments_that_are_no_utf8_reach_the_container_as_go_sends_them(session: Cli) -> None:
    """The Docker CLI's JSON turns bytes that are no UTF-8 into U+FFFD; berth's CLI used to
    stop on a codec error (exit 1, a Python message)."""
    done = subprocess.run([BERTH.encode(), b"run", b"--rm", b"-e", b"V=\xff", b"busybox", b"sh",
                           b"-c", b'echo "$0 $V"', b"a\xfeb"], env=session.environment,
                          capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a\ufffdb \ufffd\n".encode()
    named = subprocess.run([BERTH.encode(), b"create", b"--name", b"ab\xff", b"busybox", b"true"],
                           env=session.environment, capture_output=True, check=False)
    assert named.returncode == 1
    assert "Invalid container name (ab\ufffd)" in named.stderr.decode()


def test_stop_and_restart_take_the_signal_to_stop_with(session: Cli) -> None:
    """Docker's ``stop -s`` and ``restart -s``: the Restart call used to drop the signal."""
    script = 'trap "" TERM; trap "echo got USR1; exit 5" USR1; while :; do sleep 0.1; done'
    session.ok("run", "-d", "--name", "signalled", "busybox", "sh", "-c", script)
    session.ok("restart", "-s", "USR1", "-t", "60", "signalled")
    assert session.ok("logs", "signalled") == "got USR1\n"
    assert session.ok("inspect", "-f", "{{.State.Running}}", "signalled") == "true\n"
    session.ok("stop", "--signal", "SIGUSR1", "-t", "60", "signalled")
    assert session.ok("inspect", "-f", "{{.State.ExitCode}}", "signalled") == "5\n"
    refused = session("stop", "-s", "NOPE", "signalled")
    assert (refused.returncode, refused.stderr) == (
        1, "Error response from daemon: Invalid signal: NOPE\n")
    session.ok("rm", "signalled")


def test_ps_shows_the_image_id_once_the_name_moved_to_other_content(session: Cli,
                                                                    tmp_path: object) -> None:
    """moby's list: the reference as given while it names the container's image, else the
    image's ID (truncated, as Docker's ps does)."""
    first = pathlib.Path(str(tmp_path)) / "first"
    first.mkdir()
    (first / "file").write_text("one")
    old = session.ok("import", str(first), "moving").strip()
    session.ok("create", "--name", "on-old", "moving", "true")
    assert "moving" in session.ok("ps", "-a", "--format", "{{.Names}} {{.Image}}").split()
    (first / "file").write_text("two")
    session.ok("import", str(first), "moving")  # the name moves to other content
    session.ok("create", "--name", "on-new", "moving", "true")
    shown = dict(line.split() for line in session.ok(
        "ps", "-a", "--format", "{{.Names}} {{.Image}}").splitlines())
    assert shown["on-old"] == old.removeprefix("sha256:")[:12]
    assert shown["on-new"] == "moving"
    untruncated = dict(line.split() for line in session.ok(
        "ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.Image}}").splitlines())
    assert untruncated["on-old"] == old
    # Docker's ancestor filter: the image the name names now, or an ID
    assert session.ok("ps", "-a", "-f", "ancestor=moving", "--format", "{{.Names}}") == (
        "on-new\n")
    assert session.ok("ps", "-a", "-f", f"ancestor={old[7:19]}", "--format",
                      "{{.Names}}") == "on-old\n"
    session.ok("rm", "on-old", "on-new")
    session.ok("rmi", "moving", old)


def test_a_foreground_run_whose_container_is_removed_gives_its_exit(session: Cli) -> None:
    """``rm -f`` of a foreground run's container: Docker's run answers 137 (its wait was set
    up before the start); berth's said "No such container"."""
    running = subprocess.Popen([BERTH, "run", "--name", "victim", "busybox", "sleep", "30"],
                               env=session.environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while "running" not in session("inspect", "-f", "{{.State.Status}}", "victim").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    session.ok("rm", "-f", "victim")
    _, stderr = running.communicate(timeout=30)
    assert (running.returncode, stderr) == (137, "")


def test_a_daemon_that_stops_ends_an_attached_run_at_once(tmp_path: pathlib.Path) -> None:
    """Attach watches the daemon's shutdown, as Logs and Wait do: the run is told the daemon
    is shutting down (it kept streaming through the grace period, then was cancelled)."""
    from tests.cli.conftest import start_daemon, stop_daemon
    from tests.integration.conftest import build_busybox_rootfs, leaks, stop_supervisor

    root = tmp_path / "root"
    daemon = start_daemon(root)
    cli = Cli(root)
    try:
        cli.ok("import", str(build_busybox_rootfs(tmp_path / "rootfs")), "busybox")
        running = subprocess.Popen(
            [BERTH, "run", "--name", "chatty", "busybox", "sh", "-c",
             "while true; do echo line; sleep 0.2; done"], env=cli.environment,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert running.stdout is not None
        assert running.stdout.readline() == "line\n"
        stop_daemon(daemon)
        _, errors = running.communicate(timeout=60)
        # One error, the attachment's (the wait that followed said CANCELLED too: helper-48).
        assert errors == "Error response from daemon: the berth daemon is shutting down\n"
        assert running.returncode == 1
    finally:
        if daemon.poll() is None:
            stop_daemon(daemon)
        daemon = start_daemon(root)
        cli("rm", "-f", "chatty")
        stop_daemon(daemon)
        stop_supervisor(root)
    assert leaks(root) == {}
