# Clock cases for the desk unit: unsynced stamps and their correction, clock
# jumps and the shift end, and the SNTP answer checks (firmware/sntp.py). Run
# by tests/test_firmware_clock.py (CPython) and inside MicroPython by
# tests/test_micropython.py.

from firmware import cadence, core, scenario
from tests.portable.check import eq
from tests.portable.fwscen import EPOCH, PERIOD, calls, make_core, run
from tests.portable.firmware_shift_cases import END, MIN, SEC, T0, kinds, setup_shift


def test_unsynced_stamps_are_corrected_by_a_clock_event():
    """No clock at all (an RTC reading 2000 after a power cut): the call is
    stamped from the firmware epoch after clock_wait_ms, marked unsynced.
    NTP at 60 s: the next step emits one `clock` event, stamped by NTP, whose
    offset_ms turns the unsynced stamp into the call's true time."""
    c = make_core(sync=False, cadence="CN", clock_wait_ms=10000)
    s = scenario.Script(PERIOD)
    s.answer(2500, cadence.PROFILES["CN"], 1000, 4000)
    call = calls(run(c, s, 20000, t_from=900))[0]
    eq([call["clock"], call["ts"]], ["unsynced", core.FW_EPOCH_MS + 1000])
    c.set_clock(60000, EPOCH + 60000)
    got = run(c, s, 60100, t_from=60000)
    eq(kinds(got), ["clock"])
    fix = got[0]
    eq([fix["clock"], fix["ts"], fix["unsynced"]], ["ntp", EPOCH + 60000, 1])
    eq(call["ts"] + fix["offset_ms"], EPOCH + 1000)
    # Later syncs of the same boot correct nothing more.
    c.set_clock(90000, EPOCH + 90000)
    eq(run(c, s, 90100, t_from=60100), [])
    return fix["offset_ms"]


def test_no_clock_event_when_nothing_was_stamped_unsynced():
    c = make_core(sync=False, cadence="CN", clock_wait_ms=10000)
    s = scenario.Script(PERIOD)
    s.answer(2500, cadence.PROFILES["CN"], 1000, 4000)
    c.set_clock(5000, EPOCH + 5000)
    got = run(c, s, 6000, t_from=900)
    eq(kinds(got), ["call"])
    eq(got[0]["clock"], "ntp")
    return len(got)


def test_one_offset_per_boot_once_stamps_went_out():
    """After an unsynced stamp went out, a new best-effort guess is ignored:
    every unsynced stamp of the boot keeps one offset to true time."""
    c = make_core(sync=False, cadence="CN", clock_wait_ms=10000)
    c.set_clock(0, EPOCH - 3600000, "unsynced")
    s = scenario.Script(PERIOD)
    s.answer(2500, cadence.PROFILES["CN"], 1000, 4000)
    s.answer(32500, cadence.PROFILES["CN"], 31000, 34000)
    first = calls(run(c, s, 20000, t_from=900))[0]
    c.set_clock(25000, EPOCH + 7 * 86400000, "unsynced")
    second = calls(run(c, s, 50000, t_from=20000))[0]
    eq(second["ts"] - first["ts"], 30000)
    c.set_clock(60000, EPOCH + 60000)
    fix = run(c, s, 60100, t_from=60000)[0]
    eq([first["ts"] + fix["offset_ms"], second["ts"] + fix["offset_ms"], fix["unsynced"]],
       [EPOCH + 1000, EPOCH + 31000, 2])
    return fix["offset_ms"]


def test_a_clock_jump_past_the_shift_end_never_cuts():
    """Cut mode, equipment on, 10 min before the shift ends: at 2 min one NTP
    time says 2036 (a zero transmit time read as era 1). The shift does not
    end on it; the next sync (true time) jumps back, the one after agrees:
    no cut, no shift_end until the real end, which then is acted on as usual."""
    c, s = setup_shift(T0, shift_end_mode="cut")
    outputs = []
    events = run(c, s, 2 * MIN, outputs=outputs)
    c.set_clock(2 * MIN, 2085978496000)  # 2036-02-07T06:28:16Z
    events += run(c, s, 5 * MIN, t_from=2 * MIN, outputs=outputs)
    eq(c.relay, True)
    eq(kinds(events), ["selftest"])
    c.set_clock(5 * MIN, T0 + 5 * MIN)  # a later answer: the true time (a jump back)
    events += run(c, s, 6 * MIN, t_from=5 * MIN, outputs=outputs)
    eq(kinds(events), ["selftest"])
    c.set_clock(6 * MIN, T0 + 6 * MIN)  # agrees: stable again
    events += run(c, s, 20 * MIN, t_from=6 * MIN, outputs=outputs)
    eq(kinds(events), ["selftest", "shift_end/cut"])
    eq(events[1]["ts"], END + 5 * MIN)
    return [o[2] for o in outputs]


