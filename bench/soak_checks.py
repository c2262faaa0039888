"""The soak's accounting: once the floor has settled, what the floor generated
(the units' ground-truth tally, the boards' calls made on their pins, the
poison unit's journal) against what InfluxDB, the reports, the collectors'
acks and quarantine say. Each failure names the unit, seq and kind."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from collector.influx import InfluxV1
from seatmon import demo

KEYS = (*demo.TALLY_KEYS, "selftest")
STILL_S = 30  # collectors idle and nothing new stored this long: settled, whatever is missing
EVENT_MEASUREMENTS = ("call", "outgoing", "shift_end", "selftest", "reminder", "fault", "postpone", "clock", "update")


def stored_counts(db) -> dict[str, int]:
    out = demo.stored_counts(db)
    rows = db.query("SELECT count(ok) FROM selftest")[0].get("series", [])
    out["selftest"] = int(rows[0]["values"][0][1]) if rows else 0
    return out


def per_unit_counts(db) -> dict[str, dict[str, int]]:
    """What InfluxDB holds per unit, in the tally's terms."""
    out: dict[str, dict[str, int]] = {}

    def add(q: str, key_of):
        for series in db.query(q)[0].get("series", []):
            tags = series.get("tags") or {}
            key = key_of(tags)
            if key:
                out.setdefault(tags["unit"], {}).setdefault(key, 0)
                out[tags["unit"]][key] += int(series["values"][0][1] or 0)

    add('SELECT count(ring_ms) FROM call GROUP BY "unit", "outcome"',
        lambda t: "answered" if t["outcome"] == "answered" else "unanswered")
    add('SELECT sum(late) FROM call GROUP BY "unit"', lambda t: "answered_late")
    add('SELECT count(talk_ms) FROM outgoing GROUP BY "unit"', lambda t: "outgoing")
    add('SELECT sum(left_on) FROM shift_end GROUP BY "unit"', lambda t: "shift_end_left_on")
    add('SELECT sum(off_in_time) FROM shift_end GROUP BY "unit"', lambda t: "shift_end_off")
    add('SELECT count(ok) FROM selftest GROUP BY "unit"', lambda t: "selftest")
    return out


def stored_seqs(db) -> dict[str, dict[int, list[str]]]:
    """unit -> seq -> the measurements holding it (more than one: stored twice)."""
    out: dict[str, dict[int, list[str]]] = {}
    for m in EVENT_MEASUREMENTS:
        for series in db.query(f'SELECT seq FROM "{m}" GROUP BY "unit"')[0].get("series", []):
            per = out.setdefault(series["tags"]["unit"], {})
            for _, seq in series["values"]:
                if seq is not None:
                    per.setdefault(int(seq), []).append(m)
    return out


def quarantine(spools: list[Path]) -> list[tuple[str, bytes, str]]:
    rows = []
    for path in spools:
        con = sqlite3.connect(path)
        try:
            rows += con.execute("SELECT topic, payload, reason FROM quarantine ORDER BY id").fetchall()
        finally:
            con.close()
    return rows


def _seq_of(payload: bytes) -> int | None:
    try:
        return int(payload.split(b'"seq":')[1].split(b",")[0])
    except (IndexError, ValueError):
        return None


def settle(floor, generated: dict, log, tend=lambda: None, timeout: float = 240) -> dict:
    """Wait until every collector is idle (spool empty, roll-ups done), the
    poison unit acknowledged to its top and InfluxDB holds what was
    generated, or the timeout. Returns the last readings."""
    db = InfluxV1(floor.influx.url, "seatmon")
    want = generated["tally"]
    deadline = time.monotonic() + timeout
    last, still_since = None, time.monotonic()
    while True:
        tend()
        healths = [floor.health(k) for k in range(len(floor.collectors))]
        idle = all(h.get("spool_depth", 1) == 0 and h.get("rollup_pending", 1) == 0 for h in healths)
        try:
            stored = stored_counts(db)
        except Exception:  # noqa: BLE001 (InfluxDB just restarted)
            stored = {}
        poison_done = floor.poison is None or not floor.poison.unacked
        if idle and poison_done and all(stored.get(k, 0) >= want.get(k, 0) for k in KEYS):
            break
        if stored != last:
            last, still_since = stored, time.monotonic()
        elif idle and time.monotonic() - still_since > STILL_S:
            log(f"settled short of the ground truth: nothing more arrived for {STILL_S} s")
            break
        if time.monotonic() > deadline:
            log(f"not settled after {timeout:.0f} s: collectors idle {idle}, poison unit acknowledged {poison_done}")
            break
        time.sleep(1)
    time.sleep(2)  # the roll-ups' last refresh
    return {"healths": [floor.health(k) for k in range(len(floor.collectors))]}


def _report(args: list[str]) -> dict | list | None:
    from seatmon import cli

    buf, err = io.StringIO(), io.StringIO()
    with redirect_stdout(buf), redirect_stderr(err):
        code = cli.main(["report", *args, "--format", "json"])
    if code != 0:
        if "nothing to report" in err.getvalue():
            return {"total": {}}  # none of what it counts: zero of each
        print(err.getvalue(), end="", file=sys.stderr)
        return None
    return json.loads(buf.getvalue())


