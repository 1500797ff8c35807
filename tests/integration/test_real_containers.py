"""Real runc containers through the engine (issue: real containers)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from engine import linux, steps
from engine.container_config import ContainerConfig
from engine.errors import BerthError, InvalidParameter, System
from engine.failpoint import Failpoints
from engine.service import Engine
from engine.state import ContainerState
from engine.supervisor import exit_path
from engine.testing.rootfs import build_busybox_rootfs
from tests.integration.conftest import REASON, RealEngines, available, leaks

pytestmark = pytest.mark.skipif(not available, reason=REASON)
MS_SHARED = 1 << 20


def config(*command: str, **fields: object) -> ContainerConfig:
    return ContainerConfig(image="busybox", command=command, **fields)  # type: ignore[arg-type]


def log_lines(engine: Engine, container_id: str) -> list[dict[str, str]]:
    path = pathlib.Path(engine.saga.host.log_path(container_id))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exit_code_and_logs(engine: Engine) -> None:
    record = engine.create(config("sh", "-c", "echo hi; echo oops >&2; exit 3", name="echo"))
    engine.start("echo")
    done = engine.wait("echo", timeout=30)
    assert (done.state, done.exit_code) == (ContainerState.EXITED, 3)
    lines = log_lines(engine, record.id)
    assert any(line["log"] == "hi\n" and line["stream"] == "stdout" for line in lines)
    assert any(line["log"] == "oops\n" and line["stream"] == "stderr" for line in lines)
    assert all(line["time"].endswith("Z") for line in lines)


def test_stop_a_sleeping_container_then_start_it_again(engine: Engine) -> None:
    engine.create(config("sleep", "1000", name="sleeper"))
    engine.start("sleeper")
    running = engine.inspect("sleeper")
    assert running.state is ContainerState.RUNNING and running.pid > 0
    os.kill(running.pid, 0)  # the init really runs
    began = time.monotonic()
    stopped = engine.stop("sleeper", timeout=1)  # PID 1 ignores SIGTERM: SIGKILL after 1 s
    assert 0.9 < time.monotonic() - began < 10
    assert (stopped.state, stopped.exit_code) == (ContainerState.EXITED, 137)
    engine.start("sleeper")
    assert engine.inspect("sleeper").state is ContainerState.RUNNING
    engine.kill("sleeper")
    assert engine.inspect("sleeper").exit_code == 137


def test_filesystem_changes_survive_stop_and_start(engine: Engine) -> None:
    script = "if [ -f /marker ]; then cat /marker; else echo kept > /marker; fi"
    record = engine.create(config("sh", "-c", script, name="fs"))
    engine.start("fs")
    engine.wait("fs", timeout=30)
    assert log_lines(engine, record.id) == []
    engine.start("fs")
    engine.wait("fs", timeout=30)
    assert [line["log"] for line in log_lines(engine, record.id)] == ["kept\n"]


def test_rm_removes_the_upper_layer(engine: Engine, engines: RealEngines) -> None:
    record = engine.create(config("sh", "-c", "echo x > /file", name="gone"))
    engine.start("gone")
    engine.wait("gone", timeout=30)
    upper = engines.root / "containers" / record.id / "upper"
    assert (upper / "file").read_text() == "x\n"
    engine.remove("gone")
    assert not (engines.root / "containers" / record.id).exists()


def test_a_container_of_a_force_deleted_image_still_runs(engine: Engine,
                                                        busybox_rootfs: pathlib.Path,
                                                        tmp_path: pathlib.Path) -> None:
    """``rmi -f`` of an image a stopped container uses: the image goes, its files stay as
    the container's lower layer (it starts again), and go when the container is removed."""
    assert engine.images is not None
    content = tmp_path / "variant"
    shutil.copytree(busybox_rootfs, content, symlinks=True)
    (content / "variant").write_text("v\n")
    image = engine.images.import_image(str(content), "variant")
    engine.create(ContainerConfig(image="variant", command=("cat", "/variant"), name="kept"))
    assert engine.images.remove("variant", force=True).deleted == image.digest
    engine.start("kept")
    assert engine.wait("kept", timeout=30).exit_code == 0
    lower = pathlib.Path(engine.images.rootfs(image.digest))
    assert lower.is_dir()
    engine.remove("kept")
    assert not lower.exists()


