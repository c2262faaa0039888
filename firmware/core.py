# The desk unit's deciding logic: pure and deterministic.
#
#   core = Core(raw_config, now)          # now: ticks_ms of the board
#   events = core.step(now, inputs)       # once per sample (e.g. every 10 ms)
#   core.set_clock(now, epoch_ms)         # after NTP (or "unsynced" guesses)
#   core.apply_config(raw, now)           # a new config from the host
#   core.pattern / core.led(now) / core.buzz(now) / core.relay
#
# `inputs` is a dict with every key: ring (opto level), hook (True =
# off-hook), power (bool, or an ADC reading; None = unreadable), button
# (pressed), disc (line disconnect signal, read only with disconnect
# supervision). Events come out as protocol event dicts without boot/seq,
# which the journal assigns. See docs/firmware.md.
# The wall clock enters only through set_clock(); durations only from ticks.

from firmware import cadence, config, localtime, patterns
from firmware.sensing import Button, Debouncer, PowerSense, RingDetector
from firmware.ticks import ticks_add, ticks_diff

TYPE_CHECKING = False  # mypy takes this name as true (mypy-device.ini); no typing import on the board
if TYPE_CHECKING:
    from typing import Any

IDLE, RINGING, TALKING, OUTGOING = "idle", "ringing", "talking", "outgoing"
# Firmware epoch (2026-01-01T00:00Z): the stamp of last resort when the unit
# never had a clock; such events say clock "unsynced".
FW_EPOCH_MS = 1767225600000
SHIFT_EVAL_MS = 1000  # shift logic needs second, not sample, resolution
HOOK_STUCK_MS = 3600000  # off-hook this long at shift start: handset left off
REANCHOR_MS = 86400000  # keep the ticks->wall anchor well inside ticks_diff's range
# Ticks kept while idle are moved up to at most this far back (ticks_diff is
# only right within 2**29 ms, 6.2 days); longer than any grace or blanking.
HORIZON_MS = 2 * 86400000
PENDING_MAX = 64  # events held for a clock; beyond this the oldest are stamped now
# An NTP answer that moves a synced clock by more than this is a jump: shift
# ends wait until a later answer agrees (no relay is ever cut by a jump).
CLOCK_JUMP_MS = 60000
NO_EVENTS = ()  # step() returns this when nothing happened: no allocation per sample


