"""A local certificate authority and server certificates for the local Kafka and Postgres.

TLS on a developer machine or in CI needs certificates a client can verify for real (name and
chain), not ``verify=False``: one CA per state folder (``<state_dir>/tls/ca.pem``) signs a server
certificate per service for ``127.0.0.1`` and ``localhost``. Clients trust ``ca.pem``; private
keys stay in the state folder, readable by their owner only. Made with the openssl command line,
so no extra Python package is needed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from oddsflow.services.prereq import PrerequisiteError, require_binary

HOSTS = ("127.0.0.1", "localhost")
DAYS = 825


@dataclass(frozen=True)
class ServerCert:
    """A signed server certificate, its private key, and the CA that signed it."""

    cert: Path
    key: Path
    ca: Path


def tls_dir(state_dir: Path) -> Path:
    return state_dir / "tls"


def _openssl(*args: str, cwd: Path) -> None:
    openssl = require_binary("openssl", "install openssl (apt-get install openssl)")
    proc = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise PrerequisiteError(
            f"oddsflow: openssl {args[0]} failed: {(proc.stderr or proc.stdout).strip()[-400:]}"
        )


def ensure_ca(state_dir: Path) -> tuple[Path, Path]:
    """The local CA (certificate, key), created once per state folder."""
    d = tls_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o711)
    ca, key = d / "ca.pem", d / "ca.key"
    if ca.exists() and key.exists():
        return ca, key
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.name,
        "-out",
        ca.name,
        "-days",
        str(DAYS),
        "-subj",
        "/CN=oddsflow local CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    os.chmod(key, 0o600)
    os.chmod(ca, 0o644)
    return ca, key


def ensure_server_cert(state_dir: Path, name: str, hosts: tuple[str, ...] = HOSTS) -> ServerCert:
    """A certificate for ``hosts`` signed by the local CA (``<name>.pem``, ``<name>.key``)."""
    ca, ca_key = ensure_ca(state_dir)
    d = tls_dir(state_dir)
    cert, key = d / f"{name}.pem", d / f"{name}.key"
    if cert.exists() and key.exists():
        return ServerCert(cert, key, ca)
    san = ",".join(
        f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}" for h in hosts
    )
    ext = d / f"{name}.ext"
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    csr = d / f"{name}.csr"
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.name,
        "-out",
        csr.name,
        "-subj",
        f"/CN={hosts[0]}",
        cwd=d,
    )
    os.chmod(key, 0o600)
    _openssl(
        "x509",
        "-req",
        "-in",
        csr.name,
        "-CA",
        ca.name,
        "-CAkey",
        ca_key.name,
        "-CAcreateserial",
        "-out",
        cert.name,
        "-days",
        str(DAYS),
        "-extfile",
        ext.name,
        cwd=d,
    )
    csr.unlink(missing_ok=True)
    ext.unlink(missing_ok=True)
    return ServerCert(cert, key, ca)


def ensure_pkcs12(state_dir: Path, name: str) -> tuple[Path, str]:
    """The server certificate as a PKCS#12 keystore for Java (Kafka), and its password.

    The password is random, kept next to the keystore (mode 0600): it protects nothing the file
    permissions do not, but Java keystores require one.
    """
    server = ensure_server_cert(state_dir, name)
    d = tls_dir(state_dir)
    store, pw_file = d / f"{name}.p12", d / f"{name}.p12.password"
    if store.exists() and pw_file.exists():
        return store, pw_file.read_text().strip()
    password = secrets.token_urlsafe(24)
    pw_file.touch(mode=0o600)
    pw_file.write_text(password)
    _openssl(
        "pkcs12",
        "-export",
        "-in",
        server.cert.name,
        "-inkey",
        server.key.name,
        "-certfile",
        server.ca.name,
        "-name",
        name,
        "-out",
        store.name,
        "-passout",
        f"file:{pw_file.name}",
        cwd=d,
    )
    os.chmod(store, 0o600)
    return store, password
