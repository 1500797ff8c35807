#!/usr/bin/env python3
"""Start latency of a busybox ``true`` container: bare runc vs the engine (vs podman).

In one interleaved run (A, B, A, B ...), times:
  (a) bare runc from Python: ``runc create`` (this process is the child subreaper and waits for
      the init by pid, as conmon and containerd-shim do) + ``runc start`` + wait for the exit +
      ``runc delete``, on a bundle whose config.json is the engine's own spec for the image
      (its seccomp filter, its /etc/hostname, hosts and resolv.conf binds and its /dev/shm
      bind of a tmpfs, all made once);
  (b) the engine's API in-process: create, start, wait, remove (overlay rootfs, network
      namespace, /dev/shm tmpfs, journal, supervisor); what the host defers to its
      background thread (filesystem teardown, freeing the removed directory) is finished
      after each run, outside the timed regions, and reported separately;
  (c) ``podman run --rm`` of the same rootfs, when podman is installed.
Prints the median and p90 of each and the ratios to bare runc. Run as root.

Then, to show where the engine's share goes: the CPU time of the engine's own work in (b) (this
thread's, which runs the API in-process, and the supervisor's), and the same calls on the
in-process fake runtime and host, back to back, where nothing runs between them.

Usage: python bench/start_latency.py [--runs N] [--rootfs DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

from engine import linux
from engine.composition import open_engine
from engine.container_config import ContainerConfig
from engine.linux_host import SHM_SIZE, resolution_files
from engine.oci_spec import build_spec
from engine.service import Engine
from engine.supervisor import PID_FILE
from engine.testing import FakeHost, FakeRuntime
from engine.testing.rootfs import build_busybox_rootfs


def bare_runc(bundle: pathlib.Path, runc_root: pathlib.Path, index: int) -> float:
    container_id = f"bare-{os.getpid()}-{index}"
    pid_file = bundle / "init.pid"
    began = time.perf_counter()
    subprocess.run(["runc", "--root", str(runc_root), "create", "--bundle", str(bundle),
                    "--pid-file", str(pid_file), container_id], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    pid = int(pid_file.read_text())
    subprocess.run(["runc", "--root", str(runc_root), "start", container_id], check=True)
    os.waitpid(pid, 0)
    subprocess.run(["runc", "--root", str(runc_root), "delete", container_id], check=True)
    return time.perf_counter() - began


def engine_run(engine: Engine, deferred: list[float], cpu: list[float] | None = None) -> float:
    began, began_cpu = time.perf_counter(), time.thread_time()
    record = engine.create(ContainerConfig(image="busybox", command=("true",)))
    engine.start(record.id)
    engine.wait(record.id, timeout=30)
    engine.remove(record.id)
    elapsed = time.perf_counter() - began
    if cpu is not None:
        cpu.append(time.thread_time() - began_cpu)
    # The host defers tearing down detached filesystems and freeing removed directories to a
    # background thread. Finish that outside every timed region, so that it slows neither the
    # bare runc run that follows nor the next engine run, and report it on its own.
    engine.saga.host.drain()
    deferred.append(time.perf_counter() - began - elapsed)
    return elapsed


def fake_cycles(workdir: pathlib.Path, count: int) -> tuple[float, float]:
    """Median wall and thread CPU time of the same API calls on the fake runtime and host."""
    root = workdir / "fake"
    runtime = FakeRuntime()
    engine, _ = open_engine(root, backend="fake", runtime=runtime, host=FakeHost(root))
    walls: list[float] = []
    cpus: list[float] = []
    for index in range(count + 5):
        began, began_cpu = time.perf_counter(), time.thread_time()
        record = engine.create(ContainerConfig(image="busybox", command=("true",)))
        engine.start(record.id)
        runtime.exit(record.id, 0)  # the task ends at once, as `true` does
        engine.wait(record.id, timeout=30)
        engine.remove(record.id)
        if index >= 5:  # the first ones warm the code up
            walls.append(time.perf_counter() - began)
            cpus.append(time.thread_time() - began_cpu)
    engine.close()
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def supervisor_cpu(root: pathlib.Path) -> float:
    """The supervisor's CPU time so far, in seconds (clock ticks: 10 ms)."""
    fields = (pathlib.Path("/proc") / (root / PID_FILE).read_text().strip() / "stat"
              ).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def podman_run(rootfs: pathlib.Path) -> float:
    began = time.perf_counter()
    subprocess.run(["podman", "run", "--rm", "--runtime", "runc", "--network=none",
                    "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
                    "--rootfs", str(rootfs), "true"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def stop_supervisor(root: pathlib.Path) -> None:
    """The supervisor outlives daemons by design; a benchmark's own one goes with it."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int((root / PID_FILE).read_text()), signal.SIGTERM)


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rootfs", default=None, help="a rootfs dir (default: busybox-static)")
    args = parser.parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="berth-latency-"))
    rootfs = pathlib.Path(args.rootfs) if args.rootfs else build_busybox_rootfs(workdir / "rootfs")
    engine, _ = open_engine(workdir / "root", backend="runc")
    assert engine.images is not None
    engine.images.import_image(str(rootfs), "busybox")
    bundle = workdir / "bundle"
    bundle.mkdir()
    bare_config = {"cmd": ["true"], "network_mode": "none"}
    shm = bundle / "shm"  # the container's /dev/shm, as the engine's spec binds it
    shm.mkdir()
    linux.mount("tmpfs", str(shm), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV,
                f"mode=1777,size={SHM_SIZE}")
    spec = build_spec("bare", bare_config, {"rootfs": {"path": str(rootfs)},
                                            "ipc": {"path": str(shm)}},
                      resolution_files(str(bundle), "bare", bare_config))
    spec["linux"]["cgroupsPath"] = "/berth-bare"
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"]
                                   if ns["type"] != "network"] + [{"type": "network"}]
    (bundle / "config.json").write_text(json.dumps(spec))
    linux.set_child_subreaper()
    podman = shutil.which("podman") is not None
    runners = {"bare runc": lambda i: bare_runc(bundle, workdir / "runc", i),
               "engine": lambda i: engine_run(engine, deferred, cpu if i >= 0 else None)}
    deferred: list[float] = []
    cpu: list[float] = []
    if podman:
        runners["podman run --rm"] = lambda i: podman_run(rootfs)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():  # warm-up
        run(-1)
    supervisor_before = supervisor_cpu(workdir / "root")
    for index in range(args.runs):
        for name, run in runners.items():
            samples[name].append(run(index))
    supervisor_ms = (supervisor_cpu(workdir / "root") - supervisor_before) / args.runs * 1000
    bare_median, bare_p90 = summary(samples["bare runc"])
    print(f"start latency, busybox `true`, {args.runs} interleaved runs each "
          "(create + start + wait + remove)")
    print(f"{'path':<18}{'median ms':>11}{'p90 ms':>9}{'x bare (median)':>17}{'x bare (p90)':>14}")
    for name, values in samples.items():
        median, p90 = summary(values)
        print(f"{name:<18}{median:>11.1f}{p90:>9.1f}{median / bare_median:>17.2f}"
              f"{p90 / bare_p90:>14.2f}")
    if not podman:
        print("podman: not installed, skipped")
    print(f"engine work deferred past rm (drained between runs, untimed): median "
          f"{statistics.median(deferred) * 1000:.1f} ms")
    fake_wall, fake_cpu = fake_cycles(workdir, args.runs)
    print(f"engine's own CPU a run, interleaved with runc: median "
          f"{statistics.median(cpu) * 1000:.1f} ms in the API's thread, "
          f"{supervisor_ms:.1f} ms in the supervisor (mean)")
    print(f"the same calls on the in-process fake runtime and host, back to back: median "
          f"{fake_wall:.1f} ms ({fake_cpu:.1f} ms CPU)")
    engine_median = summary(samples["engine"])[0]
    verdict = "met" if engine_median <= 1.15 * bare_median else "NOT met"
    print(f"target engine <= 1.15x bare runc (median): {verdict} "
          f"({engine_median / bare_median:.2f}x)")
    engine.close()
    stop_supervisor(workdir / "root")
    linux.unmount(str(shm), lazy=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