class Core:
    def __init__(self, raw_config, now):
        self.fault_codes = {}
        self.boot_tick = now
        self._pending = []  # [tick, event] waiting for a wall-clock stamp
        try:
            self.conf = config.validate(raw_config)
        except config.ConfigError as exc:
            self.conf = config.safe_defaults(raw_config)
            self.fault_codes["config_invalid"] = exc.text
            self._emit(now, "fault", {"code": "config_invalid", "detail": exc.text[:200]})
        self.ring = RingDetector()
        self.hook = Debouncer(30, False)
        self.disc = Debouncer(30, False)
        self.power = PowerSense()
        self.button = Button()
        self._tune()
        self._hook_raw = False
        self._blank_until = now
        self._power_raw = self  # never equal to a reading: first sample updates
        self._dirty = True
        self.state = IDLE
        self.call = None  # type: Any  # dict of the call in progress
        self.last_activity = now
        self._idle_carry = 0  # idle ms before last_activity, once it was moved up
        self.missed = False
        self.apology_until = None
        # Clock: (anchor_tick, anchor_epoch_ms, source) or None.
        self.clock = None
        self.unsynced_stamped = 0  # events stamped from an unsynced clock this boot
        self.jumped = None  # tick of the last clock jump, until a later sync agrees
        self._end_by_jump = False  # the open shift's end was crossed by a clock jump
        # Shifts.
        self.shift = None  # type: Any  # (label, start_utc, end_utc) of the current/last shift
        self.phase = None  # None, "open", "ending", "reminding", "done"
        self.end = None  # type: Any  # dict with the shift-end bookkeeping
        self._next_shift_eval = now
        self._next_lookup = 0  # wall ms of the next shift-table lookup
        # Outputs.
        self.relay = True  # closed: equipment powered
        self.pattern = "idle"
        self.pattern_since = now
        self._set_pattern(now)

    def _tune(self):
        """Set every detector parameter from self.conf (state is kept)."""
        c = self.conf
        self.profile = cadence.resolve(c["cadence"], c["cadences"])
        self.ring.join_ms = c["ring_join_ms"]
        self.ring.min_ms = c["ring_min_ms"]
        self.hook.hold_ms = c["hook_debounce_ms"]
        self.disc.hold_ms = c["hook_debounce_ms"]
        self.button._deb.hold_ms = c["button_debounce_ms"]
        self.power.mode = c["power_sense"]
        self.power.on_level = c["power_on_level"]
        self.power.off_level = c["power_off_level"]
        self._supervised = c["disconnect_supervision"]
        self._miss_after_ms = self.profile.max_gap_ms + c["miss_margin_ms"]

    def apply_config(self, raw_config, now):
        """Take a new config (e.g. the retained one from the host) without
        losing a call in progress. Returns None when applied; when invalid,
        keeps the current config, emits a `fault` event and returns the error
        text (the shell persists only configs that were applied)."""
        try:
            conf = config.validate(raw_config)
        except config.ConfigError as exc:
            self._emit(now, "fault", {"code": "config_rejected", "detail": exc.text[:200]})
            return exc.text
        self.conf = conf
        if "config_invalid" in self.fault_codes:
            del self.fault_codes["config_invalid"]
        self._tune()
        self._power_raw = self
        self._next_lookup = 0
        self._dirty = True
        return None

    def fault(self, now, code, detail=None):
        """A fault the shell found (bad message, safe mode): journaled like the
        core's own events. Changes no decision."""
        fields = {"code": code}
        if detail:
            fields["detail"] = detail[:200]
        self._emit(now, "fault", fields)

    def shell_event(self, now, kind, fields):
        """Another event the shell reports (an update's steps): journaled like
        the core's own. Changes no decision."""
        self._emit(now, kind, fields)

    # ---- clock ----------------------------------------------------------
    def set_clock(self, now, epoch_ms, source="ntp"):
        """The wall clock read at tick `now` (source 'ntp', or 'unsynced' for a
        best-effort guess such as the RTC or the last journaled stamp). An
        unsynced guess never replaces an NTP anchor, nor the guess this boot's
        unsynced stamps came from (one offset corrects them all).

        The first NTP time after unsynced stamps emits a `clock` event whose
        offset_ms, added to every unsynced `ts` of this boot, gives true
        time. An NTP time that moves a synced clock by more than
        CLOCK_JUMP_MS holds the shift logic until a later one agrees."""
        if source != "ntp":
            if self.clock is not None and (self.clock[2] == "ntp" or self.unsynced_stamped):
                return
        elif self.clock is not None:
            moved = epoch_ms - self.wall(now)
            if self.clock[2] == "ntp":
                self.jumped = now if moved > CLOCK_JUMP_MS or moved < -CLOCK_JUMP_MS else None
                if self.jumped is not None and self.phase == "open":
                    # Did a jump (this or an earlier one) carry the clock past the shift end?
                    end = self.shift[2]
                    self._end_by_jump = epoch_ms >= end and (self._end_by_jump or self.wall(now) < end)
            elif self.unsynced_stamped:
                self._emit(now, "clock", {"offset_ms": moved, "unsynced": self.unsynced_stamped})
        self.clock = (now, epoch_ms, source)
        self._next_shift_eval = now  # evaluate shifts at the next sample
        self._next_lookup = 0

    def wall(self, tick):
        """Epoch ms of a tick, or None without a clock."""
        if self.clock is None:
            return None
        return self.clock[1] + ticks_diff(tick, self.clock[0])

    def synced(self):
        return self.clock is not None and self.clock[2] == "ntp"

    # ---- events ---------------------------------------------------------
    def holding(self):
        """Events emitted but not yet handed out for the journal (waiting for a stamp)."""
        return len(self._pending)

    def _emit(self, tick, kind, fields, shift=None):
        c = self.conf
        ev = {"v": 1, "kind": kind, "site": c["site"], "unit": c["unit"], "seat": c["seat"]}
        for k in fields:
            ev[k] = fields[k]
        if shift:
            ev["shift"] = shift
        self._pending.append([tick, ev])

    def _stamp_ready(self, now):
        """Stamp held events: at once with an NTP clock; after clock_wait_ms
        with a best-effort clock (marked unsynced)."""
        if not self._pending:
            return NO_EVENTS
        out = []
        keep = []
        synced = self.synced()
        over = len(self._pending) - PENDING_MAX
        for item in self._pending:
            tick, ev = item
            if synced:
                ev["ts"] = self.wall(tick)
                ev["clock"] = "ntp"
            elif over > 0 or ticks_diff(now, tick) >= self.conf["clock_wait_ms"]:
                over -= 1
                if self.clock is None:
                    # Never had a clock: time since boot from the firmware epoch.
                    self.clock = (self.boot_tick, FW_EPOCH_MS, "unsynced")
                ev["ts"] = self.wall(tick)
                ev["clock"] = "unsynced"
                self.unsynced_stamped += 1
            else:
                keep.append(item)
                continue
            if "shift" not in ev and ev["clock"] == "ntp" and (self.conf["shifts"] or self.conf["overrides"]):
                s = localtime.shift_at(self.conf, ev["ts"])
                if s:
                    ev["shift"] = s[0]
            out.append(ev)
        self._pending = keep
        return out

    # ---- the sample step -----------------------------------------------
    def step(self, now, inputs):
        """Feed one sample taken at tick `now`; return the events that are
        ready (stamped), a list of dicts, or the empty tuple NO_EVENTS.

        `inputs` must hold every key (ring, hook, power, button, disc); the
        hot path below skips each detector while its input is quiet, since
        this runs every 10 ms on the board."""
        c = self.conf
        hook_raw = inputs["hook"]
        hook = self.hook
        if hook_raw != self._hook_raw:
            # Hook transitions click the ring opto: ignore pulses around them.
            self._hook_raw = hook_raw
            self._blank_until = ticks_add(now, c["hook_blank_ms"])
        if hook_raw != hook.value or hook._first is not None:
            edge = hook.update(now, hook_raw)
            if edge is not None:
                self._on_hook_edge(edge, hook.value)
                self._dirty = True
        ring = self.ring
        pulse = inputs["ring"]
        if pulse and (hook.value or hook_raw or ticks_diff(now, self._blank_until) < 0):
            pulse = False
        if pulse or ring._last is not None:
            r = ring.update(now, pulse)
            if r is not None:
                self._on_burst(r[0], r[1])
                self._dirty = True
        if self._supervised:
            d = self.disc.update(now, inputs["disc"])
            if d is not None and self.disc.value and self.call is not None and self.state in (TALKING, OUTGOING):
                if "disc" not in self.call:
                    self.call["disc"] = d
        reading = inputs["power"]
        if reading != self._power_raw or self.power.holding:
            self._power_raw = reading
            self.power.update(now, reading)
        state = self.state
        if state != IDLE:
            self._active(now)
            if state == RINGING and not ring.busy():
                if ticks_diff(now, self.call["last_end"]) > self._miss_after_ms:
                    self._end_unanswered()
                    self._dirty = True
        elif ring._start is not None:
            self._active(now)
        button = self.button
        if inputs["button"] or button._deb.value or button._deb._first is not None:
            press = button.update(now, inputs["button"])
            if press is not None:
                self._on_button(press)
                self._dirty = True
        if ticks_diff(now, self._next_shift_eval) >= 0:
            self._next_shift_eval = ticks_add(now, SHIFT_EVAL_MS)
            if self.clock is not None and ticks_diff(now, self.clock[0]) > REANCHOR_MS:
                self.clock = (now, self.wall(now), self.clock[2])
            self._fold_old_ticks(now)
            self._shift_step(now)
            self._dirty = True
        if self._dirty or self.state == RINGING or self.apology_until is not None:
            self._dirty = False
            self._set_pattern(now)
        if self._pending:
            return self._stamp_ready(now)
        return NO_EVENTS

    # ---- calls ------------------------------------------------------------
    def _on_burst(self, what, t):
        if what == "start":
            if self.state == IDLE:
                self.state = RINGING
                self.call = {"first": t, "rings": 1, "last_end": t, "in_burst": True}
            elif self.state == RINGING:
                call = self.call
                if ticks_diff(t, call["last_end"]) > self.profile.ring_gap_ms:
                    call["rings"] += 1
                call["in_burst"] = True
        elif self.state == RINGING:
            self.call["last_end"] = t
            self.call["in_burst"] = False

    def _exceeded(self, ms, rings):
        """Which limit a call went past: "time", "rings", "both", or None (in
        time). The house rule is 10 s *and* 3 rings; on a fast cadence the
        ring limit decides first (the UK's 4th ring starts at 9 s)."""
        c = self.conf
        over_time = ms > c["limit_ms"]
        over_rings = c["limit_rings"] != 0 and rings > c["limit_rings"]
        if over_time and over_rings:
            return "both"
        if over_time:
            return "time"
        if over_rings:
            return "rings"
        return None

    def _limits(self, fields, exceeded):
        """Both limits, and the one the call went past, go with every call."""
        fields["limit_ms"] = self.conf["limit_ms"]
        fields["limit_rings"] = self.conf["limit_rings"]
        if exceeded is not None:
            fields["exceeded"] = exceeded
        return fields

    def _on_hook_edge(self, t, off_hook):
        c = self.conf
        if off_hook:
            if self.state == RINGING:
                call = self.call
                answer_ms = ticks_diff(t, call["first"])
                call["answer_ms"] = answer_ms
                call["answer_t"] = t
                call["exceeded"] = self._exceeded(answer_ms, call["rings"])
                call["within"] = call["exceeded"] is None
                call["apology"] = not call["within"] and c["apology_ms"] > 0
                if call["apology"]:
                    self.apology_until = ticks_add(t, c["apology_ms"])
                self.state = TALKING
                self.ring.reset()
            elif self.state == IDLE:
                self.state = OUTGOING
                self.call = {"start": t}
            return
        if self.state == TALKING:
            call = self.call
            fields = self._limits({
                "outcome": "answered", "rings": call["rings"], "ring_ms": call["answer_ms"],
                "answer_ms": call["answer_ms"], "within_limit": call["within"],
                "apology_prompted": call["apology"], "talk_ms": ticks_diff(t, call["answer_t"]),
            }, call["exceeded"])
            self._hung_up(fields, call)
            self._emit(call["first"], "call", fields)
        elif self.state == OUTGOING:
            fields = {"talk_ms": ticks_diff(t, self.call["start"])}
            self._hung_up(fields, self.call)
            self._emit(self.call["start"], "outgoing", fields)
        self.state = IDLE
        self.call = None
        self.apology_until = None

    def _hung_up(self, fields, call):
        if self.conf["disconnect_supervision"]:
            fields["hung_up_first"] = "caller" if "disc" in call else "agent"

    def _end_unanswered(self):
        call = self.call
        ring_ms = ticks_diff(call["last_end"], call["first"])
        exceeded = self._exceeded(ring_ms, call["rings"])
        self._emit(call["first"], "call", self._limits({
            "outcome": "abandoned" if exceeded is None else "missed", "rings": call["rings"],
            "ring_ms": ring_ms, "within_limit": False, "apology_prompted": False,
        }, exceeded))
        self.state = IDLE
        self.call = None
        if not self.missed:
            self.missed = True
            self._emit(call["last_end"], "reminder", {"pattern": "missed", "action": "start", "reason": "unanswered call"})

    def _on_button(self, t):
        if self.missed:
            self.missed = False
            self._emit(t, "reminder", {"pattern": "missed", "action": "ack"})
        elif self.phase in ("ending", "reminding") or (self.phase == "done" and not self.relay):
            self._postpone(t)

    def _active(self, now):
        self.last_activity = now
        self._idle_carry = 0

    def _fold_old_ticks(self, now):
        # Ticks that stay put while the seat is idle would wrap after 6.2 days.
        over = ticks_diff(now, self.last_activity) - HORIZON_MS
        if over > 0:
            self.last_activity = ticks_add(self.last_activity, over)
            self._idle_carry += over
        if ticks_diff(now, self._blank_until) > HORIZON_MS:
            self._blank_until = ticks_add(now, -HORIZON_MS)
        if ticks_diff(now, self.pattern_since) > HORIZON_MS:
            self.pattern_since = ticks_add(self.pattern_since, HORIZON_MS)  # a whole number of every period

    def idle_ms(self, now):
        return self._idle_carry + max(0, ticks_diff(now, self.last_activity))

    # ---- shifts -----------------------------------------------------------
    def _shift_step(self, now):
        c = self.conf
        if not self.synced() or not (c["shifts"] or c["overrides"]) or self.jumped is not None:
            return  # no shift logic on a clock that jumped until a later sync agrees
        wall = self.wall(now)
        if self.phase in (None, "done"):
            # Shift times are whole minutes: look them up once a minute.
            if wall < self._next_lookup:
                return
            self._next_lookup = (wall // 60000 + 1) * 60000
            cur = localtime.shift_at(c, wall)
            if cur is not None and (self.shift is None or cur[0] != self.shift[0]):
                self._start_shift(now, cur)
            return
        if self.phase == "open":
            if wall < self.shift[2]:
                return
            end_tick = ticks_add(now, self.shift[2] - wall)
            self.end = {"end": end_tick, "due": end_tick, "count": 0, "overtime": 0, "jump": self._end_by_jump}
            nxt = localtime.shift_at(c, wall)
            if nxt is not None and nxt[0] != self.shift[0] and nxt[1] <= self.shift[2]:
                # Back-to-back shifts: a handover, the seat stays staffed and nothing
                # is to be switched off, so no action (and no offence) whatever the power.
                self._shift_end(now, self._equipment(), "none")
                self._start_shift(now, nxt)
                return
            self.phase = "ending"
        if self.phase == "ending":
            e = self.end
            since = e["due"] if ticks_diff(self.last_activity, e["due"]) < 0 else self.last_activity
            if ticks_diff(now, e["due"]) < 0 or ticks_diff(now, since) < c["shift_end_grace_ms"]:
                return
            state = self.power.state
            if state is None:
                self._shift_end(now, "unknown", "logged")
            elif not state:
                self._shift_end(now, "off", "postponed" if e["count"] else "none")
            elif c["shift_end_mode"] == "log" or (c["shift_end_mode"] == "cut" and e["jump"]):
                self._shift_end(now, "on", "logged")  # a clock jump never cuts the power
            elif c["shift_end_mode"] == "cut":
                self.relay = False
                self._shift_end(now, "on", "cut")
            else:
                self.phase = "reminding"
                e["remind"] = now
                self._emit(now, "reminder", {"pattern": "shift_end", "action": "start", "reason": "equipment left on"}, self.shift[0])
        elif self.phase == "reminding":
            e = self.end
            off = self.power.state is False
            if off or ticks_diff(now, e["remind"]) >= c["remind_max_ms"]:
                self._emit(now, "reminder", {"pattern": "shift_end", "action": "stop"}, self.shift[0])
                extra = {"off_after_ms": ticks_diff(now, e["end"])} if off else None
                self._shift_end(now, "on", "reminded", extra)

    def _equipment(self):
        s = self.power.state
        return "unknown" if s is None else ("on" if s else "off")

    def _shift_end(self, now, equipment, action, extra=None):
        fields = {"equipment": equipment, "action": action,
                  "idle_ms": self.idle_ms(now),
                  "overtime_ms": self.end["overtime"]}
        if extra:
            for k in extra:
                fields[k] = extra[k]
        if not self.end.get("reported"):
            # One shift_end per shift: a re-check after overtime granted past
            # a cut acts (cuts again) but reports nothing new.
            self.end["reported"] = True
            self._emit(now, "shift_end", fields, self.shift[0])
        if self.missed:  # nobody is left to acknowledge it: the shift's end ends the reminder
            self.missed = False
            self._emit(now, "reminder", {"pattern": "missed", "action": "stop", "reason": "shift ended"},
                       self.shift[0])
        self.phase = "done"

    def _postpone(self, t):
        c = self.conf
        e = self.end
        if e is None or e["count"] >= c["postpone_max"]:
            return
        e["count"] += 1
        e["due"] = ticks_add(t, c["postpone_ms"])
        e["overtime"] = ticks_diff(e["due"], e["end"])
        self._emit(t, "postpone", {"granted_ms": c["postpone_ms"], "count": e["count"]}, self.shift[0])
        if self.phase == "reminding":
            self._emit(t, "reminder", {"pattern": "shift_end", "action": "stop", "reason": "postponed"}, self.shift[0])
            self.phase = "ending"
        elif self.phase == "done":
            # After a cut: power back for the overtime, then cut again.
            self.relay = True
            self.phase = "ending"

    def _start_shift(self, now, cur):
        self.shift = cur
        self.phase = "open"
        self._end_by_jump = False
        self.end = None
        self.relay = True
        self._selftest(now)

    def _selftest(self, now):
        checks = {}
        faults = []
        if not self.hook.value:
            checks["hook"] = "on"
        elif self.state == OUTGOING and ticks_diff(now, self.call["start"]) >= HOOK_STUCK_MS:
            checks["hook"] = "stuck_off"
            faults.append("hook_stuck")
        else:
            checks["hook"] = "in_call"
        ring_since = self.ring.pulsing_since()
        if ring_since is not None and ticks_diff(now, ring_since) >= self.conf["stuck_ring_ms"]:
            checks["ring"] = "stuck"
            faults.append("ring_stuck")
        else:
            checks["ring"] = "ok"
        if self.conf["power_sense"] == "none":
            checks["power"] = "not_fitted"
        elif self.power.state is None:
            checks["power"] = "unreadable"
            faults.append("power_unreadable")
        else:
            checks["power"] = "on" if self.power.state else "off"
        label = self.shift[0]
        self._emit(now, "selftest", {"ok": not faults, "checks": checks, "faults": faults}, label)
        if faults:
            self.fault_codes["selftest"] = ",".join(faults)
            self._emit(now, "fault", {"code": "selftest", "detail": ",".join(faults)}, label)
        elif "selftest" in self.fault_codes:
            del self.fault_codes["selftest"]

    # ---- outputs ----------------------------------------------------------
    def _set_pattern(self, now):
        # The strongest applicable pattern, checked from the top (no list built).
        c = self.conf
        p = "idle"
        if self.state == RINGING:
            elapsed = ticks_diff(now, self.call["first"])
            if elapsed >= c["limit_ms"] or (c["limit_rings"] and self.call["rings"] > c["limit_rings"]):
                p = "urgent"
            elif elapsed >= c["notice_ms"]:
                p = "notice"
        if self.apology_until is not None and ticks_diff(now, self.apology_until) >= 0:
            self.apology_until = None
        if p == "idle":
            if self.apology_until is not None:
                p = "apologise"
            elif self.fault_codes:
                p = "fault"
            elif self.phase == "reminding":
                p = "shift_end"
            elif self.missed:
                p = "missed"
        if p != self.pattern:
            self.pattern = p
            self.pattern_since = now

    def led(self, now):
        """LED level for the active pattern at tick `now`."""
        return patterns.level(self.pattern, ticks_diff(now, self.pattern_since))

    def buzz(self, now):
        """Buzzer level (always off unless the config fits a buzzer)."""
        return self.conf["buzzer"] and patterns.buzz(self.pattern, ticks_diff(now, self.pattern_since))

    def outputs(self, now):
        return {"pattern": self.pattern, "led": self.led(now), "buzzer": self.buzz(now), "relay": self.relay}
