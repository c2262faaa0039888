"""Report -> text: terminal tables (80 columns), CSV, JSON.

A column is (key, header, kind); kinds say how a value prints: `int`,
`rate` (fraction, shown as a percentage), `ms` (shown in seconds), `text`,
`time` (epoch ms, shown in the report's zone). CSV keeps numbers as plain
numbers (rates as fractions, times in ms) so spreadsheets type them right.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

WIDTH = 80
TEXT_MAX = 16  # longer text cells (firmware strings...) are cut on the terminal

ANSWER_COUNTS = [("group", "group", "text"), ("calls", "calls", "int"), ("answered_in_time", "in time", "int"),
                 ("answered_late", "late", "int"), ("missed", "missed", "int"), ("abandoned", "aband.", "int"),
                 ("outgoing", "outg.", "int"), ("timeliness_rate", "rate", "rate"),
                 ("service_level", "SL", "rate")]
# Median and p90 print their resolution beside them when read from the
# roll-ups' histograms ("5.5±0.05"): rows go through times_rows() first.
ANSWER_TIMES = [("group", "group", "text"), ("answered", "answered", "int"), ("asa_ms", "ASA s", "ms"),
                ("median_ms", "median s", "pct"), ("p90_ms", "p90 s", "pct"), ("max_ms", "max s", "ms")]
ANSWER_CSV = [("group", "group", "text"), ("calls", "calls", "int"), ("answered", "answered", "int"),
              ("answered_in_time", "answered_in_time", "int"), ("answered_late", "answered_late", "int"),
              ("missed", "missed", "int"), ("abandoned", "abandoned", "int"), ("outgoing", "outgoing", "int"),
              ("timeliness_rate", "timeliness_rate", "rate"), ("service_level", "service_level", "rate"),
              ("asa_ms", "asa_ms", "ms"), ("median_ms", "median_ms", "ms"), ("p90_ms", "p90_ms", "ms"),
              ("max_ms", "max_ms", "ms")]
# Call-centre abandonment and the house rules beyond answering in time.
# `opt`: an int that is None where its input is not installed (shown n/a).
ANSWER_RULES = [("group", "group", "text"), ("caller_abandoned", "ab.all", "int"),
                ("abandoned_short", "short", "int"), ("abandoned_long", "long", "int"),
                ("abandon_rate", "ab.rate", "rate"), ("avg_abandon_ms", "ATA s", "ms"),
                ("hung_up_first", "agent 1st", "opt"), ("unsynced", "unsync", "int")]
ANSWER_CSV += [(k, k, kind) for k, _h, kind in ANSWER_RULES[1:]] + [("hangup_known", "hangup_known", "int")]
# Which limit late and unanswered calls went past (CSV and JSON; the table's summary line).
ANSWER_CSV += [(k, k, "int") for k in ("exceeded_time", "exceeded_rings", "exceeded_both")]
# 0: median and p90 exact; else they are within this many ms (docs/reports.md).
ANSWER_CSV += [("percentile_resolution_ms", "percentile_resolution_ms", "int")]
SAFETY = [("group", "group", "text"), ("shift_ends", "ends", "int"), ("off_in_time", "off", "int"),
          ("postponed", "postp", "int"), ("left_on", "on", "int"), ("logged", "log", "int"),
          ("reminded", "remind", "int"), ("cut", "cut", "int"), ("sensor_unreadable", "unread", "int"),
          ("handovers", "hand", "int"), ("compliance", "off %", "rate")]
SAFETY_CSV = [(k, k, kind) for k, _h, kind in SAFETY[:-1]] + [("overtime_ms", "overtime_ms", "ms"),
                                                              ("compliance", "compliance", "rate")]
SAFETY_LEGEND = ("off = found off at the check; postp = found off after granted overtime\n"
                 "on = left on = log (only recorded) + remind + cut\n"
                 "unread = power sensor unreadable; hand = handover to the next shift\n"
                 "off % = (off + postp) / (off + postp + on)")
# Busy, idle and staffing (staffing.py): hours on the terminal, ms in CSV.
STAFFING_LOAD = [("group", "group", "text"), ("offered", "offered", "int"), ("answered", "answ.", "int"),
                 ("outgoing", "outg.", "int"), ("aht_ms", "AHT s", "ms"), ("busy_ms", "busy h", "h"),
                 ("staffed_ms", "staffed h", "h"), ("idle_ms", "idle h", "h"), ("occupancy", "occ.", "rate")]
STAFFING_SEATS = [("group", "group", "text"), ("load_erlangs", "load Erl", "dec"),
                  ("seats_staffed", "staffed", "dec"), ("seats_needed", "needed", "int"),
                  ("shortfall", "short", "dec")]
STAFFING_CSV = [(k, k, kind) for k, kind in [
    ("group", "text"), ("start_ms", "time"), ("length_ms", "ms"), ("offered", "int"), ("answered", "int"),
    ("outgoing", "int"), ("talk_ms", "ms"), ("outgoing_ms", "ms"), ("busy_ms", "ms"), ("aht_ms", "ms"),
    ("staffed_ms", "ms"), ("idle_ms", "ms"), ("occupancy", "rate"), ("seats_staffed", "dec"),
    ("load_erlangs", "dec"), ("seats_needed", "int"), ("shortfall", "dec")]]
UNITS = [("unit", "unit", "text"), ("seat", "seat", "text"), ("state", "state", "text"),
         ("last_seen_ms", "last seen", "time"), ("lost_events", "lost", "int"),
         ("skew_worst_ms", "skew s", "ms"), ("journal_max", "backlog", "int"),
         ("selftest_faults", "faults", "int"), ("firmware", "fw", "text"), ("update", "update", "text")]
UNITS_CSV = [(k, k, kind) for k, _h, kind in [
    ("unit", "", "text"), ("seat", "", "text"), ("state", "", "text"), ("state_since_ms", "", "time"),
    ("last_seen_ms", "", "time"), ("firmware", "", "text"), ("lost_events", "", "int"),
    ("skew_last_ms", "", "int"), ("skew_worst_ms", "", "int"), ("journal_last", "", "int"),
    ("journal_max", "", "int"), ("selftests", "", "int"), ("selftest_faults", "", "int"),
    ("last_faults", "", "text"), ("fault_events", "", "int"), ("update", "", "text")]]


def cell(value, kind: str, tz: ZoneInfo | None = None) -> str:
    """A value as shown on the terminal."""
    if kind == "pct":  # (ms, resolution ms) from times_rows()
        value, res = value if isinstance(value, tuple) else (value, 0)
        if value is None:
            return "-"
        return f"{value / 1000:.1f}" + (f"±{res / 1000:g}" if res else "")
    if value is None:
        return "n/a" if kind == "opt" else "-"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "rate0":  # whole percent, where a table has twelve rate columns
        return f"{value * 100:.0f}%"
    if kind == "ms":
        return f"{value / 1000:.1f}"
    if kind == "h":
        return f"{value / 3_600_000:.1f}"
    if kind == "dec":
        return f"{value:.1f}"
    if kind == "time":
        return datetime.fromtimestamp(value / 1000, tz).strftime("%m-%d %H:%M")
    text = str(value)
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 1] + "~"


def text_table(rows: list[dict], columns, tz=None, total: dict | None = None) -> str:
    """Fixed-width table; the first column is cut so the table fits 80 columns."""
    def cells(r):  # the first column is cut to fit below, not here
        return [str(r.get(columns[0][0]))] + [cell(r.get(k), kind, tz) for k, _h, kind in columns[1:]]

    body = [cells(r) for r in rows]
    if total is not None:
        body.append(cells(total))
    head = [h for _k, h, _kind in columns]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    sep = 2 if sum(widths) + 2 * (len(widths) - 1) <= WIDTH else 1  # tighten before cutting names
    rest = sum(widths[1:]) + sep * (len(widths) - 1)
    widths[0] = max(6, min(widths[0], WIDTH - rest))
    rule = "-" * min(WIDTH, sum(widths) + sep * (len(widths) - 1))

    def fmt(values):
        parts = [values[0][: widths[0]].ljust(widths[0])]
        parts += [v.rjust(w) if kind != "text" else v.ljust(w)
                  for v, w, (_k, _h, kind) in zip(values[1:], widths[1:], columns[1:])]
        return (" " * sep).join(parts).rstrip()

    out = [fmt(head), rule]
    for i, values in enumerate(body):
        if total is not None and i == len(body) - 1:
            out.append(rule)
        out.append(fmt(values))
    return "\n".join(out)


def csv_value(value, kind: str, tz: ZoneInfo | None):
    if value is None:
        return ""
    if kind == "rate":
        return f"{value:.4f}"
    if kind in ("ms", "h"):
        return f"{value:.0f}" if isinstance(value, float) else value
    if kind == "dec":
        return f"{value:.2f}"
    if kind == "time":  # ISO 8601 local time, which spreadsheets read as a date-time
        return datetime.fromtimestamp(value / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")
    return value


def csv_text(rows: list[dict], columns, tz=None, total: dict | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([h for _k, h, _kind in columns])
    for r in rows + ([total] if total is not None else []):
        w.writerow([csv_value(r.get(k), kind, tz) for k, _h, kind in columns])
    return buf.getvalue()


def json_text(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def answers_notes(report) -> list[str]:
    """What the figures mean, and what the reader must know about them."""
    conv = report.conventions
    lines = ["rate = answered in time / all calls that rang",
             f"SL = {SL_FORMULA[conv.treatment]} (abandoned within the limit: {conv.treatment})",
             "ab.all = every caller hang-up before answer (aband. = within the limit)",
             f"short/long = rang less / at least {conv.short_abandon_ms / 1000:g} s; "
             "ab.rate = ab.all / calls",
             "ATA = average time to abandon; agent 1st = calls the agent hung up first",
             "unsync = calls stamped without a synchronised clock; times in seconds"]
    note = percentile_note(report)
    if note:
        lines.append(note)
    missing = report.no_disconnect_input
    if missing:
        lines.append("agent 1st n/a = disconnect input not installed (no data): " + ", ".join(missing))
    t = report.total
    if t.exceeded_time or t.exceeded_rings or t.exceeded_both:
        lines.append(f"limit gone past (late or unanswered): 10 s only {t.exceeded_time}, rings only "
                     f"{t.exceeded_rings}, both {t.exceeded_both}")
    if t.unsynced:
        lines.append(f"WARNING: {t.unsynced} of {t.calls} calls were stamped without a synchronised clock: "
                     "their day, hour and shift are uncertain")
    return lines


def times_rows(rows: list[dict]) -> list[dict]:
    """Rows whose median and p90 carry their resolution, for the `pct` cells."""
    out = []
    for r in rows:
        res = r.get("percentile_resolution_ms") or 0
        out.append(dict(r, median_ms=(r.get("median_ms"), res), p90_ms=(r.get("p90_ms"), res)))
    return out


def percentile_note(report) -> str | None:
    t = report.total
    if not t.percentile_resolution_ms:
        return None
    return (f"median and p90 marked ±{t.percentile_resolution_ms / 1000:g} are read from 100 ms histogram bins "
            f"({t.answered} answered calls are too many to sort here): within {t.percentile_resolution_ms} ms "
            "of the exact figure; ASA and max are exact")


SL_FORMULA = {"ignored": "in time / (calls - aband.)", "negative": "in time / calls",
              "positive": "(in time + aband.) / calls"}


def answers_text(report) -> str:
    d = report.as_dict()
    rows = d["groups"]
    head = f"Answers by {report.by}, {report.scope.describe()}" + (f", site {report.scope.site}" if report.scope.site else "")
    notes = "\n".join(textwrap.fill(n, WIDTH, subsequent_indent="  ") for n in answers_notes(report))
    return "\n".join([textwrap.fill(head, WIDTH), "", text_table(rows, ANSWER_COUNTS, total=d["total"]), "",
                      text_table(times_rows(rows), ANSWER_TIMES, total=times_rows([d["total"]])[0]), "",
                      text_table(rows, ANSWER_RULES, total=d["total"]), "", notes]) + "\n"


def answers_csv(report) -> str:
    d = report.as_dict()
    return csv_text(d["groups"], ANSWER_CSV, total=d["total"])


def safety_text(report) -> str:
    d = report.as_dict()
    head = f"Shift-end safety by {report.by}, {report.scope.describe()}, worst first" if report.by != "day" else \
        f"Shift-end safety by day, {report.scope.describe()}"
    return "\n".join([textwrap.fill(head, WIDTH), "", text_table(d["groups"], SAFETY, total=d["total"]), "",
                      SAFETY_LEGEND]) + "\n"


def safety_csv(report) -> str:
    d = report.as_dict()
    return csv_text(d["groups"], SAFETY_CSV, total=d["total"])


def units_text(report) -> str:
    d = report.as_dict()
    tz = report.scope.zone
    lines = [textwrap.fill(f"Units, {report.scope.describe()}: {len(report.units)} units, "
                           f"{len(report.offline)} offline now", WIDTH), ""]
    for u in report.offline:
        since = cell(u.state_since_ms, "time", tz)
        lines.append(f"OFFLINE {u.unit} (seat {u.seat or '-'}) since {since}")
    if report.offline:
        lines.append("")
    lines.append(text_table(d["units"], UNITS, tz=tz))
    lines.append("")
    lines.append("firmware: " + ", ".join(f"{fw} x{n}" for fw, n in report.firmware.items()))
    lines.append("skew s = worst clock skew in the range; backlog = largest journal depth")
    lines.append("lost = events lost (sequence gaps); faults = self-test faults")
    return "\n".join(lines) + "\n"


def units_csv(report) -> str:
    return csv_text(report.as_dict()["units"], UNITS_CSV, tz=report.scope.zone)


def staffing_notes(report) -> list[str]:
    t = report.target
    if report.by == "agent":
        return ["a call counts for the agent the roster puts at its seat at its first ring, with all its talk "
                "time; busy = talk time of answered and outgoing calls",
                "staffed = the agent's assigned time (for (unassigned): the seats' time from first to last "
                "event of a shift that nobody was assigned); idle = staffed - busy; occ. = busy / staffed",
                "staffed (seats) = staffed time / the range's time; seats needed are the site's: see --by "
                "interval, day or shift"]
    per = {"interval": "interval", "day": "day (its busiest interval)",
           "shift": "shift (its busiest interval)"}[report.by]
    return [f"{report.interval_min}-minute intervals; a call counts in the interval (day, shift) where it "
            "first rang, with all its talk time",
            "offered = calls that rang; AHT = average talk time of answered calls; busy = talk time of "
            "answered and outgoing calls",
            "staffed = seat time from each seat's first to last event of its shift (self-test to "
            "shift-end check); idle = staffed - busy; occ. = busy / staffed",
            "staffed (seats) = staffed time / the row's time; load Erl = offered x AHT / the row's time",
            f"needed = seats per {per} by Erlang C for {t.service_level * 100:g}% answered within "
            f"{t.within_ms / 1000:g} s" + (f", occupancy at most {t.max_occupancy * 100:g}%"
                                         if t.max_occupancy < 1 else "")
            + ", plus the outgoing load in whole seats; short = needed - staffed where positive"]


def staffing_text(report) -> str:
    d = report.as_dict()
    head = (f"Busy, idle and staffing by {report.by}, {report.scope.describe()}"
            + (f", site {report.scope.site}" if report.scope.site else ""))
    notes = "\n".join(textwrap.fill(n, WIDTH, subsequent_indent="  ") for n in staffing_notes(report))
    return "\n".join([textwrap.fill(head, WIDTH), "", text_table(d["groups"], STAFFING_LOAD, total=d["total"]),
                      "", text_table(d["groups"], STAFFING_SEATS, total=d["total"]), "", notes]) + "\n"


def staffing_csv(report) -> str:
    d = report.as_dict()
    return csv_text(d["groups"], STAFFING_CSV, tz=report.scope.zone, total=d["total"])