def test_other_host_users_cannot_reach_a_containers_files(engine: Engine,
                                                         engines: RealEngines) -> None:
    """Docker's 0711 data root (CVE-2021-41091): a setuid file written in a container, its
    /dev/shm, its log, volumes and the journal are root's alone on the host."""
    record = engine.create(config("sh", "-c", "echo x > /file; echo out; sleep 60",
                                  name="private", mounts=("privvol:/data",),
                                  secrets=("token=hidden",)))
    engine.start("private")
    root = engines.root
    assert stat.S_IMODE(root.stat().st_mode) == 0o711
    for name in ("containers", "images", "volumes", "netns", "runc", "exits"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o700, name
    assert stat.S_IMODE((root / "berth.db").stat().st_mode) == 0o600
    container = root / "containers" / record.id
    deadline = time.monotonic() + 10
    while not (container / "upper" / "file").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for path in (container / "upper" / "file", container / "shm",
                 pathlib.Path(engine.saga.host.log_path(record.id)), root / "berth.db",
                 root / "volumes" / "privvol", root / "images"):
        denied = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 "ls", "-d", str(path)], capture_output=True, text=True,
                                check=False)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, path
    engine.remove("private", force=True)


def test_a_secret_is_readable_by_the_containers_user(engine: Engine) -> None:
    record = engine.create(config("cat", "/run/secrets/token", name="reader-1000",
                                  user="1000", secrets=("token=shared",)))
    engine.start(record.id)
    assert engine.wait(record.id, timeout=30).exit_code == 0
    assert [line["log"] for line in log_lines(engine, record.id)] == ["shared"]


def test_a_users_dev_shm_replaces_the_containers_own(engine: Engine,
                                                   tmp_path: pathlib.Path) -> None:
    """moby's setupIpcDirs: no /dev/shm tmpfs of its own under the user's mount."""
    (tmp_path / "shm").mkdir()
    (tmp_path / "shm" / "mine").write_text("user's\n")
    record = engine.create(config("sh", "-c", "grep -c ' /dev/shm ' /proc/self/mountinfo; "
                                  "cat /dev/shm/mine; echo $HOSTNAME", name="own-shm",
                                  mounts=(f"{tmp_path / 'shm'}:/dev/shm",)))
    engine.start(record.id)
    assert engine.wait(record.id, timeout=30).exit_code == 0
    assert [line["log"] for line in log_lines(engine, record.id)] == [
        "1\n", "user's\n", f"{record.id[:12]}\n"]
    assert not (engine.saga.host.container_dir(record.id) / "shm").exists()  # never made


@pytest.mark.parametrize("network", ["none", "host"])
def test_hostname_hosts_and_resolv_conf_are_dockers(engine: Engine, network: str) -> None:
    record = engine.create(config("sh", "-c", "cat /etc/hostname; grep -c localhost "
                                  "/etc/hosts; grep -c '^nameserver' /etc/resolv.conf; "
                                  "echo edited >> /etc/hosts", name=f"names-{network}",
                                  network_mode=network))
    engine.start(record.id)
    assert engine.wait(record.id, timeout=30).exit_code == 0
    hostname = record.id[:12] if network == "none" else socket.gethostname()
    lines = [line["log"] for line in log_lines(engine, record.id)]
    assert lines[0] == f"{hostname}\n"
    assert int(lines[1]) >= 1 and int(lines[2]) >= 1
    if network == "host":
        assert "edited" not in pathlib.Path("/etc/hosts").read_text()  # a copy, not the host's


def test_a_container_runs_under_the_default_seccomp_filter(engine: Engine) -> None:
    """As under Docker's default profile: filtered (mode 2), no new user namespace (a
    process has every capability inside one), no mount; the rest works."""
    script = ("grep Seccomp: /proc/self/status; unshare -U true 2>&1 || echo refused; "
              "unshare -U -r true 2>&1 || echo refused; echo forks | cat")
    record = engine.create(config("sh", "-c", script, name="filtered"))
    engine.start(record.id)
    assert engine.wait(record.id, timeout=30).exit_code == 0
    lines = [line["log"].strip() for line in log_lines(engine, record.id)]
    assert lines[0].split() == ["Seccomp:", "2"]
    assert lines.count("refused") == 2 and lines[-1] == "forks"
    assert any("Operation not permitted" in line for line in lines)


