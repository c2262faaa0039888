# The desk unit's imperative shell: asyncio tasks around the pure core.
#
#   sampler   reads the pins every sampling period, steps the core, journals
#             its events, drives LED/buzzer/relay; touches no network
#   syncer    one journal sync per sync_ms (batched: LittleFS rewrites the last
#             block on every sync)
#   wifi      connects with backoff, reconnects when the link drops
#   ntp       asks the site's NTP servers (non-blocking UDP, firmware/sntp.py)
#             at start and every ntp_ms; the offset measured goes into the
#             heartbeat
#   link      MQTT (firmware/link.py)
#   watchdog  feeds machine.WDT only while the sampler and the link loop are alive
#
# Files under `root` (on the board "/"), as shared/boardfiles.py defines
# them: board.json (hardware, broker), config.json (the core's config, the
# last good one: only configs that were applied are written), secrets.json
# (wifi_ssid, wifi_password, mqtt_user, mqtt_password), ca.pem; and the
# shell's own bootlog.json (boot-loop counter) and journal/ (the event journal).

try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # type: ignore
import json

from firmware import sntp
from firmware.core import CLOCK_JUMP_MS, FW_EPOCH_MS, Core
from firmware.flashfs import DirFS
from firmware.journal import Journal
from firmware.link import Link
from firmware.ticks import ticks_add, ticks_diff
from firmware.updater import Updater
from shared import protocol
from shared.boardfiles import CONFIG, CRASH, SHELL_DEFAULTS
from shared.jsonfile import read_json, write_atomic

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:
    from typing import Any, Dict

FW_VERSION = "0.1.0"
QUICK_CRASHES = 3  # this many restarts without reaching STABLE_MS: safe mode
POWER_LOOPS = 5  # ... or this many power-ons (brown-outs) in a row without reaching it
SETTINGS = SHELL_DEFAULTS
SAMPLER_STALE_MS = 1000  # the watchdog starves when the sampler has not run for this long
LINK_STALE_MS = 120000  # ... or the link loop for this long (its waits are all bounded)
# Ticks wrap every 2**30 ms and ticks_diff is only right within 2**29 (6.2
# days): a tick kept longer than HORIZON_MS is folded into a count or a wall time.
HORIZON_MS = 86400000
NTP_TIMEOUT_MS = 2000  # an NTP answer later than this is no answer
NTP_POLL_MS = 20  # how often the socket is polled meanwhile
NTP_NEXT_MS = 1000  # pause before asking the next server
TZ_WARN_DAYS = 120  # heartbeats say how long the time-zone table has left from this many days before its end


def from_files(root="/", **modules):
    """Build the board and the unit from the files provisioning wrote under
    `root` (main.py on the board; tests pass fake board modules). Raises
    boardfiles.FileError for a missing or bad board.json."""
    from firmware.board_esp32 import Board
    from shared import boardfiles  # a local name only: release_boot_modules() can drop the module
    root = root if root.endswith("/") else root + "/"
    settings, err = boardfiles.read_checked(root + boardfiles.BOARD, boardfiles.check_board)
    if settings is None:
        raise boardfiles.FileError(boardfiles.BOARD, "", err or "missing: provision the unit")
    board = Board(settings, **modules)
    return board, Unit(board, settings, root)