def test_a_confirmed_jump_past_the_end_in_cut_mode_logs_and_never_cuts():
    """Cut mode: the clock really was 20 min slow, and the correction jumps
    past the shift end. Once stable, the shift end is recorded (equipment on,
    logged) but the relay stays closed: the end came through a jump."""
    c, s = setup_shift(T0, shift_end_mode="cut")
    events = run(c, s, MIN)
    c.set_clock(MIN, T0 + 30 * MIN)
    c.set_clock(2 * MIN, T0 + 31 * MIN)
    events += run(c, s, 20 * MIN, t_from=MIN)
    eq(kinds(events), ["selftest", "shift_end/logged"])
    eq(events[1]["equipment"], "on")
    eq(c.relay, True)
    return kinds(events)


def test_a_confirmed_jump_is_acted_on_once_stable():
    """A jump past the shift end that a later sync confirms (the clock really
    was wrong) ends the shift after the confirming sync, never before."""
    c, s = setup_shift(T0, shift_end_mode="log")
    events = run(c, s, MIN)
    c.set_clock(MIN, T0 + 30 * MIN)  # 20 min later than the clock said: past the end
    events += run(c, s, 3 * MIN, t_from=MIN)
    eq(kinds(events), ["selftest"])
    c.set_clock(3 * MIN, T0 + 32 * MIN)  # agrees: the clock is stable
    events += run(c, s, 10 * MIN, t_from=3 * MIN)
    eq(kinds(events), ["selftest", "shift_end/logged"])
    eq(events[1]["ts"], T0 + 34 * MIN)  # 5 min of grace from the last activity (the boot)
    return kinds(events)


# ---- SNTP answers (firmware/sntp.py) ----------------------------------------

def answer(epoch_ms, stratum=2, li=0, mode=4, kod=b"\0\0\0\0"):
    """An SNTP answer whose transmit time is `epoch_ms` (None: all zero)."""
    import struct
    pkt = bytearray(48)
    pkt[0] = (li << 6) | (4 << 3) | mode
    pkt[1] = stratum
    pkt[12:16] = kod
    if epoch_ms is not None:
        secs = (epoch_ms // 1000 + sntp.NTP_TO_UNIX_S) & 0xFFFFFFFF
        frac = ((epoch_ms % 1000) << 32) // 1000 + 1
        pkt[40:48] = struct.pack("!II", secs, frac)
    return pkt


from firmware import sntp  # noqa: E402
from tests.portable.check import raises  # noqa: E402


def test_sntp_parses_a_good_answer_in_both_eras():
    eq(sntp.parse(answer(EPOCH + 123)), EPOCH + 123)
    later = 2200000000000  # 2039-09-18: NTP era 1
    eq(sntp.parse(answer(later)), later)
    eq(sntp.request()[0] & 7, 3)
    return sntp.parse(answer(EPOCH + 123)) - EPOCH


def test_sntp_refuses_zero_kiss_of_death_and_broken_answers():
    out = [raises(sntp.Refused, sntp.parse, answer(None)),
           raises(sntp.Refused, sntp.parse, answer(EPOCH, stratum=0, kod=b"RATE")),
           raises(sntp.Refused, sntp.parse, answer(EPOCH, li=3)),
           raises(sntp.Refused, sntp.parse, answer(EPOCH, mode=3)),
           raises(sntp.Refused, sntp.parse, answer(EPOCH)[:40])]
    eq(out[0], "zero transmit time")
    eq(out[1], "kiss-o'-death b'RATE'")
    eq(out[2], "server not synchronised (leap indicator 3)")
    eq(out[3], "not a server answer (mode 3)")
    eq(out[4], "short answer (40 bytes)")
    return out


def test_judge_first_sync_needs_two_servers_to_agree():
    j = sntp.Judge(core.FW_EPOCH_MS, core.CLOCK_JUMP_MS)
    eq(j.offer(0, EPOCH, "a"), "confirm")
    eq(j.offer(500, EPOCH + 500, "a"), "confirm", "the same server again")
    eq(j.offer(900, EPOCH + 5 * 86400000, "b"), "confirm", "a second server that disagrees")
    eq(j.offer(1500, EPOCH + 1500, "a"), "confirm", "disagrees with b")
    eq(j.offer(2000, EPOCH + 2000, "c"), "accept")
    return j.held


def test_judge_single_server_confirms_itself_and_refuses_before_build():
    j = sntp.Judge(core.FW_EPOCH_MS, core.CLOCK_JUMP_MS, distinct=False)
    eq(j.offer(0, core.FW_EPOCH_MS - 1, "a"), "refuse")
    eq(j.why, "answer before the firmware's build")
    eq(j.offer(0, EPOCH, "a"), "confirm")
    eq(j.offer(60000, EPOCH + 60300, "a"), "accept")
    # Synced: small steps are taken at once, a jump waits for a second answer.
    eq(j.offer(70000, EPOCH + 70100, "a", EPOCH + 70000), "accept")
    eq(j.offer(80000, 2085978496000, "a", EPOCH + 80000), "confirm")
    eq(j.offer(90000, EPOCH + 90000, "a", EPOCH + 90000), "accept")
    return j.held
