"""The default seccomp filter of a container: what Docker's default profile refuses a process
without CAP_SYS_ADMIN, written as a deny list over an allowing default.

Docker allows a list of ~350 system calls and refuses the rest; this filter refuses, with
EPERM, the calls that list leaves out or grants only with a capability the default set does not
have (kernel modules and kexec, the keyring, bpf, perf events, clock and reboot, swap, quotas,
mounts and namespaces, NUMA memory policy, handles by inode, io_uring, and the obsolete ones;
``ptrace`` and ``process_vm_readv``/``writev`` stay allowed, as Docker allows them on kernels
from 4.8). A new user namespace is refused in ``clone`` (its CLONE_NEWUSER flag) and
``unshare`` altogether: inside one, a process has every capability over what it makes (the way
most container escapes start); ``clone3`` answers ENOSYS, so that the C library falls back to
``clone``, whose flags a filter can read. ``personality`` takes only the values Docker's
profile allows. Calls the kernel or libseccomp does not know are
skipped by the runtime (runc: an unknown name is ignored).
"""

from __future__ import annotations

import platform
from typing import Any

CLONE_NEWUSER = 0x10000000
ENOSYS = 38
# personality(2) values Docker's profile allows: PER_LINUX, PER_LINUX32, each with UNAME26,
# and the query. The others (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, other ABIs...) are refused.
PERSONALITY_ALLOWED = frozenset({0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF})
_QUERY_BIT = 1 << 31
# The host's native ABI and those its kernel also runs (a 32-bit call skips no rule).
_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}
REFUSED = [
    # kernel modules, kexec, the kernel's log and its tunables
    "create_module", "delete_module", "finit_module", "get_kernel_syms", "init_module",
    "query_module", "kexec_file_load", "kexec_load", "syslog", "_sysctl", "sysfs",
    # keys, bpf, perf events, io_uring (Docker 25 on), accounting, other processes' files
    "add_key", "keyctl", "request_key", "bpf", "perf_event_open", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "acct", "lookup_dcookie", "kcmp", "pidfd_getfd",
    # clocks, reboot, swap, quotas, I/O ports
    "clock_adjtime", "clock_settime", "settimeofday", "stime", "reboot", "swapon",
    "swapoff", "quotactl", "quotactl_fd", "ioperm", "iopl",
    # mounts and namespaces
    "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "setns", "unshare", "nfsservctl",
    # NUMA memory policy, files by handle, userfaultfd, obsolete calls
    "get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
    "name_to_handle_at", "open_by_handle_at", "userfaultfd", "uselib", "ustat", "vm86",
    "vm86old",
]


def default_profile() -> dict[str, Any]:
    """The ``linux.seccomp`` object of a container's spec."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": list(_ARCHITECTURES.get(platform.machine(), [])),
        "syscalls": [
            {"names": list(REFUSED), "action": "SCMP_ACT_ERRNO"},
            {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
            *_personality_rules(),
        ],
    }


def _personality_rules() -> list[dict[str, Any]]:
    """Refuse every ``personality`` value outside ``PERSONALITY_ALLOWED``, one masked test a
    rule (a rule's tests of one argument are ORed by runc, ANDed by others: one each is what
    all read alike). With bit 31 clear, only bits 3 and 17 may be set; with it set, only the
    query (every bit set) is allowed."""
    free = 0x8 | 0x20000
    rules = []
    for bit in range(31):
        mask = 1 << bit
        if not mask & free:  # this bit without bit 31: a value not allowed
            rules.append(_masked("personality", mask | _QUERY_BIT, mask))
        rules.append(_masked("personality", mask | _QUERY_BIT, _QUERY_BIT))  # 31 set, this not
    return rules


def _masked(name: str, mask: int, value: int) -> dict[str, Any]:
    return {"names": [name], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": mask, "valueTwo": value,
                      "op": "SCMP_CMP_MASKED_EQ"}]}