class Unit:
    """One desk unit: board + core + journal + link."""

    def __init__(self, board, settings=None, root="/"):
        self.board = board
        s = dict(SETTINGS)  # type: Dict[str, Any]
        s.update(settings or {})
        self.s = s
        self.root = root if root.endswith("/") else root + "/"
        now = board.ticks_ms()
        self.boot_tick = now
        self.reason = board.reset_cause()
        self.safe_mode = None  # why, when running in safe mode
        self.last_crash = None  # why the last boot ended, when main.py recorded it
        self._boot_guard()
        from shared import boardfiles  # local, as in from_files
        raw, err = read_json(self.root + CONFIG)
        self.core = Core(raw if raw is not None else {}, now)
        if err:
            self.core.fault(now, "config_invalid", err)
        # Configs compared by value: JSON texts of the same dict differ in key order.
        self._applied = raw
        self._rejected = None
        self.config_id = None  # the host's id of the config running, heartbeats echo it
        c = self.core.conf
        self.journal = Journal(DirFS(self.root + "journal"), c["journal_segment_bytes"], c["journal_segments"],
                               board.new_incarnation, c["unit"])
        if self.journal.discarded:
            self.core.fault(now, "journal_reset", "provisioned as " + c["unit"] + ": "
                            + str(self.journal.discarded) + " unacknowledged events of the board's previous unit removed")
        if self.safe_mode:
            self.core.fault(now, "safe_mode", self.safe_mode)
        self._report_crash(now)
        secrets, err = boardfiles.read_checked(self.root + boardfiles.SECRETS, boardfiles.check_secrets)
        self.secrets = secrets or {}
        if err:
            self.core.fault(now, "secrets_invalid", err)
        self._check_power(now)
        rtc = board.rtc_ms()
        if rtc > FW_EPOCH_MS:  # an RTC that kept time (e.g. across a soft reset)
            self.core.set_clock(now, rtc, "unsynced")
        link = dict(s.get("mqtt") or {})
        link["ca"] = boardfiles.path_in(self.root, link.get("ca"))  # board.json names it under the root
        self.link = Link(self, link, self.secrets)
        self.updater = Updater(self, FW_VERSION, lambda: selftest_details(self)[0])
        self.clock_offset_ms = None
        self.ntp_syncs = 0
        self.ntp_error = None  # why the last NTP answer did not set the clock
        self._ntp_addr = {}  # server -> resolved address
        self.appended = 0
        self.sampled = now
        self.samples = 0
        self._live = None
        self.state_since = now  # tick of the last state change; None once folded into _since_wall
        self._since_wall = None
        self._up_ms = 0  # uptime, summed from tick differences (never wraps)
        self._up_tick = now
        self._wifi = False
        self._stopping = False

    # ---- boot-loop protection ----------------------------------------------------
    def _boot_guard(self):
        path = self.root + "bootlog.json"
        log, _ = read_json(path)
        if not isinstance(log, dict):
            log = {}
        quick = 0 if self.reason == "power_on" else log.get("quick", 0)
        quick += 1
        # An ESP32 reports a brown-out as a power-on: power-ons that never
        # reach stable_ms are counted too, with more slack (people unplug units).
        power = log.get("power", 0) + (1 if self.reason == "power_on" else 0)
        write_atomic(path, json.dumps({"quick": quick, "power": power, "reason": self.reason}))
        within = " within " + str(self.s["stable_ms"] // 1000) + " s of boot"
        if quick > QUICK_CRASHES:
            self.safe_mode = str(quick - 1) + " restarts" + within + " (last reset: " + self.reason + ")"
        elif power > POWER_LOOPS:
            self.safe_mode = str(power - 1) + " power-on restarts" + within + " (a brown-out loop? check the supply)"

    def _report_crash(self, now):
        # main.py's record of the failure that ended the last boot.
        import os
        path = self.root + CRASH
        try:
            with open(path) as f:
                text = f.read(200)
        except OSError:
            return
        self.last_crash = text or "unknown"
        self.core.fault(now, "crashed", self.last_crash)
        try:
            os.remove(path)
        except OSError:
            pass

    def _mark_stable(self):
        write_atomic(self.root + "bootlog.json", json.dumps({"quick": 0, "power": 0, "reason": self.reason}))

    # ---- sampler -------------------------------------------------------------------
    async def _sampler(self):
        board = self.board
        core = self.core
        period = self.s["period_ms"]
        max_batch = self.s["max_batch"]
        wake_ms = self.s["wake_ms"]  # > 0: sleep longer and catch up (the simulator)
        inputs = {"ring": False, "hook": False, "power": None, "button": False, "disc": False}
        t = board.ticks_ms()
        while True:
            now = board.ticks_ms()
            n = 0
            while ticks_diff(now, t) >= 0:
                board.read_inputs(inputs, t)
                events = core.step(t, inputs)
                if events:
                    self._journal(events)
                if core.state is not self._live_state or core.pattern is not self._live_pattern or self._live_force:
                    self._check_live(t)
                t = ticks_add(t, period)
                n += 1
                if n >= max_batch:
                    # Stalled (e.g. a blocking flash write): resume at now.
                    if ticks_diff(now, t) > 0:
                        t = now
                    break
            self.samples += n
            board.drive(core.led(now), core.buzz(now), core.relay, core.pattern)
            self.sampled = now
            wait = ticks_diff(t, board.ticks_ms())
            if wait < wake_ms:
                wait = wake_ms
            await board.sleep_ms(wait if wait > 0 else 0)

    _live_state = None
    _live_pattern = None
    _live_force = False

    def _check_live(self, t):
        core = self.core
        if core.state != self._live_state:
            self.state_since = t
            self._since_wall = None
        self._live_force = False
        self._live_state = core.state
        self._live_pattern = core.pattern
        self.link.live_changed()

    def _journal(self, events):
        for ev in events:
            try:
                self.journal.append(ev)
                self.appended += 1
            except protocol.ProtocolError as exc:
                # Never stall sensing on one bad event; say so instead.
                self.core.fault(self.board.ticks_ms(), "event_invalid", str(exc))
        self._live_force = True  # missed_pending / left_on may have changed

    def sync_journal(self):
        self.journal.sync()
        self.link.events_ready()

    async def _syncer(self):
        while True:
            await self.board.sleep_ms(self.s["sync_ms"])
            if self.journal.next_seq - 1 > self.journal.synced_seq:
                self.sync_journal()

    # ---- network ---------------------------------------------------------------------
    def wifi_up(self):
        return self._wifi

    def clock_plausible(self):
        """The RTC is past the firmware's epoch (NTP set it, or it kept time)."""
        return self.board.rtc_ms() > FW_EPOCH_MS

    async def _wifi_task(self):
        board = self.board
        backoff = 1000
        while True:
            if board.wifi_connected():
                self._wifi = True
                backoff = 1000
                await asyncio.sleep(2)
                continue
            self._wifi = False
            ssid = self.secrets.get("wifi_ssid")
            if ssid is None:
                await asyncio.sleep(5)
                continue
            try:
                board.wifi_start(ssid, self.secrets.get("wifi_password"))
            except OSError:
                pass
            t0 = board.ticks_ms()
            while not board.wifi_connected() and ticks_diff(board.ticks_ms(), t0) < self.s["wifi_timeout_ms"] * board.speed:
                await asyncio.sleep(0.2)
            if board.wifi_connected():
                continue
            board.wifi_stop()
            await asyncio.sleep(backoff / 1000)
            backoff = min(backoff * 2, 60000)

    async def _ntp_task(self):
        """Ask the site's NTP servers in turn over a non-blocking UDP socket
        (the sampler runs on while an answer is awaited); an answer sets the
        clock only when sntp.Judge accepts it. A clock that jumped is asked
        again soon, so the shift logic it holds (core.jumped) resumes."""
        board = self.board
        core = self.core
        servers = self.s["ntp_servers"] or [self.s["ntp_host"] or "pool.ntp.org"]
        judge = sntp.Judge(FW_EPOCH_MS, CLOCK_JUMP_MS, distinct=len(servers) > 1)
        turn = 0
        while True:
            if not self._wifi:
                await asyncio.sleep(1)
                continue
            server = servers[turn % len(servers)]
            turn += 1
            try:
                epoch_ms, tick = await self._ntp_ask(server)
                verdict = judge.offer(tick, epoch_ms, server, core.wall(tick) if core.synced() else None)
                self.ntp_error = judge.why if verdict != "accept" else None
            except OSError as exc:
                verdict, self.ntp_error = "failed", server + ": no answer (" + str(exc) + ")"
            except sntp.Refused as exc:
                verdict, self.ntp_error = "refused", server + ": " + str(exc)
            if verdict == "accept":
                self.clock_offset_ms = board.rtc_ms() - (epoch_ms + board.elapsed(tick))
                board.set_rtc_ms(epoch_ms + board.elapsed(tick))
                core.set_clock(tick, epoch_ms, "ntp")
                self.ntp_syncs += 1
                wait = self.s["ntp_ms"] if core.jumped is None else self.s["ntp_retry_ms"]
            elif verdict == "confirm":
                wait = 0  # a second opinion at once
            elif turn % len(servers):
                wait = NTP_NEXT_MS  # the next server after a failure
            else:
                wait = self.s["ntp_retry_ms"]
            await board.sleep_ms(wait)

    async def _ntp_ask(self, server):
        """One SNTP exchange: (server's epoch ms, tick it stands for). Raises
        OSError (no answer in NTP_TIMEOUT_MS) or sntp.Refused."""
        board = self.board
        addr = self._ntp_addr.get(server)
        if addr is None:
            host, port = sntp.split_server(server)
            addr = board.resolve(host, port)  # a name blocks once, until the next boot
            self._ntp_addr[server] = addr
        sock = board.udp_socket()
        try:
            sent = board.ticks_ms()
            sock.sendto(sntp.request(), addr)
            while True:
                data = board.udp_recv(sock)
                now = board.ticks_ms()
                if data is not None:
                    # The answer was sent half a round trip ago.
                    return sntp.parse(data) + ticks_diff(now, sent) // 2, now
                if ticks_diff(now, sent) > NTP_TIMEOUT_MS * board.speed:
                    raise OSError(110)  # ETIMEDOUT
                await board.sleep_ms(NTP_POLL_MS)
        finally:
            sock.close()

    # ---- watchdog and stability ----------------------------------------------------------
    def housekeeping(self, now):
        """Fold old ticks before they wrap (the watchdog task calls this
        several times a second)."""
        self.uptime_ms(now)
        since = self.state_since
        if since is not None and ticks_diff(now, since) > HORIZON_MS:
            self._since_wall = self.core.wall(since)  # None without a clock: "since" unknown
            self.state_since = None

    def uptime_ms(self, now):
        self._up_ms += ticks_diff(now, self._up_tick)
        self._up_tick = now
        return self._up_ms

    async def _watchdog(self):
        board = self.board
        if self.s["wdt"]:
            board.wdt_start()
        while True:
            now = board.ticks_ms()
            self.housekeeping(now)
            sampler_ok = ticks_diff(now, self.sampled) < SAMPLER_STALE_MS * board.speed
            link_ok = ticks_diff(now, self.link.alive) < LINK_STALE_MS * board.speed
            if sampler_ok and link_ok:
                board.wdt_feed()
            await asyncio.sleep(0.25)

    async def _stable(self):
        await self.board.sleep_ms(self.s["stable_ms"])
        self._mark_stable()
        self.board.mark_app_valid()
        if self.safe_mode:
            # Stable again, and the boot-loop count is cleared: restart in
            # normal mode (safe mode ignores configs from the host).
            self.journal.sync()
            self.board.reset()

    # ---- host messages ---------------------------------------------------------------------
    def on_ack(self, seq, inc=""):
        before = self.journal.ack_mark
        self.journal.ack(seq, inc)
        if self.journal.ack_mark > before:
            self.link.acked()

    def apply_remote_config(self, raw, config_id=None):
        """The unit's retained config: applied and persisted when valid,
        rejected (a fault event, the old one kept) when not. Its `config_id`
        goes into the heartbeats while it runs."""
        if not isinstance(raw, dict):
            raw = {"": raw}  # let the validator name the problem
        now = self.board.ticks_ms()
        full = dict(raw)
        c = self.core.conf
        for key in ("site", "unit", "seat"):
            if key not in full:
                full[key] = c[key]  # the topic already names the unit
        if full == self._applied:
            self.config_id = config_id  # the retained copy again, on reconnect and at every boot
            return
        if full == self._rejected:
            return  # the retained copy again, on reconnect and at every boot
        running = self._applied.get("issued", 0) if isinstance(self._applied, dict) else 0
        issued = full.get("issued", 0)
        if isinstance(issued, int) and issued < running:
            # Built from an older site file than the config this unit runs (a
            # retained config from before a USB provisioning): keep ours.
            self._rejected = full
            self.core.fault(now, "config_stale", "kept the config issued " + str(running) + " over one issued " +
                            str(issued) + ": push the current one (seatmon unit config push)")
            return
        if self.safe_mode:
            self._rejected = full
            self.core.fault(now, "config_rejected", "safe mode: kept the last good config")
            return
        err = self.core.apply_config(full, now)
        if err is None:
            write_atomic(self.root + CONFIG, json.dumps(full))
            self._applied = full
            self.config_id = config_id
            self._check_power(now)
        else:
            self._rejected = full

    def report_fault(self, code, detail):
        self.core.fault(self.board.ticks_ms(), code, detail)

    def _check_power(self, now):
        # The config says how to judge the power sense, board.json how it is read.
        # A mismatch is a standing fault (selftest FAIL, fault pattern) until fixed.
        core = self.core
        sense = core.conf["power_sense"]
        kind = getattr(self.board, "power_kind", sense)
        if sense != "none" and kind is not None and kind != sense:
            detail = "config power_sense " + sense + " but board.json reads it as " + kind + " (power_adc)"
            core.fault_codes["power_sense"] = detail
            core.fault(now, "power_sense", detail)
        elif "power_sense" in core.fault_codes:
            del core.fault_codes["power_sense"]

    # ---- payloads ------------------------------------------------------------------------
    def _wall(self, now):
        w = self.core.wall(now)
        return w if w is not None and w > protocol.TS_MIN else FW_EPOCH_MS + self.uptime_ms(now)

    def birth_payload(self):
        c = self.core.conf
        now = self.board.ticks_ms()
        reason = self.reason if not self.safe_mode else (self.reason + "; safe mode: " + self.safe_mode)[:200]
        msg = {"v": 1, "site": c["site"], "unit": c["unit"], "state": "online", "ts": self._wall(now),
               "boot": self.journal.boot, "fw": FW_VERSION, "reason": reason, "seat": c["seat"]}
        ip = self.board.ip()
        if ip:
            msg["ip"] = ip
        if c["tz_name"]:  # the site's zone travels with the data: reports default to it
            msg["tz"] = c["tz_name"]
        return protocol.encode(protocol.STATUS, msg)

    def heartbeat_payload(self):
        c = self.core.conf
        now = self.board.ticks_ms()
        msg = {"v": 1, "site": c["site"], "unit": c["unit"], "boot": self.journal.boot, "ts": self._wall(now),
               "uptime_s": self.uptime_ms(now) // 1000, "heap_free": self.board.heap_free()}
        msg.update(self.journal.heartbeat_fields())
        rssi = self.board.rssi()
        if rssi is not None:
            msg["rssi"] = rssi
        if self.clock_offset_ms is not None:
            msg["clock_offset_ms"] = self.clock_offset_ms
        if self.config_id is not None:
            msg["config"] = self.config_id
        left = self.tz_days_left(now)
        if left is not None:
            msg["tz_days_left"] = left
        return protocol.encode(protocol.HEARTBEAT, msg)

    def tz_days_left(self, now):
        """Days until the time-zone table ends, when fewer than TZ_WARN_DAYS
        (past its end, local time and shifts drift by the DST offset)."""
        until = self.core.conf["tz_until"]
        wall = self.core.wall(now)
        if not until or wall is None:
            return None
        left = (until - wall) // 86400000
        if left >= TZ_WARN_DAYS:
            return None
        return left if left > 0 else 0

    def live_payload(self):
        core = self.core
        c = core.conf
        now = self.board.ticks_ms()
        msg = {"v": 1, "site": c["site"], "unit": c["unit"], "seat": c["seat"], "state": core.state,
               "pattern": core.pattern, "missed_pending": bool(core.missed),
               "left_on": core.phase == "reminding", "ts": self._wall(now)}
        since = self._since_wall if self.state_since is None else core.wall(self.state_since)
        if since is not None and since > protocol.TS_MIN:
            msg["since"] = since
        if core.state == "ringing" and core.call is not None:
            msg["rings"] = core.call["rings"]
        return protocol.encode(protocol.LIVE, msg)

    # ---- run ---------------------------------------------------------------------------------
    async def run(self):
        """Run every task until one fails (the caller resets the board then)."""
        tasks = [asyncio.create_task(self._sampler()), asyncio.create_task(self._syncer()),
                 asyncio.create_task(self._wifi_task()), asyncio.create_task(self._ntp_task()),
                 asyncio.create_task(self.link.run()), asyncio.create_task(self._watchdog()),
                 asyncio.create_task(self.updater.watch()), asyncio.create_task(self._stable())]
        self._tasks = tasks
        try:
            while True:
                for t in tasks:
                    if t.done() and t is not tasks[-1]:
                        # A main task ended: that is a crash; its error goes up.
                        await t
                        raise RuntimeError("a main task ended")
                await asyncio.sleep(1)
        finally:
            for t in tasks:
                t.cancel()

    async def stop(self, clean=True):
        """Sync the journal and leave the broker (clean: no Last Will)."""
        self.journal.sync()
        for t in getattr(self, "_tasks", ()):
            t.cancel()
        await self.link.close(clean)
        self.journal.fs.close()


def selftest_details(unit):
    c = unit.core.conf
    ok = not unit.core.fault_codes and not unit.safe_mode
    detail = "unit=" + c["unit"] + " boot=" + str(unit.journal.boot) + " fw=" + FW_VERSION + \
        " reset=" + unit.reason
    if unit.core.fault_codes:
        detail += " faults=" + ",".join(sorted(unit.core.fault_codes))
    if unit.safe_mode:
        detail += " safe_mode=" + unit.safe_mode
    if unit.last_crash:
        detail += " last_crash=" + unit.last_crash
    return ok, detail



BOOT_ONLY = ("boardfiles",)  # shared.<name>: the board.json and secrets.json checks


def release_boot_modules():
    """Forget the modules only the boot needs, so the collector can free
    them: run from ROMFS, their bytecode stays in flash, but their function
    objects and tables are heap (~4 KB) a running unit never uses again.
    main.py calls this once the unit is built; the unit keeps plain values
    (settings dicts, file names) and shared/jsonfile.py."""
    import sys
    shared = sys.modules.get("shared")
    for name in BOOT_ONLY:
        sys.modules.pop("shared." + name, None)
        if shared is not None and hasattr(shared, name):
            delattr(shared, name)