def test_dockers_network_sysctls_and_oom_score_reach_the_container(engine: Engine) -> None:
    """moby's defaults (helper-46): a user without capabilities may ping and bind port 80 in
    the container's own network namespace, and the container's oom score is 0, not the
    daemon's (raised here for the test, as a unit file could set it)."""
    script = ("cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/"
              "ip_unprivileged_port_start /proc/self/oom_score_adj; "
              "nc -l -p 80 & sleep 0.2; netstat -ltn | grep -c ':80 '; kill $!")
    # The supervisor runs runc create: the init would inherit its score.
    supervisor = engine.saga.runtime.supervisor  # type: ignore[attr-defined]
    score = pathlib.Path(f"/proc/{supervisor.ensure_running()}/oom_score_adj")
    before = score.read_text()
    score.write_text("300")
    try:
        record = engine.create(config("sh", "-c", script, name="netdefaults", user="1000"))
        engine.start(record.id)
        assert engine.wait(record.id, timeout=30).exit_code == 0
    finally:
        score.write_text(before)
    lines = [line["log"].split() for line in log_lines(engine, record.id)]
    assert lines == [["0", "2147483647"], ["0"], ["0"], ["1"]]
    engine.remove(record.id)


def test_a_new_volume_is_filled_from_the_containers_files(engine: Engine,
                                                          busybox_rootfs: pathlib.Path,
                                                          tmp_path: pathlib.Path) -> None:
    """moby's copyExistingContents: a new named volume gets what the image holds at its
    destination, owners and modes included; not with nocopy, not once it exists, and never
    through a symlink of the image's to the host's files."""
    assert engine.images is not None
    content = tmp_path / "seeded"
    shutil.copytree(busybox_rootfs, content, symlinks=True)
    (content / "seed").mkdir(mode=0o750)
    (content / "seed" / "file").write_text("from the image\n")
    os.chown(content / "seed", 1000, 1000)
    os.chown(content / "seed" / "file", 1000, 1000)
    (tmp_path / "host-only").mkdir()
    (tmp_path / "host-only" / "secret").write_text("host\n")
    (content / "escape").symlink_to(tmp_path / "host-only")
    engine.images.import_image(str(content), "seeded")
    script = "stat -c '%u %a' /seed; cat /seed/file; ls /escape | wc -l"
    record = engine.create(ContainerConfig(
        image="seeded", command=("sh", "-c", script), name="filled",
        mounts=("seedvol:/seed", "escvol:/escape")))
    engine.start(record.id)
    assert engine.wait(record.id, timeout=30).exit_code == 0
    lines = [line["log"] for line in log_lines(engine, record.id)]
    assert lines[:2] == ["1000 750\n", "from the image\n"]
    assert lines[2].strip() == "0"  # the link's target is looked up inside the image
    volumes = engine.saga.host.container_dir(record.id).parents[1] / "volumes"
    assert (volumes / "seedvol" / "_data" / "file").read_text() == "from the image\n"
    assert not any(volumes.glob("*/.fill*"))
    empty = engine.create(ContainerConfig(image="seeded", command=("ls", "-A", "/seed"),
                                          name="unfilled", mounts=("bare:/seed:nocopy",)))
    engine.start(empty.id)
    assert engine.wait(empty.id, timeout=30).exit_code == 0
    assert log_lines(engine, empty.id) == []
    engine.remove(record.id)
    engine.remove(empty.id)


def test_named_volume_content_persists_across_containers(engine: Engine) -> None:
    engine.create(config("sh", "-c", "echo shared > /data/note", name="writer",
                         mounts=("notes:/data",)))
    engine.start("writer")
    assert engine.wait("writer", timeout=30).exit_code == 0
    engine.remove("writer")
    reader = engine.create(config("cat", "/data/note", name="reader", mounts=("notes:/data:ro",)))
    engine.start("reader")
    assert engine.wait("reader", timeout=30).exit_code == 0
    assert [line["log"] for line in log_lines(engine, reader.id)] == ["shared\n"]


def test_a_host_file_is_bind_mounted_read_only(engine: Engine, tmp_path: pathlib.Path) -> None:
    host_file = tmp_path / "settings.conf"
    host_file.write_text("from the host\n")
    reader = engine.create(config("sh", "-c", "cat /etc/settings.conf; echo x > /etc/settings.conf",
                                  name="file-bind", mounts=(f"{host_file}:/etc/settings.conf:ro",)))
    engine.start("file-bind")
    assert engine.wait("file-bind", timeout=30).exit_code != 0  # the write is refused
    assert next(line["log"] for line in log_lines(engine, reader.id)) == "from the host\n"
    assert host_file.read_text() == "from the host\n" and host_file.is_file()
    engine.remove("file-bind")


