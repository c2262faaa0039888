"""A virtual desk unit: the real firmware (board_esp32.Board, shell.Unit, the
core, journal and MQTT client) on per-unit fake board modules, its journal in
real files under the unit's data dir, its MQTT over real sockets."""

from __future__ import annotations

import json
import os
import random
from datetime import datetime
from zoneinfo import ZoneInfo

from firmware import config as fw_config
from firmware import localtime
from firmware.board_esp32 import PINS, Board
from firmware.shell import Unit
from tools import tztable
from virtual.units.fakes import Machine, Network, NtpNet, SimClock
from virtual.units.traffic import ScriptWires, Traffic, script_from

PIN_NAMES = {gpio: name for name, gpio in PINS.items() if gpio is not None}


def unit_id(i: int) -> str:
    return "u-%04d" % i


def seat_id(i: int) -> str:
    return "S-%04d" % i


def _hhmm(ms: int, tz: str = "UTC", floor_min: int = 1) -> str:
    """HH:MM local, down to a multiple of `floor_min` minutes."""
    local = datetime.fromtimestamp(ms / 1000, ZoneInfo(tz))
    return local.replace(minute=local.minute - local.minute % floor_min).strftime("%H:%M")


def default_config(site: str, i: int, shift_end_ms: int | None = None, now_ms: int | None = None,
                   shift_change_ms: int | None = None, tz: str = "UTC") -> dict:
    """A unit's config as provisioning would write it for a site in zone `tz`
    (an IANA name): the unit keeps local time from the offset table and
    announces the name in its birth."""
    conf = {"site": site, "unit": unit_id(i), "seat": seat_id(i), "buzzer": True, "tz_name": tz}
    if now_ms is not None:
        year = datetime.fromtimestamp(now_ms / 1000, ZoneInfo("UTC")).year
        conf["tz"] = tztable.build(tz, year, year + 2)
    if shift_end_ms is not None and now_ms is not None:
        # Shifts (local time) from the full hour before the last one to
        # `shift_end_ms` from now, every day: one, or `early` and `late` with the
        # change at the quarter-hour before `shift_change_ms` from now (a roster's times).
        start, end = _hhmm(now_ms - 3600000, tz, 60), _hhmm(now_ms + shift_end_ms, tz)
        if shift_change_ms is not None and 0 < shift_change_ms < shift_end_ms:
            change = _hhmm(now_ms + shift_change_ms, tz, 15)
            day = [["early", start, change], ["late", change, end]]
        else:
            day = [["sim", start, end]]
        conf["shifts"] = {d: day for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        conf["shift_end_mode"] = "remind"
        conf["shift_end_grace_ms"] = 60000
        conf["remind_max_ms"] = 900000  # a seat left on is reported after 15 reminding minutes
    return conf


def roster_config(site: str, i: int, shifts: dict, now_ms: int, tz: str) -> dict:
    """A unit's config for a seat on a roster: `shifts` as the config has
    them (weekday: [[name, "HH:MM", "HH:MM"], ...]), in zone `tz`."""
    conf = default_config(site, i, None, now_ms, None, tz)
    conf.update(shifts=shifts, shift_end_mode="remind", shift_end_grace_ms=60000, remind_max_ms=900000)
    return conf


def shift_windows(conf: dict, from_ms: int, to_ms: int) -> list[tuple[int, int]]:
    """The (start, end) UTC ms of every shift of `conf` that overlaps
    [from_ms, to_ms), as the firmware reckons them (firmware/localtime.py)."""
    parsed = fw_config.validate(dict(conf))
    out = []
    day = localtime.to_local_ms(parsed["tz"], from_ms) // localtime.MS_PER_DAY - 1
    while True:
        s_local = day * localtime.MS_PER_DAY
        if localtime.to_utc_ms(parsed["tz"], s_local) >= to_ms:
            return out
        for _name, start, end in localtime.shifts_on(parsed, day):
            s = localtime.to_utc_ms(parsed["tz"], s_local + start * localtime.MS_PER_MIN)
            e = localtime.to_utc_ms(parsed["tz"], s_local + (end + (1440 if end <= start else 0)) * localtime.MS_PER_MIN)
            if e > from_ms and s < to_ms:
                out.append((s, e))
        day += 1


class VirtualUnit:
    def __init__(self, data_dir: str, site: str, index: int, broker: tuple[str, int], speed: float = 1.0,
                 seed: int = 0, traffic: dict | None = None, script: dict | None = None,
                 link: dict | None = None, settings: dict | None = None, config: dict | None = None,
                 reset_cause: int = Machine.PWRON_RESET, secrets: dict | None = None,
                 world_epoch: tuple[float, int] | None = None, tz: str = "UTC", shifts: dict | None = None,
                 horizon_ms: int = 9 * 86400000):
        self.index = index
        self.dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        rng = random.Random(seed * 7919 + index)
        self.clock = SimClock(speed, rtc_error_ms=rng.randint(-5000, 5000), tick0=rng.randint(0, 1 << 29),
                              epoch=world_epoch)
        tick0 = self.clock.ticks_ms()
        traffic = dict(traffic or {})
        shift_end = traffic.pop("shift_end_ms", None)
        shift_change = traffic.pop("shift_change_ms", None)
        now = self.start_ms = self.clock.true_ms()
        if shift_end is not None:
            # The schedule says HH:MM: the seats stop taking calls at that
            # minute, not up to 59 s later (a call then has no shift).
            shift_end = (now + shift_end) // 60000 * 60000 - now
        cfg_path = os.path.join(data_dir, "config.json")
        if shifts is not None:
            # A roster (a week's day, late and night shifts): the traffic follows its shifts.
            config = roster_config(site, index, shifts, now, tz)
            traffic["windows"] = [(s - now, e - now) for s, e in shift_windows(config, now, now + horizon_ms)]
        if not os.path.exists(cfg_path):  # provisioning: the first config only
            conf = config if config is not None else default_config(site, index, shift_end, now, shift_change, tz)
            with open(cfg_path, "w") as fh:
                json.dump(conf, fh)
        with open(os.path.join(data_dir, "secrets.json"), "w") as fh:
            json.dump(dict({"wifi_ssid": "sim", "wifi_password": "sim"}, **(secrets or {})), fh)
        if script is not None:
            self.wires = ScriptWires(script_from(script), tick0)
            self.traffic = None
        else:
            self.traffic = Traffic(seed * 7919 + index, tick0, shift_end_ms=shift_end, **traffic)
            self.wires = self.traffic
        self.machine = Machine(self.clock, self.wires, PIN_NAMES, reset_cause)
        self.network = Network(ip="10.%d.%d.%d" % (index >> 16 & 255, index >> 8 & 255, index & 255 or 1))
        self.socket = NtpNet(self.clock, self.network)
        s = {"mqtt": {"host": broker[0], "port": broker[1]}, "wake_ms": int(100 * speed), "max_batch": 1 << 30}
        s["mqtt"].update(link or {})
        s.update(settings or {})
        self.board = Board(s, machine=self.machine, network=self.network, socket=self.socket,
                           clock=self.clock, speed=speed)
        self.unit = Unit(self.board, s, data_dir)

    async def run(self):
        await self.unit.run()

    def tally(self) -> dict:
        t = dict(self.traffic.tally) if self.traffic else {}
        if self.traffic:
            t["in_progress"] = self.traffic.in_progress()
        t["journaled"] = self.unit.journal.next_seq - 1
        t["appended"] = self.unit.appended
        t["acked"] = self.unit.journal.ack_mark
        t["boot"] = self.unit.journal.boot
        return t
