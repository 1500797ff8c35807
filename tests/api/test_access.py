"""Who may talk to the daemon: the unix socket's file mode, and mutual TLS on TCP."""

from __future__ import annotations

import os
import pathlib
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from engine.api.server import SOCKET_MODE, Tls, build_server, listen
from engine.api.v1 import system_pb2 as spb
from engine.api.v1 import system_pb2_grpc as system_rpc
from engine.client import connect
from engine.errors import InvalidParameter
from tests.api.conftest import CALL_TIMEOUT, ApiDaemon, failure, make_traversable, start_daemon
from tests.api.pki import Pki, make_pki

# Runs as root until it has imported what it needs (the interpreter lives under /root, which
# only root may enter), then becomes the given user before it opens any connection.
CLIENT = """
import os, sys
import grpc
import grpc._channel, grpc._interceptor  # imported lazily by grpc, which nobody cannot do
from engine.api.v1 import system_pb2, system_pb2_grpc
from engine.client import connect
address, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if uid != os.getuid():
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
print("uid", os.getuid(), os.geteuid(), flush=True)
channel = connect(address)
try:
    reply = system_pb2_grpc.SystemStub(channel).Version(system_pb2.VersionRequest(), timeout=10)
except grpc.RpcError as error:
    print("refused", error.code().name, error.details(), flush=True)
    sys.exit(3)
print("served", reply.version, flush=True)
"""


def call_version_as(address: str, uid: int, gid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLIENT, address, str(uid), str(gid)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


def test_the_socket_is_mode_0660(daemon: ApiDaemon) -> None:
    mode = os.stat(daemon.socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == SOCKET_MODE == 0o660


def test_a_stale_socket_file_is_replaced(daemon_root: pathlib.Path) -> None:
    daemon_root.mkdir(parents=True)
    (daemon_root / "berth.sock").write_text("left by a daemon that died")
    daemon = start_daemon(daemon_root)
    try:
        assert stat.S_ISSOCK(os.stat(daemon.socket_path).st_mode)
        assert daemon.system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version
    finally:
        daemon.stop()


def test_a_user_without_access_to_the_socket_is_refused(daemon: ApiDaemon,
                                                        nobody: pwd.struct_passwd) -> None:
    assert os.geteuid() == 0, "the daemon's tests run as root"
    make_traversable(pathlib.Path(daemon.socket_path).parent)
    # The owner is served.
    owner = call_version_as(daemon.address, 0, 0)
    assert owner.returncode == 0, owner.stdout + owner.stderr
    assert "served" in owner.stdout
    # Another user, who can reach the directory but has no write permission on the socket.
    other = call_version_as(daemon.address, nobody.pw_uid, nobody.pw_gid)
    assert f"uid {nobody.pw_uid} {nobody.pw_uid}" in other.stdout, other.stdout + other.stderr
    assert other.returncode == 3, other.stdout + other.stderr
    assert "refused UNAVAILABLE" in other.stdout
    assert "permission denied" in other.stdout.lower()
    # The control: the same user, once the mode lets everyone in, is served; so the refusal
    # above came from the socket's mode and nothing else.
    os.chmod(daemon.socket_path, 0o666)
    opened = call_version_as(daemon.address, nobody.pw_uid, nobody.pw_gid)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    # And the daemon is still serving its owner.
    assert daemon.system.Version(spb.VersionRequest(), timeout=CALL_TIMEOUT).version


# -- mutual TLS ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_address(daemon: ApiDaemon, pki: Pki) -> Iterator[str]:
    """The daemon's engine served again on TCP with mutual TLS; the address bound."""
    server = build_server(daemon.engine, data_root=str(daemon.root), backend="fake",
                          reload=lambda: daemon.engine.config.current())
    address = listen(server, "tcp://127.0.0.1:0",
                     tls=Tls(pki.server_cert, pki.server_key, pki.ca))
    server.start()
    yield address
    server.stop(None).wait()


def version(channel: grpc.Channel) -> spb.VersionResponse:
    return system_rpc.SystemStub(channel).Version(spb.VersionRequest(), timeout=CALL_TIMEOUT)


def test_mutual_tls_serves_a_client_with_a_valid_certificate(tls_address: str, pki: Pki
                                                             ) -> None:
    host, _, port = tls_address.removeprefix("tcp://").rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0
    channel = connect(tls_address, tls_ca=pki.ca, tls_cert=pki.client_cert,
                      tls_key=pki.client_key)
    try:
        assert version(channel).version
    finally:
        channel.close()


@pytest.mark.parametrize("client", ["no certificate", "another CA's certificate", "plaintext"])
def test_mutual_tls_refuses_other_clients(tls_address: str, pki: Pki, client: str) -> None:
    if client == "no certificate":
        channel = connect(tls_address, tls_ca=pki.ca)
    elif client == "another CA's certificate":
        channel = connect(tls_address, tls_ca=pki.ca, tls_cert=pki.rogue_cert,
                          tls_key=pki.rogue_key)
    else:
        channel = connect(tls_address)
    try:
        error = failure(lambda: version(channel))
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    finally:
        channel.close()


def test_plain_tcp_needs_tls_or_an_explicit_force(daemon: ApiDaemon) -> None:
    server = build_server(daemon.engine, data_root=str(daemon.root), backend="fake",
                          reload=lambda: daemon.engine.config.current())
    try:
        with pytest.raises(InvalidParameter):
            listen(server, "tcp://127.0.0.1:0")
        with pytest.raises(InvalidParameter):
            listen(server, "http://127.0.0.1:0")
        address = listen(server, "tcp://127.0.0.1:0", insecure=True)
        server.start()
        channel = connect(address)
        try:
            assert version(channel).version
        finally:
            channel.close()
    finally:
        server.stop(None).wait()