def settle_and_check(floor, generated: dict, runner, start, span_h: float, log) -> dict:
    settled = settle(floor, generated, log, runner.tend_poison)
    runner.stop_sampling()
    end_world = floor.world_now_ms()
    failures: list[str] = []
    db = InfluxV1(floor.influx.url, "seatmon")
    tally = generated["tally"]
    per_unit = generated["per_unit"]

    # 1. events stored exactly once, by kind and by (unit, seq)
    stored = stored_counts(db)
    table = []
    for key in KEYS:
        same = tally.get(key, 0) == stored[key]
        table.append({"what": key, "generated": tally.get(key, 0), "stored": stored[key], "ok": same})
    units_stored = per_unit_counts(db)
    for unit, t in sorted(per_unit.items()):
        for key in KEYS:
            if t.get(key, 0) != units_stored.get(unit, {}).get(key, 0):
                failures.append(f"{unit}: {key}: generated {t.get(key, 0)}, stored {units_stored.get(unit, {}).get(key, 0)}")
    seqs = stored_seqs(db)
    for unit, t in sorted(per_unit.items()):
        have = seqs.get(unit, {})
        missing = [s for s in range(1, t["journaled"] + 1) if s not in have]
        twice = {s: ms for s, ms in have.items() if len(ms) > 1}
        beyond = [s for s in have if s > t["journaled"]]
        if missing:
            failures.append(f"{unit}: seq {_ranges(missing)} journaled by the unit, not in InfluxDB")
        for s, ms in sorted(twice.items())[:5]:
            failures.append(f"{unit}: seq {s} stored twice ({', '.join(ms)})")
        if beyond:
            failures.append(f"{unit}: seq {_ranges(beyond)} in InfluxDB beyond the unit's journal top {t['journaled']}")

    # 2. every unit acknowledged to its top
    for unit, t in sorted(per_unit.items()):
        if t["acked"] != t["journaled"]:
            failures.append(f"{unit}: acknowledged to seq {t['acked']}, its journal's top is {t['journaled']} "
                            f"(seq {t['acked'] + 1} onwards never acknowledged)")
    if floor.poison is not None:
        p = floor.poison
        if p.unacked or p.mark != p.next_seq - 1:
            failures.append(f"u-0666 (the poison unit): acknowledged to seq {p.mark}, its top is {p.next_seq - 1}; "
                            f"seq {min(p.unacked) if p.unacked else p.mark + 1} never acknowledged "
                            f"(poisoned seqs: {list(p.POISON)})")

    # 3. no quarantine row but the poison messages
    rows = quarantine([floor.dir / f"spool-{k}.db" for k in range(len(floor.collectors))])
    poisoned = set()
    for topic, payload, reason in rows:
        seq = _seq_of(payload)
        if "/u-0666/" in topic and floor.poison is not None and seq in floor.poison.POISON:
            poisoned.add(seq)
        else:
            failures.append(f"quarantined and not a poison message: {topic} seq {seq}: {reason}")
    if floor.poison is not None and poisoned != set(floor.poison.POISON):
        failures.append(f"u-0666: poison seqs quarantined {sorted(poisoned)}, expected {list(floor.poison.POISON)}")

    # 4. no unit in safe mode, no power cut outside a shift end
    cuts = db.query("SELECT count(idle_ms) FROM shift_end WHERE action = 'cut'")[0].get("series", [])
    if cuts:
        failures.append(f"{cuts[0]['values'][0][1]} shift ends cut the power (the roster's mode is remind)")
    safe = db.query('SELECT last(reason) FROM status WHERE reason = \'safe_mode\' GROUP BY "unit"')[0].get("series", [])
    for s in safe:
        failures.append(f"{s['tags']['unit']}: started in safe mode")

    # 5. the reports for the span equal the ground truth
    zone = ZoneInfo(start.tzinfo.key)
    first = start.date().isoformat()
    last = (start + timedelta(hours=span_h)).astimezone(zone).date().isoformat()
    common = ["--influx", floor.influx.url, "--db", "seatmon", "--from", first, "--to", last, "--tz", start.tzinfo.key]
    reports = {}
    figures = report_figures(common)
    truth = {"offered": tally.get("answered", 0) + tally.get("unanswered", 0), "answered": tally.get("answered", 0),
             "answered_late": tally.get("answered_late", 0), "outgoing": tally.get("outgoing", 0),
             "shift_end_left_on": tally.get("shift_end_left_on", 0), "shift_end_off": tally.get("shift_end_off", 0)}
    for name, (report, value) in figures.items():
        want = truth[name.split(":")[1]]
        reports[name] = {"report": value, "truth": want, "ok": value == want}
        if value != want:
            failures.append(f"seatmon report {report}: {name.split(':')[1]} {value}, the ground truth {want}")

    # 6. the boards: calls made on their pins = stored in their own database
    boards = None
    if floor.desks is not None:
        boards = board_accounting(floor)
        failures += boards["failures"]

    for row in table:
        if not row["ok"]:
            failures.insert(0, f"{row['what']}: generated {row['generated']}, stored {row['stored']}")
    lag = delivery_lag(runner, db, start, floor.args.speed, end_world)
    return {"ok": not failures, "failures": failures, "accounting": table, "reports": reports, "boards": boards,
            "quarantine_rows": len(rows), "collectors": settled["healths"], "lag": lag,
            "series": {"samples": runner.samples, "heap": board_heap(floor) if floor.desks is not None else {}}}