def test_docker_mount_modes_reach_the_runtime(engine: Engine, tmp_path: pathlib.Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    linux.mount("tmpfs", str(shared), "tmpfs", 0, "size=1m")
    try:
        linux.mount("none", str(shared), "", MS_SHARED)  # a slave bind needs such a source
        (shared / "note").write_text("propagated\n")
        reader = engine.create(config("cat", "/mnt/note", name="modes",
                                      mounts=(f"{shared}:/mnt:ro,rslave,z",
                                              "modesvol:/data:nocopy,cached")))
        engine.start("modes")
        assert engine.wait("modes", timeout=30).exit_code == 0
        assert [line["log"] for line in log_lines(engine, reader.id)] == ["propagated\n"]
        engine.remove("modes")
    finally:
        linux.unmount(str(shared), lazy=True)


def test_a_propagation_the_source_mount_cannot_give_fails_the_start(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    """moby's ensureSharedOrSlave: this host's mounts are private, so rslave would do
    nothing. The start fails (System, as createSpec's errors) and leaves it created."""
    (tmp_path / "private").mkdir()
    engine.create(config("true", name="private-bind",
                         mounts=(f"{tmp_path / 'private'}:/mnt:rslave",)))
    with pytest.raises(BerthError, match="is not a shared or slave mount") as info:
        engine.start("private-bind")
    assert info.value.error_class.value == "System"
    assert engine.inspect("private-bind").state is ContainerState.CREATED
    engine.remove("private-bind")


def test_the_process_user_has_its_groups(engine: Engine, tmp_path: pathlib.Path) -> None:
    rootfs = build_busybox_rootfs(tmp_path / "users")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n"
                                           "alice:x:1000:1001::/:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nalicegrp:x:1001:\nstaff:x:50:alice,bob\n")
    assert engine.images is not None
    engine.images.import_image(str(rootfs), "users")
    for user in ("alice", "1000"):
        record = engine.create(ContainerConfig(image="users", command=("id",), user=user))
        engine.start(record.id)
        assert engine.wait(record.id, timeout=30).exit_code == 0
        assert [line["log"] for line in log_lines(engine, record.id)] == [
            "uid=1000(alice) gid=1001(alicegrp) groups=50(staff),1001(alicegrp)\n"]
        engine.remove(record.id)


def test_missing_command_gives_127_and_invalid_parameter(engine: Engine,
                                                         engines: RealEngines) -> None:
    engine.create(config("no-such-command", name="missing"))
    with pytest.raises(InvalidParameter, match="executable file not found"):
        engine.start("missing")
    record = engine.inspect("missing")
    assert (record.state, record.exit_code) == (ContainerState.CREATED, 127)
    assert leaks(engines.root) == {}


def test_an_anonymous_volume_on_a_file_of_the_image_fails_the_create(engine: Engine) -> None:
    """moby's create refuses ``-v /path`` on a file of the container's filesystem ("cannot
    mount volume over existing file"); berth made the container and its volume, and every
    start failed with runc's "not a directory"."""
    assert engine.volumes is not None
    with pytest.raises(System, match=r"^cannot mount volume over existing file, file "
                                     r"exists /bin/sh$"):
        engine.create(config("true", name="on-a-file", mounts=("/bin/sh",)))
    assert engine.list_containers(all=True) == [] and engine.volumes.list_volumes() == []
    made = engine.create(config("true", name="on-a-directory", mounts=("/bin", "/new")))
    engine.remove(made.id, volumes=True)


def test_a_working_directory_on_a_file_fails_the_create(engine: Engine) -> None:
    # moby makes the working directory at create and refuses one on a file there: no
    # container is made (berth used to fail only at start, with 127).
    with pytest.raises(System, match=r"^Cannot mkdir: /bin/sh is not a directory$"):
        engine.create(config("true", name="on-a-file", working_dir="/bin/sh/"))
    with pytest.raises(System, match=r"^mkdir /bin/sh: not a directory$"):
        engine.create(config("true", name="under-a-file", working_dir="/bin/sh/sub"))
    assert engine.list_containers(all=True) == []
    # A directory, or one that does not exist yet, is fine, as in moby.
    made = engine.create(config("pwd", name="made", working_dir="/new/dir"))
    engine.start(made.id)
    engine.wait(made.id, timeout=10)
    assert [line["log"] for line in log_lines(engine, made.id)] == ["/new/dir\n"]
    engine.remove(made.id)


def test_pause_and_unpause(engine: Engine) -> None:
    engine.create(config("sleep", "1000", name="frozen"))
    engine.start("frozen")
    engine.pause("frozen")
    pid = engine.inspect("frozen").pid
    state = pathlib.Path(f"/proc/{pid}/status").read_text()
    assert engine.inspect("frozen").state is ContainerState.PAUSED
    assert "State:" in state
    engine.unpause("frozen")
    assert engine.inspect("frozen").state is ContainerState.RUNNING
    engine.remove("frozen", force=True)


def test_network_none_has_only_loopback_and_host_sees_host(engine: Engine) -> None:
    isolated = engine.create(config("ip", "-o", "link", name="none-net"))
    engine.start("none-net")
    engine.wait("none-net", timeout=30)
    links = [line["log"].split(":")[1].strip() for line in log_lines(engine, isolated.id)]
    assert links == ["lo"]
    assert "UP" in log_lines(engine, isolated.id)[0]["log"]
    shared = engine.create(config("ip", "-o", "link", name="host-net", network_mode="host"))
    engine.start("host-net")
    engine.wait("host-net", timeout=30)
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                                check=True).stdout.splitlines()
    assert len(log_lines(engine, shared.id)) == len(host_links) > 1


