"""A minimal busybox root filesystem, built from Debian's busybox-static, for tests and
benchmarks of real containers."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

BUSYBOX = "/bin/busybox"


def build_busybox_rootfs(target: pathlib.Path) -> pathlib.Path:
    """Lay out ``target`` as a rootfs: busybox and its applets in /bin, root and nobody in
    /etc/passwd and /etc/group. Raises OSError, CalledProcessError."""
    (target / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, target / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (target / "bin" / applet).symlink_to("busybox")
    for directory in ("proc", "dev", "sys", "tmp", "etc", "root", "run"):
        (target / directory).mkdir(exist_ok=True)
    (target / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                           "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (target / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return target
