"""The soak's faults: a seeded schedule (pure) and the runner that applies it
to a running floor (bench/soak.py's Floor), keeping a timeline.

Each fault holds one or more resources (the broker, InfluxDB, a collector,
a board, a group of units) for its length; two faults on the same resource
never overlap, faults on different ones do. Times are real seconds from the
floor's start."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from seatmon import demo

# kind: (resources, shortest, longest length in real s)
KINDS = {
    "broker-sigkill": (("broker",), 30, 120),
    "broker-restart": (("broker",), 1, 1),
    "influx-sigstop": (("influx",), 10, 60),
    "influx-sigkill": (("influx",), 5, 40),
    "collector-sigkill": (("collector",), 2, 10),
    "collector-sigterm": (("collector",), 2, 10),
    "collector-restart-influx-down": (("collector", "influx"), 15, 40),
    "units-wifi": (("units",), 10, 60),
    "units-ntp-down": (("units",), 10, 60),
    "board-wifi": (("board",), 10, 40),
    "board-powercut-ntp-down": (("board",), 15, 30),
    "board-ntp-zero": (("board",), 10, 30),
    "board-reset": (("board",), 1, 1),
    "board-account-refused": (("board-accounts",), 15, 45),
    "poison": (("poison",), 1, 1),
}
SHORT_LONGEST = 30  # the short run's faults last at most this long
LAG_WARN_S = 5.0  # the units' samplers this far behind real time: the run says so
CALL_RECORDED_S = 5.0  # after a desk's call, its record is in the board's journal by then


def schedule(rng, duration_s: float, count: int, units: int, boards: int, collectors: int,
             short: bool = False) -> list[dict]:
    """`count` faults (and one poison message) inside [5 %, 85 %] of the run,
    overlapping across resources. Every server kind comes first, then the
    rest at random, so even a short schedule has each server's fault."""
    kinds = ["broker-sigkill", "influx-sigstop", "collector-sigkill", "units-wifi", "collector-restart-influx-down",
             "influx-sigkill", "collector-sigterm", "units-ntp-down", "broker-restart"]
    if boards:
        kinds[3:3] = ["board-powercut-ntp-down", "board-wifi", "board-account-refused"]
        kinds += ["board-ntp-zero", "board-reset"]
    wanted = kinds[:count] + [rng.choice(kinds) for _ in range(max(0, count - len(kinds)))]
    busy: dict[str, list[tuple[float, float]]] = {}
    out = []
    for kind in wanted + ["poison"]:
        resources, lo, hi = KINDS[kind]
        if short:
            hi = min(hi, SHORT_LONGEST)
            lo = min(lo, hi)
        for _ in range(50):
            length = rng.uniform(lo, hi)
            at = rng.uniform(0.05 * duration_s, max(0.05 * duration_s, 0.85 * duration_s - length))
            target = _target(rng, kind, units, boards, collectors)
            keys = [f"{r}:{target}" if r in ("collector", "board") else r for r in resources]
            if all(not (at < e + 2 and s < at + length + 2) for k in keys for s, e in busy.get(k, [])):
                for k in keys:
                    busy.setdefault(k, []).append((at, at + length))
                out.append({"kind": kind, "at": round(at, 1), "length": round(length, 1), "target": target})
                break
    return sorted(out, key=lambda f: f["at"])


