"""InfluxDB over its portable HTTP API: line protocol to /write, InfluxQL to
/query. Both exist on InfluxDB 1.x, 2.x (with a DBRP mapping) and 3.x, so one
client serves every site; influxdb-client's Point builds the lines.
"""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlencode

import urllib3


def tag_literal(value: str) -> str:
    """A string as an InfluxQL literal (a tag or field value in WHERE)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
        self.compress = True
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

    def write_lines(self, lines: list[str], *, compress: bool | None = None) -> None:
        """Write line-protocol lines (precision ms). Raises InfluxError;
        `retryable` is False for a 4xx (the batch itself is bad)."""
        if compress is None:
            compress = self.compress
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


class InfluxV2:
    """InfluxDB 2.x's native /api/v2/write through influxdb-client (token,
    org, bucket), for sites that run 2.x without a DBRP mapping. Reads still go
    through InfluxQL /query, which needs the mapping; see docs/collector.md."""

    def __init__(self, url: str, bucket: str, *, token: str, org: str, timeout: float = 30.0):
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org
        self.client = InfluxDBClient(url=self.url, token=token, org=org, timeout=int(timeout * 1000),
                                     enable_gzip=True)
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)

    def ping(self) -> str:
        if not self.client.ping():
            raise InfluxError(f"InfluxDB at {self.url} is unreachable")
        return self.client.version()

    def write_lines(self, lines: list[str], *, compress: bool = True) -> None:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self.write_api.write(bucket=self.bucket, org=self.org, record=lines, write_precision=WritePrecision.MS)
        except ApiException as exc:
            status = exc.status or 0
            raise InfluxError(f"InfluxDB v2 write answered {status}: {exc.body}", status,
                              retryable=status >= 500 or status == 429 or status == 0) from exc
        except Exception as exc:  # connection errors from urllib3
            raise InfluxError(f"InfluxDB at {self.url} is unreachable: {exc}") from exc

    def create_database(self) -> None:
        api = self.client.buckets_api()
        if api.find_bucket_by_name(self.bucket) is None:
            api.create_bucket(bucket_name=self.bucket, org=self.org)


def make_writer(cfg) -> "InfluxV1 | InfluxV2":
    """The InfluxDB client the collector config asks for."""
    i = cfg.influx
    if i.api == "v2":
        return InfluxV2(i.url, i.database, token=i.token, org=i.org, timeout=i.timeout_s)
    client = InfluxV1(i.url, i.database, username=i.username or None, password=i.password or None,
                      token=i.token or None, timeout=i.timeout_s, retention_policy=i.retention_policy or None)
    if not i.gzip:
        client.compress = False
    return client
