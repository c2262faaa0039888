"""What `seatmon demo` needs to serve its floor with `seatmon web`: a site
file for the floor (its broker, InfluxDB, zone, units and the two shifts the
simulated units work), a roster putting an agent at every seat for each
shift, and one account per role with a fresh random password each run.
"""

from __future__ import annotations

import csv
import re
import secrets
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from virtual.units.unit import seat_id, unit_id

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "site.example.toml"
DEMO_AGENT = "ag-0001"  # the agent account's id: the early shift at the first seat


def hhmm(ms: float, tz: str, floor_min: int = 1) -> str:
    """Local HH:MM of `ms`, down to `floor_min` minutes (as the simulated units round their shifts)."""
    t = datetime.fromtimestamp(ms / 1000, ZoneInfo(tz))
    return t.replace(minute=t.minute - t.minute % floor_min).strftime("%H:%M")


LATE_MARGIN_MS = 2 * 3_600_000


def shifts(start_ms: int, change_s: float, sim_s: float, tz: str) -> list[list[str]]:
    """The early and late shifts of the floor's day, as the simulated units
    set theirs (virtual/units/unit.py default_config): from the hour before
    the start, the change on a quarter hour. The units start a little after
    the world's clock does, so the late shift runs on past the run's end
    (nothing rings at a seat its roster leaves empty)."""
    start = hhmm(start_ms - 3_600_000, tz, 60)
    change = hhmm(start_ms + change_s * 1000, tz, 15)
    return [["early", start, change], ["late", change, hhmm(start_ms + sim_s * 1000 + LATE_MARGIN_MS, tz)]]


def site_file(folder: Path, site: str, tz: str, broker_port: int, influx_url: str, database: str, units: int,
              day_shifts: list[list[str]], title: str) -> Path:
    """The floor's site file, from the example: loopback plain MQTT, the demo's
    InfluxDB, its units at seats S-0001..., the same two shifts every day."""
    text = EXAMPLE.read_text()
    text = text.replace('id = "hq"', f'id = "{site}"', 1).replace('timezone = "Europe/Berlin"', f'timezone = "{tz}"', 1)
    text = text.replace('host = "mqtt.hq.example"', 'host = "127.0.0.1"').replace(
        "port = 8883", f"port = {broker_port}\ntls = false", 1)
    text = text.replace('url = "http://127.0.0.1:8086"', f'url = "{influx_url}"').replace(
        'database = "seatmon"', f'database = "{database}"')
    text = text.replace('title = "seatmon floor hq"', f'title = "{title}"')
    days = "".join(f"{d} = {day_shifts!r}\n".replace("'", '"') for d in ("mon", "tue", "wed", "thu", "fri", "sat",
                                                                           "sun"))
    text = re.sub(r"\[shifts\].*?(?=\[hardware\.)", lambda _m: f"[shifts]\n{days}\n", text, count=1, flags=re.S)
    text = text[:text.index("[[units]]")] + "".join(
        f'[[units]]\nid = "{unit_id(i)}"\nseat = "{seat_id(i)}"\nhardware = "rev-a"\n\n' for i in range(1, units + 1))
    path = folder / "site.toml"
    path.write_text(text)
    return path


def agent_of(seat_index: int, shift: int, units: int) -> str:
    return f"ag-{shift * units + seat_index:04d}"


def roster_csv(path: Path, day: str, units: int) -> Path:
    """The day's shift plan: a different agent at each seat for each shift."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["date", "shift", "seat", "agent", "name"])
        for n, shift in enumerate(("early", "late")):
            for i in range(1, units + 1):
                agent = agent_of(i, n, units)
                out.writerow([day, shift, seat_id(i), agent, f"Agent {agent[3:]}"])
    return path


def accounts(path: Path, site: str) -> list[tuple[str, str, str]]:
    """One account per role, each with a random password: (name, role, password)."""
    from seatmon.web.accounts import Accounts

    made = [("head", "head", {}), ("leader", "leader", {"sites": (site,)}),
            ("agent", "agent", {"agent_id": DEMO_AGENT}), ("technician", "technician", {})]
    store = Accounts(path)
    try:
        out = []
        for name, role, extra in made:
            password = secrets.token_urlsafe(12)
            store.add(name, role, password, **extra)
            out.append((name, role, password))
        return out
    finally:
        store.close()


def check(url: str, logins: list[tuple[str, str, str]], month: str, units: int) -> tuple[bool, str]:
    """The demo's own look through the web front end: the agent account opens
    its month and is refused a colleague's. (ok, one line saying what was seen)."""
    import http.cookiejar
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    password = next(p for name, _role, p in logins if name == "agent")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def status(path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with opener.open(url.rstrip("/") + path, body, timeout=60) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:
            return 0, str(exc)

    code, page = status("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if code != 200 or not token:
        return False, f"the login page did not open ({code})"
    code, _ = status("/login", {"username": "agent", "password": password, "csrf_token": token.group(1), "next": ""})
    code, own = status(f"/agents/{DEMO_AGENT}?month={month}&format=json")
    if code != 200:
        return False, f"the agent account could not open its own month ({code}: {own.strip()[:120]})"
    calls = json.loads(own)["figures"]["calls"]
    colleague = agent_of(1, 1, units)
    refused, _ = status(f"/agents/{colleague}?month={month}")
    if refused != 403:
        return False, f"the agent account opened colleague {colleague}'s month ({refused}): MISMATCH"
    return True, (f"agent {DEMO_AGENT} sees their month ({calls} calls) and is refused {colleague}'s (403), "
                  "both in the audit log  ok")