def _target(rng, kind: str, units: int, boards: int, collectors: int):
    if kind.startswith("collector"):
        return rng.randrange(collectors)
    if kind.startswith("units"):
        return sorted(rng.sample(range(1, units + 1), max(1, units // 4)))
    if kind.startswith("board"):
        return rng.randrange(max(1, boards))
    return None


def write_unit_faults(path: Path, faults: list[dict], start, speed: float) -> None:
    """The simulated units' own faults, in world time, for `seatmon unit simulate --faults`."""
    start_ms = int(start.timestamp() * 1000)
    out = [{"kind": f["kind"].split("-")[1], "units": f["target"],
            "at_ms": start_ms + int(f["at"] * speed * 1000), "until_ms": start_ms + int((f["at"] + f["length"]) * speed * 1000)}
           for f in faults if f["kind"].startswith("units-")]
    path.write_text(json.dumps(out))


class Runner:
    """Applies the schedule to the floor in real time and samples it."""

    def __init__(self, floor, faults: list[dict], log):
        self.floor, self.faults, self.log = floor, faults, log
        self.timeline: list[dict] = []
        self.actions: list[tuple[float, str, object]] = []  # (real s from start, label, fn)
        self.board_queue: dict[str, list] = {}  # unit id -> faults to start between its calls
        self.lock = threading.Lock()
        self.samples: list[dict] = []  # (t, events stored per collector health, spool)
        self.sightings: dict[tuple[str, int], float] = {}  # (unit, seq) of a call -> world ms first queryable
        self.ring_ms: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self.poison_entry = None
        self.max_lag_s, self._lag_read = 0.0, 0.0
        for f in faults:
            self.actions.append((f["at"], "start", f))
        self.actions.sort(key=lambda a: a[0])
        if floor is not None and floor.desks is not None:
            floor.desks.between_calls = self._between_calls

    # ---- the loop ----
    def run_until(self, done, floor) -> None:
        t0 = floor.epoch[0]
        sampler = threading.Thread(target=self._sample_loop, daemon=True, name="soak-sampler")
        sampler.start()
        stopped_calling = False
        while not done():
            now = time.time() - t0
            while self.actions and self.actions[0][0] <= now:
                _, what, arg = self.actions.pop(0)
                self._do(what, arg, now)
            self.tend_poison()
            if now - self._lag_read >= 1.0:
                self._lag_read = now
                _, lag = demo.read_floor(floor.dir / "units-status.json")
                if lag > LAG_WARN_S and self.max_lag_s <= LAG_WARN_S:
                    self.log(f"warning: the units are {lag:.0f} s behind real time: this machine is too slow for "
                             "their number at this speed (their timeouts run on simulated time)")
                self.max_lag_s = max(self.max_lag_s, lag)
            if floor.sim.poll() is not None and not done():
                raise RuntimeError(f"the virtual units stopped; see {floor.dir / 'units.log'}")
            if floor.desks is not None and not stopped_calling and now >= floor.duration_s - 25:
                floor.desks.stop_calling(wait=False)
                stopped_calling = True
            time.sleep(0.2)

    def finish(self) -> None:
        """End every fault still running (in order), so the system can settle."""
        now = time.time() - self.floor.epoch[0]
        for _, what, arg in sorted(self.actions, key=lambda a: a[0]):
            if what != "start":
                self._do(what, arg, now)
        self.actions.clear()
        with self.lock:
            waiting = [f for q in self.board_queue.values() for f in q]
            self.board_queue.clear()
        for f in waiting:
            self._mark(f, "not started: the board made no more calls", now, now)
        if self.floor.desks is not None:
            self.floor.desks.stop_calling()

    def stop_sampling(self) -> None:
        self._stop.set()

    def _later(self, at: float, label: str, fn) -> None:
        self.actions.append((at, label, fn))
        self.actions.sort(key=lambda a: a[0])

    def _mark(self, f: dict, note: str, start: float, end: float | None = None) -> dict:
        entry = {"kind": f["kind"], "target": f["target"], "start_s": round(start, 1),
                 "end_s": None if end is None else round(end, 1), "note": note}
        self.timeline.append(entry)
        return entry

    def _do(self, what: str, arg, now: float) -> None:
        if what != "start":
            arg(now)  # a fault's end
            return
        f = arg
        kind, floor = f["kind"], self.floor
        if kind.startswith("board-") and floor.desks is None:
            return
        self.log(f"fault at {now:.0f} s: {kind} {'' if f['target'] is None else f['target']} for {f['length']:.0f} s")
        entry = self._mark(f, "", now)
        end_at = now + f["length"]

        def ended(t, e=entry):
            e["end_s"] = round(t, 1)

        if kind == "broker-sigkill":
            floor.broker.kill()
            self._later(end_at, "end", lambda t: (floor.broker.start(), ended(t)))
        elif kind == "broker-restart":
            floor.broker.stop()
            floor.broker.start()
            ended(time.time() - floor.epoch[0])
        elif kind == "influx-sigstop":
            os.kill(floor.influx.proc.pid, signal.SIGSTOP)
            self._later(end_at, "end", lambda t: (os.kill(floor.influx.proc.pid, signal.SIGCONT), ended(t)))
        elif kind == "influx-sigkill":
            floor.influx.kill()
            self._later(end_at, "end", lambda t: (floor.influx.start(), ended(t)))
        elif kind in ("collector-sigkill", "collector-sigterm"):
            k = f["target"]
            proc = floor.collectors[k]
            proc.send_signal(signal.SIGKILL if kind == "collector-sigkill" else signal.SIGTERM)
            try:
                proc.wait(30)
            except Exception:  # noqa: BLE001 (a SIGTERM not heeded: kill it)
                proc.kill()
                proc.wait(10)
            entry["note"] = f"exit {proc.returncode}"
            self._later(end_at, "end", lambda t, k=k: (floor.start_collector(k), ended(t)))
        elif kind == "collector-restart-influx-down":
            k = f["target"]
            floor.influx.kill()
            floor.collectors[k].kill()
            floor.collectors[k].wait(10)
            self._later(now + 3, "restart", lambda t, k=k: floor.start_collector(k))
            self._later(end_at, "end", lambda t: (floor.influx.start(), ended(t)))
        elif kind.startswith("units-"):
            self._later(end_at, "end", ended)  # the units apply it themselves (unit-faults.json)
        elif kind == "board-account-refused":
            unit = floor.board_site.units[f["target"]]["id"]
            _refuse_account(floor, unit)
            board = floor.desks.boards[f["target"]]
            board.wifi(False)  # the board's session ends; it comes back to a broker that refuses it
            time.sleep(1.5)
            board.wifi(True)
            entry["note"] = f"{unit}'s account removed, broker reloaded, its session dropped"
            self._later(end_at, "end", lambda t: (_restore_accounts(floor), ended(t)))
        elif kind.startswith("board-"):
            unit = floor.board_site.units[f["target"]]["id"]
            entry["note"] = f"{unit}: waits for the desk's call to end"
            with self.lock:
                self.board_queue.setdefault(unit, []).append((f, entry))
        elif kind == "poison":
            from rig.poison import JournalingPoisonUnit

            cls = type("FloorPoison", (JournalingPoisonUnit,), {"faults_only": True})
            floor.poison = cls("127.0.0.1", floor.broker.port, "soak", "u-0666", seat="P-666", resend_after=2.0,
                               clock=lambda: int(floor.world_now_ms())).start()
            self.poison_entry = entry  # its events go out once it is connected (tend_poison)
            entry["note"] = f"u-0666: 30 events, seqs {list(JournalingPoisonUnit.POISON)} poisoned"

    def tend_poison(self) -> None:
        """The poison unit's journal: published once it is connected, resent
        while the ack stalls (what the load generator's owner does)."""
        p = self.floor.poison
        if p is None:
            return
        if self.poison_entry is not None and p.connected.is_set():
            for _ in range(30):
                p.publish_next()
            self.poison_entry["end_s"] = round(time.time() - self.floor.epoch[0], 1)
            self.poison_entry = None
        elif self.poison_entry is None:
            p.tick()

    def _between_calls(self, unit: str, board) -> None:
        """In the desk's thread, after a call: start a board fault waiting for it."""
        with self.lock:
            queue = self.board_queue.get(unit) or []
            item = queue.pop(0) if queue else None
        if item is None:
            return
        f, entry = item
        t = time.time() - self.floor.epoch[0]
        entry["start_s"], entry["note"] = round(t, 1), unit
        kind = f["kind"]
        if kind in ("board-powercut-ntp-down", "board-reset"):
            # The call just ended on the pins; the unit journals it once its
            # hook input has settled: a cut before that loses a call the
            # ground truth counts (a real fault too, but not one to score).
            time.sleep(CALL_RECORDED_S)
        if kind == "board-wifi":
            board.wifi(False)
            time.sleep(f["length"])
            board.wifi(True)
        elif kind == "board-powercut-ntp-down":
            board.ntp(False)
            board.power_cut()
            time.sleep(f["length"])
            board.ntp(True)
        elif kind == "board-ntp-zero":
            board.ntp_server.mode = "zero"
            time.sleep(f["length"])
            board.ntp_server.mode = "good"
        elif kind == "board-reset":
            board.press_reset()
        entry["end_s"] = round(time.time() - self.floor.epoch[0], 1)

    # ---- sampling: events per minute, first ring to queryable ----
    def _sample_loop(self) -> None:
        from urllib.parse import urlencode
        from urllib.request import urlopen

        floor = self.floor
        while not self._stop.wait(2.0):
            t = time.time() - floor.epoch[0]
            sample = {"t": round(t, 1), "events": 0, "spool": 0}
            for k in range(len(floor.collectors)):
                h = floor.health(k)
                sample["events"] += h.get("events", 0)
                sample["spool"] += h.get("spool_depth", 0)
            self.samples.append(sample)
            world = floor.world_now_ms()
            q = {"db": "seatmon", "epoch": "ms",
                 "q": f"SELECT seq, ring_ms FROM call WHERE time > {int(world - 6 * 3600000)}ms GROUP BY unit"}
            try:
                with urlopen(floor.influx.url + "/query?" + urlencode(q), timeout=2) as resp:
                    data = json.loads(resp.read())
            except (OSError, ValueError):
                continue  # InfluxDB down or stopped: seen later
            for series in data.get("results", [{}])[0].get("series", []) or []:
                unit = series["tags"]["unit"]
                for ts, seq, _ in series["values"]:
                    key = (unit, int(seq))
                    if key not in self.sightings:
                        self.sightings[key] = world
                        self.ring_ms[key] = ts


def _password_file(floor) -> Path:
    """The boards' password file, as the broker's config names it."""
    for line in (floor.dir / "mosquitto.conf").read_text().splitlines():
        if line.startswith("password_file "):
            return Path(line.split(" ", 1)[1])
    raise RuntimeError("the broker's config names no password file")


def _refuse_account(floor, unit: str) -> None:
    path = _password_file(floor)
    text = path.read_bytes()
    if floor.password_backup is None:
        floor.password_backup = text
    lines = [line for line in text.decode().splitlines() if not line.startswith(unit + ":")]
    path.write_text("\n".join(lines) + "\n")
    os.kill(floor.broker.proc.pid, signal.SIGHUP)  # Mosquitto reloads its password file


def _restore_accounts(floor) -> None:
    if floor.password_backup is not None:
        _password_file(floor).write_bytes(floor.password_backup)
        floor.password_backup = None
        if floor.broker.proc is not None and floor.broker.proc.poll() is None:
            os.kill(floor.broker.proc.pid, signal.SIGHUP)
