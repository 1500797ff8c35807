"""Certificates for the TLS tests, made with the openssl command: a CA, a server and a client
it signed, and a "rogue" client signed by another CA."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    rogue_cert: str  # signed by another CA
    rogue_key: str


def make_pki(directory: pathlib.Path) -> Pki:
    authority(directory, "ca")
    authority(directory, "rogue-ca")
    leaf(directory, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                    "extendedKeyUsage=serverAuth\n")
    leaf(directory, "client", "ca", "extendedKeyUsage=clientAuth\n")
    leaf(directory, "rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n")
    path = lambda name: str(directory / name)  # noqa: E731
    return Pki(ca=path("ca.pem"), server_cert=path("server.pem"), server_key=path("server.key"),
               client_cert=path("client.pem"), client_key=path("client.key"),
               rogue_cert=path("rogue.pem"), rogue_key=path("rogue.key"))


def _openssl(*arguments: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def authority(directory: pathlib.Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
             "-out", f"{name}.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)


def leaf(directory: pathlib.Path, name: str, ca: str, extensions: str) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             cwd=directory)
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
             "-extfile", f"{name}.ext", cwd=directory)
