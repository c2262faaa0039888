"""What the virtual desk unit's wires carry: a random traffic model per seat,
or a scripted call list. Both answer `level(input, tick)` for the fake pins.

Traffic model (per seat, times in simulated ms):
- incoming calls arrive at random (Poisson, `calls_per_hour`), one at a time;
- answer times: most within the limit (log-normal, median ~5 s), some late
  (10-25 s), some never answered (the caller gives up after 4-40 s);
- outgoing calls (`outgoing_per_hour`), talk times exponential;
- after a call nobody answered, most agents press the seat's button within
  minutes to acknowledge the missed-call reminder (`ack_share`; the others
  leave it to the shift's end, which ends it too);
- equipment power on during the shift; at shift end most seats switch off a
  few minutes early, `left_on` of them leave it on; no call starts after the
  shift end (the agents have gone home), one under way runs to its end.
It keeps a ground-truth tally of what it generated, per outcome, counted when
each activity is over (`in_progress()` says whether one is running), so a run
can check events generated = events stored."""

from __future__ import annotations

import random

from firmware import cadence
from firmware.scenario import Script
from firmware.ticks import ticks_diff

RING_HZ = 25
NEVER = 1 << 60
PRESS_MS = 400  # a press of the seat's button


class Traffic:
    def __init__(self, seed: int, tick0: int, calls_per_hour: float = 12.0, outgoing_per_hour: float = 4.0,
                 cadence_name: str = "EU", limit_ms: int = 10000, late_share: float = 0.12,
                 unanswered_share: float = 0.08, shift_end_ms: int | None = None, left_on: float = 0.1,
                 talk_mean_ms: int = 180000, ack_share: float = 0.85,
                 windows: list[tuple[int, int]] | None = None):
        self.rng = random.Random(seed)
        # Its own generator: the calls stay those of the same seed without it.
        self.ack_rng = random.Random(seed * 7919 + 1)
        self.ack_share = ack_share
        self.press_at = NEVER  # the next button press, ms from tick0
        self.tick0 = tick0
        self.cad = cadence.PROFILES[cadence_name]
        self.cad_period = sum(self.cad)
        self.limit_ms = limit_ms
        self.call_rate = calls_per_hour / 3600000.0
        self.out_rate = outgoing_per_hour / 3600000.0
        self.late_share = late_share
        self.unanswered_share = unanswered_share
        self.talk_mean_ms = talk_mean_ms
        self.tally = {"answered": 0, "answered_late": 0, "unanswered": 0, "outgoing": 0,
                      "shift_end_left_on": 0, "shift_end_off": 0}
        self.kind = ()  # tally keys of the current activity
        self.plan = None  # (start, ring_end, hook_on, hook_off) of the current activity, ms from tick0
        self.next_at = self._gap(0)
        self.stopped = False
        self.power_off_at = None
        self.shift_end_ms = shift_end_ms
        if shift_end_ms is not None:
            if self.rng.random() < left_on:
                self.tally["shift_end_left_on"] += 1
            else:
                self.power_off_at = shift_end_ms - self.rng.randint(0, 300000)
                self.tally["shift_end_off"] += 1
        self.windows = None
        if windows is not None:
            self._plan_windows(windows, left_on)
        self._t = 0

    def _plan_windows(self, windows: list[tuple[int, int]], left_on: float) -> None:
        """A roster of shifts (start, end ms from tick0; a week's): calls only
        inside a shift, none starting after its end; before each end the
        agent switches the equipment off (or leaves it on, `left_on`), and
        it is on again some minutes before the seat's next shift. Each shift
        start (the unit's self-test) and end is counted once it has passed."""
        self.windows = sorted((s, e) for s, e in windows if e > 0)
        self.shift_end_ms = None
        self.tally["selftest"] = 0
        self.offs: list[tuple[int, int]] = []  # (power off, on again), ms from tick0
        self.ends: list[tuple[int, str]] = []
        for i, (start, end) in enumerate(self.windows):
            nxt = self.windows[i + 1][0] if i + 1 < len(self.windows) else NEVER
            if self.rng.random() < left_on:
                self.ends.append((end, "shift_end_left_on"))
            else:
                self.ends.append((end, "shift_end_off"))
                self.offs.append((end - self.rng.randint(60000, 300000), nxt - 600000))
        self.starts = [max(s, 0) for s, _ in self.windows]
        self.next_at = self._next_in_window(0)

    def _window_at(self, t: int):
        for start, end in self.windows:
            if start <= t < end:
                return start, end
        return None

    def _next_in_window(self, t: int) -> int:
        """The next call's start after `t`: a gap inside the shift running,
        else counted from the next shift's start."""
        at = self._gap(t)
        for start, end in self.windows:
            if end <= t:
                continue
            at = self._gap(max(t, start))
            if at < end:
                return at
            t = end
        return NEVER

    def _gap(self, t: int) -> int:
        rate = self.call_rate + self.out_rate
        if rate <= 0:
            return NEVER
        return t + int(self.rng.expovariate(rate)) + 1000

    def _new_activity(self, t: int):
        rng = self.rng
        if rng.random() < self.out_rate / (self.call_rate + self.out_rate):
            talk = int(rng.expovariate(1.5 / self.talk_mean_ms)) + 3000
            self.plan = (t, t, t, t + talk)
            self.kind = ("outgoing",)
            return
        r = rng.random()
        talk = int(rng.expovariate(1 / self.talk_mean_ms)) + 5000
        if r < self.unanswered_share:
            give_up = rng.randint(4000, 40000)
            self.plan = (t, t + give_up, None, None)
            self.kind = ("unanswered",)
            self._plan_ack(t + give_up + 12000)
        else:
            if r < self.unanswered_share + self.late_share:
                answer = rng.randint(self.limit_ms + 500, self.limit_ms + 15000)
                self.kind = ("answered", "answered_late")
            else:
                answer = min(int(rng.lognormvariate(8.5, 0.45)), self.limit_ms - 800)
                answer = max(answer, 1200)
                self.kind = ("answered",)
            self.plan = (t, t + answer, t + answer, t + answer + talk)

    def _plan_ack(self, missed_at: int) -> None:
        """The agent presses the button some minutes after the reminder starts;
        never at or after the shift end, where the button would postpone. A
        press still to come acknowledges this reminder too."""
        if self.ack_rng.random() >= self.ack_share or self.press_at != NEVER and self.press_at > missed_at:
            return
        at = missed_at + self.ack_rng.randint(30000, 600000)
        if self.shift_end_ms is None or at + PRESS_MS < self.shift_end_ms:
            self.press_at = at

    def _advance(self, t: int):
        if self.windows is not None:
            while self.starts and t >= self.starts[0]:
                self.starts.pop(0)
                self.tally["selftest"] += 1
            while self.ends and t >= self.ends[0][0]:
                self.tally[self.ends.pop(0)[1]] += 1
        plan = self.plan
        if plan is not None:
            end = plan[3] if plan[3] is not None else plan[1] + 12000  # room for the miss timeout
            if t >= end + 1500:
                # Counted once the unit has certainly reported it.
                for k in self.kind:
                    self.tally[k] += 1
                self.plan = None
                self.next_at = NEVER if self.stopped else (
                    self._next_in_window(t) if self.windows is not None else self._gap(t))
        if self.plan is None and t >= self.next_at:
            if self.windows is not None and self._window_at(t) is None:
                self.next_at = self._next_in_window(t)
            elif self.shift_end_ms is not None and t >= self.shift_end_ms:
                self.next_at = NEVER
            else:
                self._new_activity(t)

    def level(self, name, tick: int):
        t = ticks_diff(tick, self.tick0)
        if t != self._t:
            self._t = t
            self._advance(t)
        plan = self.plan
        if name == "ring":
            if plan is None or not plan[0] <= t < plan[1]:
                return 1  # active low: the opto is dark
            # Inside the cadence's on-periods the opto pulses at RING_HZ.
            pos = (t - plan[0]) % self.cad_period
            on = False
            for i, step in enumerate(self.cad):
                if pos < step:
                    on = i % 2 == 0
                    break
                pos -= step
            pulse = on and ((t - plan[0]) * RING_HZ // 500) % 2 == 0
            return 0 if pulse else 1
        if name == "hook":
            off_hook = plan is not None and plan[2] is not None and plan[2] <= t < plan[3]
            return 0 if off_hook else 1
        if name == "power":
            if self.windows is not None:
                return 0 if any(off <= t < on for off, on in self.offs) else 1
            return 0 if self.power_off_at is not None and t >= self.power_off_at else 1
        if name == "button":
            return 0 if self.press_at <= t < self.press_at + PRESS_MS else 1  # pull-up: low while pressed
        return 0

    def adc(self, tick: int) -> int:
        return 3000 if self.level("power", tick) else 500

    def stop_new(self) -> None:
        """Start no new call from now on; the one in progress runs to its end."""
        self.stopped = True
        self.next_at = NEVER

    def in_progress(self) -> int:
        return 0 if self.plan is None else 1


class ScriptWires:
    """Wires from a scenario file: a firmware.scenario.Script, levels as a
    real board's pins would show them (ring and hook active low)."""

    def __init__(self, script: Script, tick0: int):
        self.script = script
        self.tick0 = tick0
        self._t = None
        self._inp: dict = {}

    def _at(self, tick):
        t = ticks_diff(tick, self.tick0)
        if t != self._t:
            self._t = t
            self._inp = self.script.inputs(t)
        return self._inp

    def level(self, name, tick: int):
        inp = self._at(tick)
        if name in ("ring", "hook"):
            return 0 if inp[name] else 1
        if name == "button":
            return 0 if inp["button"] else 1
        if name == "power":
            return 1 if inp["power"] else 0
        return 1 if inp.get(name) else 0

    def adc(self, tick: int) -> int:
        return 3000 if self._at(tick)["power"] else 500


def script_from(spec: dict, cadence_name: str = "EU") -> Script:
    """A scenario file's unit entry -> Script. Keys (ms from the unit's start):
    answered: [[ring_at, answer_at, hang_up_at], ...]; rings: [[at, count], ...];
    outgoing: [[at, until], ...]; press: [at, ...]; power: [[at, on], ...]."""
    cad = list(cadence.PROFILES[cadence_name])
    s = Script(period_ms=10, tick0=0, ring_hz=RING_HZ)
    for ring_at, answer_at, hang_up in spec.get("answered", []):
        s.answer(answer_at, cad, ring_at, hang_up)
    for at, count in spec.get("rings", []):
        s.ring(at, cad, rings=count)
    for at, until in spec.get("outgoing", []):
        s.off_hook(at, until)
    for at in spec.get("press", []):
        s.press(at)
    for at, on in spec.get("power", []):
        s.set_power(at, bool(on))
    return s
