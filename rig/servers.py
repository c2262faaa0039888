"""Start real Mosquitto and InfluxDB servers on loopback, with their data in a
directory of the caller's choosing. Used by the test rig and the live demo.

Both servers bind 127.0.0.1 only. Each child is asked (PR_SET_PDEATHSIG, set
by util-linux `setpriv` before it execs the server) to die with the process
that started it, so a crashed test run leaves nothing behind. No Python runs
between fork and exec (no preexec_fn): a fork from a threaded test process may
deadlock there, as virtual/board.py found.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

INSTALL_HINT = "install it with: sudo apt-get install -y mosquitto influxdb"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary(name: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/bin", "/usr/local/sbin")) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    raise ServerError(f"{name} is not installed; {INSTALL_HINT}")


def _die_with_parent(cmd: list[str]) -> list[str]:
    """`cmd` run so that it gets SIGTERM when the thread that started it
    ends (its process, in practice: servers are started from the main thread)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *cmd] if setpriv else cmd


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class _Server:
    name = "server"

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> "_Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = _die_with_parent(self.command())
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     close_fds=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with code {self.proc.returncode}; log:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} did not answer on 127.0.0.1:{self.port} within {timeout:.0f} s; log:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, for drills."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Mosquitto(_Server):
    """A Mosquitto broker. `max_queued_messages=None` keeps Mosquitto's default
    (1000, which silently drops QoS1 messages for a slow subscriber)."""

    name = "mosquitto"

    def __init__(self, data_dir: Path, port: int | None = None, *, persistence: bool = True,
                 max_queued_messages: int | None = None, extra_config: str = "",
                 allow_anonymous: bool = True, config_file: Path | None = None):
        super().__init__(data_dir, port)
        self.allow_anonymous = allow_anonymous
        self.config_file = config_file  # run this config as is (it must listen on `port`)
        self.persistence = persistence
        self.max_queued_messages = max_queued_messages
        self.extra_config = extra_config
        self.config_path = self.data_dir / "mosquitto.conf"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def command(self) -> list[str]:
        if self.config_file is not None:
            return [find_binary("mosquitto"), "-c", str(self.config_file)]
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.data_dir}/",
            "autosave_interval 1",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            # Mosquitto started as root drops to user 'mosquitto', who cannot read
            # a private temp dir; stay the user who owns the data dir instead.
            lines.append("user root")
        if self.max_queued_messages is not None:
            lines.append(f"max_queued_messages {self.max_queued_messages}")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")
        return [find_binary("mosquitto"), "-c", str(self.config_path)]

    def ready(self) -> bool:
        return _port_open(self.port)


class InfluxDB(_Server):
    """An InfluxDB 1.x server (Debian's influxdb package)."""

    name = "influxdb"

    def __init__(self, data_dir: Path, port: int | None = None):
        super().__init__(data_dir, port)
        self.config_path = self.data_dir / "influxdb.conf"
        self.bind_port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        d = self.data_dir
        self.config_path.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.bind_port}"\n'
            "[meta]\n"
            f'  dir = "{d}/meta"\n'
            "[data]\n"
            f'  dir = "{d}/data"\n'
            f'  wal-dir = "{d}/wal"\n'
            "  query-log-enabled = false\n"
            "[http]\n"
            f'  bind-address = "127.0.0.1:{self.port}"\n'
            "  log-enabled = false\n"
            "[monitor]\n"
            "  store-enabled = false\n"
        )
        return [find_binary("influxd"), "-config", str(self.config_path)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=0.5) as resp:
                return resp.status == 204
        except (urllib.error.URLError, OSError):
            return False


def influx_query(url: str, q: str, db: str | None = None, method: str = "GET") -> dict:
    """Run an InfluxQL statement through /query; return the decoded JSON."""
    import json

    params = {"q": q, "epoch": "ms"}
    if db:
        params["db"] = db
    data = urllib.parse.urlencode(params)
    if method == "POST":
        req = urllib.request.Request(url + "/query", data=data.encode(), method="POST")
    else:
        req = urllib.request.Request(url + "/query?" + data)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())

