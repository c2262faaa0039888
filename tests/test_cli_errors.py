"""Every subcommand meets a user's mistakes with one line, not a traceback:
a missing file and a bad value exit 2, an unreachable server exits 1, and
options are checked before any server is contacted."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rig.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CLOSED = free_port()  # nothing listens here
BAD_USAGE, UNREACHABLE = 2, 1


def seatmon(*args, cwd=ROOT, timeout=60):
    return subprocess.run([sys.executable, "-m", "seatmon.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def check(res, code, says, lines=1):
    """Exit `code`, stderr is `lines` line(s), each with the command prefix,
    the last naming the problem; no traceback anywhere."""
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == code, out
    assert err and all(line.startswith("seatmon") for line in err), out
    if lines is not None:
        assert len(err) == lines, out
    assert says in err[-1], out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    (d / "bad.toml").write_text('[mqtt]\nport = "x"\n')
    (d / "bad-site.toml").write_text('[site]\nid = "hq"\ntimezone = "Mars/Base"\n')
    (d / "unreachable.toml").write_text(
        f'[mqtt]\nport = {CLOSED}\n[influx]\nurl = "http://127.0.0.1:{CLOSED}"\n'
        f'[spool]\npath = "{d / "spool.db"}"\n[health]\nport = -1\n')
    example = (ROOT / "deploy/site.example.toml").read_text()
    assert "limit_rings = " in example
    (d / "typo-site.toml").write_text(example.replace("limit_rings = ", "limit_ring = "))
    (d / "bad-scenario.json").write_text('{"units": {"*": {"answered": [1, 2]}}}')
    bare = d / "bare"  # a site without credentials yet
    bare.mkdir()
    shutil.copy(ROOT / "deploy/site.example.toml", bare / "site.toml")
    site = d / "site"  # a site after `seatmon broker config`
    site.mkdir()
    shutil.copy(ROOT / "deploy/site.example.toml", site / "site.toml")
    res = seatmon("broker", "config", "--site", site / "site.toml", "--out", site / "mosquitto")
    assert res.returncode == 0, res.stderr
    return d


MISSING = "/nonexistent/seatmon-missing.toml"

CASES = {
    # missing files
    "collect: missing config": (["collect", "--config", MISSING], BAD_USAGE, "cannot read"),
    "board: missing config": (["board", "--config", MISSING], BAD_USAGE, "cannot read"),
    "simulate: missing scenario": (["unit", "simulate", "--site", "s", "--broker", f"127.0.0.1:{CLOSED}",
                                    "--scenario", "/nonexistent/missing.json"], BAD_USAGE, "No such file"),
    "push: missing site file": (["unit", "config", "push", "--site", MISSING, "--unit", "u-0001"],
                                BAD_USAGE, "No such file"),
    "push: no credentials yet": (["unit", "config", "push", "--site", "{bare}/site.toml", "--unit", "u-0001"],
                                 BAD_USAGE, "run `seatmon broker config"),
    "flash: missing site file": (["flash", "provision", "--site", MISSING, "--unit", "u-0001"],
                                 BAD_USAGE, "No such file"),
    "flash: no such port": (["flash", "provision", "--site", "{site}/site.toml", "--unit", "u-0001",
                             "--port", "/dev/ttyNOPE0", "--dry-run"], BAD_USAGE, "no serial port /dev/ttyNOPE0"),
    "collect: missing site file": (["collect", "--site", MISSING], BAD_USAGE, "site file: cannot read"),
    "board: missing site file": (["board", "--site", MISSING], BAD_USAGE, "site file: cannot read"),
    "report: missing site file": (["report", "answers", "--site-file", MISSING], BAD_USAGE, "site file: cannot read"),
    "selfcheck: missing site file": (["selfcheck", "--site", MISSING], BAD_USAGE, "site file: cannot read"),
    "broker config: missing site file": (["broker", "config", "--site", MISSING, "--out", "{tmp}/out"],
                                         BAD_USAGE, "No such file"),
    # bad values
    "collect: bad config value": (["collect", "--config", "{tmp}/bad.toml"], BAD_USAGE, "mqtt.port"),
    "board: bad config value": (["board", "--config", "{tmp}/bad.toml"], BAD_USAGE, "mqtt.port"),
    "collect: bad site file value": (["collect", "--site", "{tmp}/bad-site.toml"], BAD_USAGE,
                                     "bad-site.toml:3: site.timezone"),
    "selfcheck: bad site file value": (["selfcheck", "--site", "{tmp}/bad-site.toml"], BAD_USAGE,
                                       "bad-site.toml:3: site.timezone"),
    # one checker for the site file: what `seatmon broker config` refuses, the host commands refuse too
    "collect --check: site file typo": (["collect", "--site", "{tmp}/typo-site.toml", "--check"], BAD_USAGE,
                                        "limits.limit_ring: unknown key (did you mean 'limit_rings'?)"),
    "selfcheck: site file typo": (["selfcheck", "--site", "{tmp}/typo-site.toml"], BAD_USAGE,
                                  "limits.limit_ring: unknown key (did you mean 'limit_rings'?)"),
    "broker config: site file typo": (["broker", "config", "--site", "{tmp}/typo-site.toml", "--out", "{tmp}/out"],
                                      BAD_USAGE, "limits.limit_ring: unknown key (did you mean 'limit_rings'?)"),
    "simulate: bad scenario": (["unit", "simulate", "--site", "s", "--broker", f"127.0.0.1:{CLOSED}",
                                "--scenario", "{tmp}/bad-scenario.json"], BAD_USAGE, "units.*"),
    "simulate: zero units": (["unit", "simulate", "--site", "s", "--broker", "127.0.0.1:1883", "--units", "0"],
                             BAD_USAGE, "--units"),
    "simulate: bad site": (["unit", "simulate", "--site", "bad site/x", "--broker", "127.0.0.1:1883"],
                           BAD_USAGE, "--site"),
    "simulate: broker without port": (["unit", "simulate", "--site", "s", "--broker", "localhost"],
                                      BAD_USAGE, "seatmon unit simulate: error: argument --broker"),
    "simulate: bad duration": (["unit", "simulate", "--site", "s", "--broker", "127.0.0.1:1883",
                                "--duration", "2x"], BAD_USAGE, "--duration"),
    "simulate: shift change after the end": (["unit", "simulate", "--site", "s", "--broker", "127.0.0.1:1883",
                                              "--shift-end-min", "60", "--shift-change-min", "90"],
                                             BAD_USAGE, "--shift-change-min"),
    "demo: data dir with other files": (["demo", "--data-dir", "{tmp}"], BAD_USAGE, "did not write"),
    "demo: longer than a day": (["demo", "--duration", "15m"], BAD_USAGE, "one working day"),
    "demo: negative speed": (["demo", "--speed", "-1"], BAD_USAGE, "--speed"),
    "demo: zero units": (["demo", "--units", "0"], BAD_USAGE, "--units"),
    "demo: too many boards": (["demo", "--boards", "9"], BAD_USAGE, "at most 8 boards"),
    "demo: negative boards": (["demo", "--boards", "-1"], BAD_USAGE, "--boards"),
    "demo: bad duration": (["demo", "--duration", "0"], BAD_USAGE, "--duration"),
    "report: bad date": (["report", "answers", "--tz", "UTC", "--from", "2026-13-01"], BAD_USAGE, "--from"),
    "report: bad zone": (["report", "answers", "--tz", "Mars/Base"], BAD_USAGE, "--tz"),
    "report: bad month": (["report", "monthly", "--tz", "UTC", "--month", "2026-13", "--out", "{tmp}/m.html"],
                          BAD_USAGE, "--month"),
    "report: misspelt zone": (["report", "answers", "--tz", "Europe/Berlim"], BAD_USAGE,
                              "(did you mean 'Europe/Berlin'?)"),
    "report: --out into a missing folder": (["report", "answers", "--tz", "UTC", "--influx", f"127.0.0.1:{CLOSED}",
                                             "--out", "{tmp}/no-such-folder/a.csv"], BAD_USAGE,
                                            "no-such-folder' (create it first)"),
    "report: bad URL": (["report", "units", "--tz", "UTC", "--influx", "http://:x"], BAD_USAGE, "--influx"),
    "push: broker without port": (["unit", "config", "push", "--site", "{site}/site.toml", "--unit", "u-0001",
                                   "--broker", "localhost"], BAD_USAGE, "--broker"),
    "push: no CA file": (["unit", "config", "push", "--site", "{site}/site.toml", "--unit", "u-0001",
                          "--broker", f"127.0.0.1:{CLOSED}"], BAD_USAGE, "no CA certificate"),
    "flash: bad timeout": (["flash", "provision", "--site", "{site}/site.toml", "--unit", "u-0001",
                            "--timeout", "soon"], BAD_USAGE, "--timeout"),
    # unreachable servers
    "report: InfluxDB unreachable": (["report", "answers", "--tz", "UTC", "--from", "2026-11-02",
                                      "--influx", f"127.0.0.1:{CLOSED}"], UNREACHABLE, "unreachable"),
    "collect init-db: InfluxDB unreachable": (["collect", "--config", "{tmp}/unreachable.toml", "init-db"],
                                              UNREACHABLE, "unreachable"),
    "push: broker unreachable": (["unit", "config", "push", "--site", "{site}/site.toml", "--unit", "u-0001",
                                  "--broker", f"127.0.0.1:{CLOSED}", "--no-tls"], UNREACHABLE,
                                 f"cannot reach the broker at 127.0.0.1:{CLOSED}"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_user_mistake_is_one_line(name, files):
    args, code, says = CASES[name]
    paths = {"tmp": files, "bare": files / "bare", "site": files / "site"}
    check(seatmon(*(a.format(**paths) for a in args)), code, says)


def test_simulate_warns_while_the_broker_is_unreachable_and_fails_if_never_connected():
    res = seatmon("unit", "simulate", "--site", "s", "--broker", f"127.0.0.1:{CLOSED}", "--duration", "4",
                  "--procs", "1")
    # Warnings while it runs (rate-limited), then the verdict; all one-liners.
    check(res, UNREACHABLE, f"no unit ever reached the broker at 127.0.0.1:{CLOSED}", lines=None)
    warnings = [line for line in res.stderr.splitlines() if "warning" in line]
    assert warnings and f"cannot reach the broker at 127.0.0.1:{CLOSED}" in warnings[0]
    assert "Connect" in warnings[0]  # the error itself


def test_second_collector_on_a_taken_health_port_says_which_key_moves_it(tmp_path):
    import socket

    with socket.socket() as first:  # what the first collector on the host holds
        first.bind(("127.0.0.1", 0))
        first.listen()
        port = first.getsockname()[1]
        config = tmp_path / "second.toml"
        config.write_text(f'[mqtt]\nport = {CLOSED}\n[influx]\nurl = "http://127.0.0.1:{CLOSED}"\n'
                          f'[spool]\npath = "{tmp_path / "spool.db"}"\n[health]\nport = {port}\n')
        res = seatmon("collect", "--config", config, timeout=30)
    check(res, BAD_USAGE, f"127.0.0.1:{port}")
    assert "health.port" in res.stderr and "SEATMON_COLLECT_HEALTH_PORT" in res.stderr