@pytest.mark.parametrize("operation", ["kill", "stop", "rm -f"])
def test_signalling_a_container_that_exited_unrecorded_succeeds(engines: RealEngines,
                                                                operation: str) -> None:
    engine = engines.open()
    record = engine.create(config("sh", "-c", "exit 3", name="gone"))
    engine.start("gone")
    deadline = time.monotonic() + 10
    while not exit_path(engines.root, record.id).exists():  # the supervisor reaped it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert engine.inspect("gone").state is ContainerState.RUNNING  # nobody recorded it
    if operation == "rm -f":
        engine.remove("gone", force=True)
        assert engine.list_containers(all=True) == []
        return
    after = engine.kill("gone") if operation == "kill" else engine.stop("gone", timeout=1)
    assert (after.state, after.exit_code) == (ContainerState.EXITED, 3)


def test_an_auto_remove_container_is_removed_when_it_exits(engine: Engine) -> None:
    record = engine.create(config("sh", "-c", "echo bye; exit 3", name="rm-me",
                                  auto_remove=True))
    engine.start("rm-me")
    assert engine.wait(record.id, timeout=30).exit_code == 3  # answered after removal too
    assert engine.list_containers(all=True) == []
    assert not engine.saga.host.container_dir(record.id).exists()  # type: ignore[attr-defined]


def test_a_stale_runtime_container_left_by_a_failed_cleanup_is_replaced(
        engines: RealEngines) -> None:
    failing = engines.open(Failpoints({"cleanup.delete_runtime_container": "error"}))
    record = failing.create(config("sleep", "1000", name="stale"))
    failing.start("stale")
    failing.kill("stale")  # the exit's Cleanup cannot delete the runc container
    listed = subprocess.run(["runc", "--root", str(engines.root / "runc"), "list", "-q"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert record.id in listed
    engine = engines.open()
    engine.start("stale")  # moby's ReplaceContainer: force-delete the stale one, create again
    assert engine.inspect("stale").state is ContainerState.RUNNING
    engine.remove("stale", force=True)


PHASE_C = list(steps.START_STEPS[: steps.START_STEPS.index(steps.MARK_RUNNING) + 1])


@pytest.mark.parametrize("step", PHASE_C)
def test_failure_at_every_phase_c_step_leaves_nothing(engines: RealEngines, step: str) -> None:
    engine = engines.open(Failpoints({f"start.{step}": "error"}))
    engine.create(config("sleep", "1000", name="doomed", mounts=("vol:/vol",),
                         secrets=("token=s3cret",)))
    with pytest.raises(BerthError, match=f"failpoint start.{step}"):
        engine.start("doomed")
    assert engine.inspect("doomed").state is ContainerState.CREATED
    assert leaks(engines.root) == {}
    # runc killed the created init when the compensation deleted it: that exit, recorded by
    # the supervisor, is nobody's and must not stay behind either.
    assert sorted((engines.root / "exits").glob("*.json")) == []


DAEMON = """
import sys, time
from engine.composition import open_engine
from engine.container_config import ContainerConfig
engine, _ = open_engine(sys.argv[1], backend="runc")
engine.create(ContainerConfig(image="busybox", command=("sh", "-c", "sleep 2; exit 7"),
                              name="survivor"))
engine.start("survivor")
print("started", flush=True)
time.sleep(600)
"""


def test_exit_is_captured_while_the_daemon_is_dead(engines: RealEngines) -> None:
    engines.open().saga.db.close()  # imports the image
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, str(engines.root)],
                              stdout=subprocess.PIPE, text=True)
    assert daemon.stdout is not None
    assert daemon.stdout.readline().strip() == "started"
    started = time.time()
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    time.sleep(3)
    engine = engines.open()  # the restarted daemon: recovery reads the supervisor's record
    record = engine.inspect("survivor")
    assert (record.state, record.exit_code) == (ContainerState.EXITED, 7)
    assert record.finished_at is not None
    finished = record.finished_at / 1000
    assert started + 1.5 < finished < started + 3.0  # when it exited, not when we looked


