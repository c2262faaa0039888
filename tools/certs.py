"""Make a private CA and a server certificate with the openssl command line,
for TLS listeners in tests, the demo and first-time site set-up."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca_and_server(out: Path, server_name: str = "localhost", days: int = 825) -> dict[str, Path]:
    """Write ca.crt/ca.key and server.crt/server.key under `out` (keys 0600).
    The server certificate names `server_name` and 127.0.0.1."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = out / "ca.key", out / "ca.crt"
    key, csr, crt = out / "server.key", out / "server.csr", out / "server.crt"
    ext = out / "server.ext"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
             "-days", str(days), "-subj", "/CN=seatmon site CA")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={server_name}")
    ext.write_text(f"subjectAltName=DNS:{server_name},IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(crt), "-days", str(days), "-extfile", str(ext))
    for secret in (ca_key, key):
        secret.chmod(0o600)
    csr.unlink()
    ext.unlink()
    return {"ca": ca_crt, "ca_key": ca_key, "cert": crt, "key": key}
