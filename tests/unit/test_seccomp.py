"""The default seccomp filter's argument rules, read as the kernel's filter applies them."""

from __future__ import annotations

import random

from engine.seccomp import default_profile

# Docker's default profile: PER_LINUX, PER_LINUX32, each with UNAME26, and the query.
DOCKER_PERSONALITIES = {0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF}


def refused(name: str, argument: int) -> bool:
    """Whether a rule of the profile refuses ``name`` called with ``argument`` as its first
    argument (masked tests only: value is the mask, valueTwo the value, as in Docker's)."""
    for rule in default_profile()["syscalls"]:
        if name not in rule["names"]:
            continue
        tests = rule.get("args") or []
        if all(argument & test["value"] == test["valueTwo"] for test in tests
               if test["op"] == "SCMP_CMP_MASKED_EQ"):
            return True
    return False


def test_personality_takes_only_the_values_dockers_profile_allows() -> None:
    """ADDR_NO_RANDOMIZE (0x40000) was allowed: a container could turn off its own address
    randomisation, which Docker refuses (helper-41)."""
    for value in DOCKER_PERSONALITIES:
        assert not refused("personality", value), hex(value)
    others = [1 << bit for bit in range(32)] + [0xFFFFFFFE, 0x7FFFFFFF, 0x20009, 0x40008]
    others += random.Random(7).sample(range(1 << 32), 2000)
    for value in others:
        if value not in DOCKER_PERSONALITIES:
            assert refused("personality", value), hex(value)


def test_clone_is_refused_a_user_namespace_only() -> None:
    assert refused("clone", 0x10000000 | 0x11)  # CLONE_NEWUSER | SIGCHLD
    assert not refused("clone", 0x01200011)  # fork's flags