CRASHING_START = """
import sys
from engine.composition import open_engine
from engine.container_config import ContainerConfig
engine, _ = open_engine(sys.argv[1], backend="runc")
engine.create(ContainerConfig(image="busybox", command=("sh", "-c", "exit 6"), name="ran"))
engine.start("ran")  # the failpoint ends this process once runc start has returned
"""


def test_a_start_cut_short_after_runc_start_keeps_the_task_exit(engines: RealEngines) -> None:
    """The daemon dies between runc start and recording the start; the task runs to its end
    meanwhile. The restarted daemon rolls the start forward and records the task's own exit
    code from the supervisor, not a failed start's 128."""
    engines.open().saga.db.close()  # imports the image
    crashed = subprocess.run([sys.executable, "-c", CRASHING_START, str(engines.root)],
                             env=dict(os.environ, BERTH_FAILPOINTS="start.start_task.after=crash"),
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 137, crashed.stderr
    engine = engines.open()
    record = engine.inspect("ran")
    assert (record.state, record.exit_code, record.error) == (ContainerState.EXITED, 6, "")
    with engine.saga.db.read() as reader:
        events = [row.event for row in reader.history(record.id)]
    assert events.count("start") == 1 and events.count("die") == 1
    engine.remove("ran")
    engine.saga.host.drain()  # type: ignore[attr-defined]
    assert leaks(engines.root) == {}


def test_a_created_task_killed_while_the_daemon_was_down_is_a_failed_start(
        engines: RealEngines) -> None:
    """The daemon dies after committing the start_task intent, before runc start; the created
    init is killed meanwhile. runc's exec fifo is still there: the task never ran, so the
    restarted daemon compensates the start (created, 128), with no start or die."""
    engines.open().saga.db.close()  # imports the image
    crashed = subprocess.run([sys.executable, "-c", CRASHING_START, str(engines.root)],
                             env=dict(os.environ, BERTH_FAILPOINTS="start.start_task=crash"),
                             capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 137, crashed.stderr
    runc = ["runc", "--root", str(engines.root / "runc")]
    (task,) = json.loads(subprocess.run([*runc, "list", "--format", "json"], check=True,
                                        capture_output=True, text=True).stdout)
    subprocess.run([*runc, "kill", task["id"], "KILL"], check=True)
    deadline = time.monotonic() + 10
    while json.loads(subprocess.run([*runc, "state", task["id"]], check=True,
                                    capture_output=True, text=True).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    engine = engines.open()
    record = engine.inspect("ran")
    assert (record.state, record.exit_code) == (ContainerState.CREATED, 128)
    assert "interrupted" in record.error
    with engine.saga.db.read() as reader:
        events = [row.event for row in reader.history(record.id)]
    assert "start" not in events and "die" not in events
    engine.remove("ran")
    engine.saga.host.drain()  # type: ignore[attr-defined]
    assert leaks(engines.root) == {}


def test_a_volume_its_container_emptied_is_not_filled_again_at_its_next_start(
        engine: Engine, busybox_rootfs: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """moby fills a volume once, at its container's create (populateVolumes): what the
    container deleted from it stays deleted when it starts again."""
    assert engine.images is not None
    content = tmp_path / "seeded"
    shutil.copytree(busybox_rootfs, content, symlinks=True)
    (content / "seed").mkdir()
    (content / "seed" / "file").write_text("from the image\n")
    engine.images.import_image(str(content), "seeded")
    record = engine.create(ContainerConfig(
        image="seeded", command=("sh", "-c", "ls /seed; rm -f /seed/file"), name="emptier",
        mounts=("once:/seed",)))
    for _ in range(2):
        engine.start(record.id)
        assert engine.wait(record.id, timeout=30).exit_code == 0
    assert [line["log"] for line in log_lines(engine, record.id)] == ["file\n"]
    engine.remove(record.id)