def report_figures(common: list[str]) -> dict[str, tuple[str, int | None]]:
    """The span's totals as `seatmon report answers`, `safety` and `staffing` give them."""
    got = {name: _report([name, *common, "--by", "day"]) for name in ("answers", "safety", "staffing")}

    def figure(report: str, key: str) -> tuple[str, int | None]:
        return report, None if got[report] is None else got[report]["total"].get(key, 0)  # None: it failed

    return {"answers:offered": figure("answers", "calls"), "answers:answered": figure("answers", "answered"),
            "answers:answered_late": figure("answers", "answered_late"),
            "answers:outgoing": figure("answers", "outgoing"),
            "safety:shift_end_left_on": figure("safety", "left_on"),
            "safety:shift_end_off": figure("safety", "off_in_time"),
            "staffing:offered": figure("staffing", "offered"), "staffing:answered": figure("staffing", "answered"),
            "staffing:outgoing": figure("staffing", "outgoing")}


def board_accounting(floor) -> dict:
    desks = floor.desks
    made = dict(desks.made)
    db = InfluxV1(floor.influx.url, "seatmon_boards")
    expected = {"answered": made["in_time"] + made["late"], "answered_late": made["late"], "unanswered": made["unanswered"]}
    deadline = time.monotonic() + 90
    stored = demo.stored_counts(db)
    while time.monotonic() < deadline and any(stored[k] < v for k, v in expected.items()):
        time.sleep(1)
        stored = demo.stored_counts(db)
    failures = [f"boards: {e}" for e in desks.errors]
    table = []
    for key, want in expected.items():
        table.append({"what": key, "made": want, "stored": stored[key], "ok": stored[key] == want})
        if stored[key] != want:
            failures.append(f"boards: {key}: made on the pins {want}, stored {stored[key]}")
    by_unit = {}
    for series in db.query('SELECT count(ring_ms) FROM call GROUP BY "unit"')[0].get("series", []):
        by_unit[series["tags"]["unit"]] = int(series["values"][0][1] or 0)
    for unit in desks.provisioned:
        if not by_unit.get(unit):
            failures.append(f"boards: {unit}: no call stored")
    if len(desks.provisioned) != len(desks.boards):
        failures.append(f"boards: {len(desks.provisioned)} of {len(desks.boards)} provisioned")
    return {"table": table, "per_unit": by_unit, "failures": failures, "boots": {
        u["id"]: len(b.boots) for u, b in zip(floor.board_site.units, desks.boards)}}


def board_heap(floor) -> dict[str, list[tuple[int, int]]]:
    db = InfluxV1(floor.influx.url, "seatmon_boards")
    out = {}
    for series in db.query('SELECT heap_free FROM heartbeat GROUP BY "unit"')[0].get("series", []):
        out[series["tags"]["unit"]] = [(int(t), int(v)) for t, v in series["values"] if v is not None]
    return out


def delivery_lag(runner, db, start, speed: float, end_world_ms: float) -> list[dict]:
    """First ring to queryable per simulated hour of the ring: p50/p99, in
    simulated and real seconds. A call the sampler never saw during the run
    (stored while InfluxDB could not answer it, or after the run) counts as
    queryable at the end: an upper bound."""
    ring_ms, seen = dict(runner.ring_ms), dict(runner.sightings)
    for series in db.query('SELECT seq, ring_ms FROM call GROUP BY "unit"')[0].get("series", []):
        for ts, seq, _ in series["values"]:
            key = (series["tags"]["unit"], int(seq))
            ring_ms.setdefault(key, ts)
            seen.setdefault(key, end_world_ms)
    start_ms = start.timestamp() * 1000
    hours: dict[int, list[float]] = {}
    for key, at in seen.items():
        ring = ring_ms[key]
        hours.setdefault(int((ring - start_ms) // 3600000), []).append(max(0.0, at - ring) / 1000)
    out = []
    for h in sorted(hours):
        lags = sorted(hours[h])
        p50 = lags[len(lags) // 2]
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
        out.append({"hour": h, "calls": len(lags), "p50_sim_s": round(p50, 1), "p99_sim_s": round(p99, 1),
                    "p50_real_s": round(p50 / speed, 2), "p99_real_s": round(p99 / speed, 2)})
    return out


def _ranges(seqs: list[int]) -> str:
    seqs = sorted(seqs)
    out, lo = [], seqs[0]
    for a, b in zip(seqs, seqs[1:] + [None]):
        if b != a + 1:
            out.append(str(lo) if lo == a else f"{lo}-{a}")
            lo = b
    return ", ".join(out)
