"""Make a private CA and a server certificate with the openssl command line,
for TLS listeners in tests, the demo and a site's broker (`seatmon broker
certs`)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _alt_names(names: list[str]) -> str:
    out = []
    for name in dict.fromkeys(names):
        try:
            out.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            out.append(f"DNS:{name}")
    return ",".join(out)


def make_ca(ca_crt: Path, ca_key: Path, days: int = 3650) -> None:
    """A self-signed CA: its certificate (what units trust) and key (0600)."""
    for path in (ca_crt, ca_key):
        path.parent.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
             "-days", str(days), "-subj", "/CN=seatmon site CA")
    ca_key.chmod(0o600)


def make_server(ca_crt: Path, ca_key: Path, crt: Path, key: Path, names: list[str], days: int = 825) -> None:
    """A server certificate signed by the CA for `names` (host names or IP
    addresses; the first is its CN), and its key (0600)."""
    for path in (crt, key):
        path.parent.mkdir(parents=True, exist_ok=True)
    csr, ext = crt.with_name(crt.name + ".csr"), crt.with_name(crt.name + ".ext")
    try:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                 "-subj", f"/CN={names[0]}")
        key.chmod(0o600)
        ext.write_text(f"subjectAltName={_alt_names(names)}\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
                 "-CAserial", str(ca_key.with_name(ca_key.name + ".srl")), "-out", str(crt), "-days", str(days),
                 "-extfile", str(ext))
    finally:
        for tmp in (csr, ext):
            tmp.unlink(missing_ok=True)


def make_ca_and_server(out: Path, server_name: str = "localhost", days: int = 825) -> dict[str, Path]:
    """Write ca.crt/ca.key and server.crt/server.key under `out` (keys 0600).
    The server certificate names `server_name` and 127.0.0.1."""
    made = {"ca": out / "ca.crt", "ca_key": out / "ca.key", "cert": out / "server.crt", "key": out / "server.key"}
    make_ca(made["ca"], made["ca_key"], days)
    make_server(made["ca"], made["ca_key"], made["cert"], made["key"], [server_name, "127.0.0.1"], days)
    return made
