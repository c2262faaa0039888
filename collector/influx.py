"""InfluxDB over its portable HTTP API: line protocol to /write, InfluxQL to
/query. Both exist on InfluxDB 1.x, 2.x (with a DBRP mapping) and 3.x, so one
client serves every site; influxdb-client's Point builds the lines.
"""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlencode

import urllib3


class InfluxError(RuntimeError):
    """InfluxDB answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class InfluxV1:
    def __init__(self, url: str, database: str, *, username: str | None = None,
                 password: str | None = None, token: str | None = None,
                 timeout: float = 30.0, retention_policy: str | None = None):
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.headers = {}
        if token:
            self.headers["Authorization"] = "Token " + token
        elif username:
            self.headers.update(urllib3.make_headers(basic_auth=f"{username}:{password or ''}"))
        self.http = urllib3.PoolManager(
            num_pools=2, maxsize=4, timeout=urllib3.Timeout(connect=5.0, read=timeout), retries=False
        )

    def _request(self, method: str, path: str, **kwargs) -> urllib3.BaseHTTPResponse:
        headers = dict(self.headers)
        headers.update(kwargs.pop("headers", {}))
        try:
            return self.http.request(method, self.url + path, headers=headers, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxError(f"InfluxDB at {self.url} is unreachable: {exc}") from exc

    def ping(self) -> str:
        """Return the server version, or raise InfluxError."""
        resp = self._request("GET", "/ping")
        if resp.status != 204:
            raise InfluxError(f"InfluxDB ping answered {resp.status}", resp.status)
        return resp.headers.get("X-Influxdb-Version", "unknown")

    def write_lines(self, lines: list[str], *, compress: bool = True) -> None:
        """Write line-protocol lines (precision ms). Raises InfluxError;
        `retryable` is False for a 4xx (the batch itself is bad)."""
        body = "\n".join(lines).encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if compress:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        fields = {"db": self.database, "precision": "ms"}
        if self.retention_policy:
            fields["rp"] = self.retention_policy
        path = "/write?" + urlencode(fields)
        resp = self._request("POST", path, body=body, headers=headers)
        if resp.status == 204:
            return
        detail = resp.data.decode(errors="replace")[:500]
        raise InfluxError(f"InfluxDB write answered {resp.status}: {detail}", resp.status,
                          retryable=resp.status >= 500 or resp.status == 429)

    def query(self, q: str, *, method: str = "GET") -> list[dict]:
        """Run InfluxQL; return the `results` list. Raises InfluxError on any error."""
        fields = {"q": q, "db": self.database, "epoch": "ms"}
        if method == "POST":
            resp = self._request("POST", "/query", fields=fields, encode_multipart=False)
        else:
            resp = self._request("GET", "/query", fields=fields)
        try:
            data = json.loads(resp.data)
        except ValueError:
            raise InfluxError(f"InfluxDB query answered {resp.status} with no JSON", resp.status)
        if resp.status != 200 or "error" in data:
            raise InfluxError(f"InfluxDB query failed ({resp.status}): {data.get('error')}", resp.status)
        for result in data.get("results", []):
            if "error" in result:
                raise InfluxError(f"InfluxQL error: {result['error']}", resp.status, retryable=False)
        return data.get("results", [])

    def create_database(self) -> None:
        self.query(f'CREATE DATABASE "{self.database}"', method="POST")
