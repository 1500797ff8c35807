"""The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, as Docker's daemon writes
them."""

from __future__ import annotations

import pathlib

from engine import linux_host
from engine.linux_host import _without_loopback_nameservers, resolution_files


def test_loopback_nameservers_are_left_out_and_google_s_used_when_none_is_left() -> None:
    assert _without_loopback_nameservers(
        "search example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n") == (
        "search example.com\nnameserver 10.0.0.2\n")
    assert _without_loopback_nameservers("nameserver 127.0.0.53\nnameserver ::1\n") == (
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\n")


def test_the_files_of_a_container_with_its_own_network(tmp_path: pathlib.Path) -> None:
    files = resolution_files(str(tmp_path), "c" * 64, {"network_mode": "none"})
    assert sorted(files) == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
    assert pathlib.Path(files["/etc/hostname"]).read_text() == "c" * 12 + "\n"
    hosts = pathlib.Path(files["/etc/hosts"]).read_text().splitlines()
    assert hosts[:2] == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    named = resolution_files(str(tmp_path), "c" * 64, {"hostname": "web"})
    assert pathlib.Path(named["/etc/hostname"]).read_text() == "web\n"


def test_the_host_network_gets_copies_of_the_hosts_files(tmp_path: pathlib.Path) -> None:
    files = resolution_files(str(tmp_path), "h" * 64, {"network_mode": "host"})
    assert pathlib.Path(files["/etc/hosts"]).read_text() == linux_host._host_file("/etc/hosts")
    assert pathlib.Path(files["/etc/resolv.conf"]).read_text() == (
        linux_host._host_file("/etc/resolv.conf"))
