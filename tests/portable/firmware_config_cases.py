# Config validation, the safe state on a bad config, and the small pure
# helpers (ticks arithmetic, patterns, power sense). Run by
# tests/test_firmware_config.py (CPython) and inside MicroPython by
# tests/test_micropython.py.

from firmware import cadence, config, core, patterns, scenario
from firmware.sensing import PowerSense
from firmware.ticks import TICKS_MAX, ticks_add, ticks_diff
from tests.portable.check import contains, eq, raises
from tests.portable.fwscen import EPOCH, PERIOD, calls, near, run

BASE = {"site": "hq", "unit": "u-0001", "seat": "A-01"}


def _with(**over):
    raw = dict(BASE)
    for k in over:
        raw[k] = over[k]
    return raw


def _err(raw):
    return raises(config.ConfigError, config.validate, raw)


def test_defaults_fill_missing_keys():
    conf = config.validate(dict(BASE))
    eq(conf["limit_ms"], 10000)
    eq(conf["limit_rings"], 3)
    eq(conf["notice_ms"], 5000)
    eq(conf["cadence"], "EU")
    eq(conf["shift_end_mode"], "log")
    eq(conf["shift_end_grace_ms"], 300000)
    eq(conf["postpone_ms"], 1800000)
    eq(conf["hook_debounce_ms"], 30)
    eq(conf["disconnect_supervision"], False)
    eq(conf["tz"], [[0, 0]])
    eq(sorted(conf), sorted(config.DEFAULTS))
    return len(conf)


def test_errors_name_the_key():
    out = [
        contains(_err(_with(limit_ms="10000")), "config key 'limit_ms': expected an integer, got str"),
        contains(_err(_with(limit_ms=True)), "config key 'limit_ms': expected an integer, got bool true"),
        contains(_err(_with(limit_ms=10)), "config key 'limit_ms': expected 1000..600000, got 10"),
        contains(_err(_with(colour="red")), "config key 'colour': unknown key"),
        contains(_err({"site": "hq", "seat": "A-01"}), "config key 'unit': missing (required)"),
        contains(_err(_with(unit="u/1")), "config key 'unit': expected an id"),
        contains(_err(_with(cadence="XX")), "config key 'cadence': unknown profile 'XX'"),
        contains(_err(_with(cadences={"x": [1000]})), "config key 'cadences.x': expected an even-length list"),
        contains(_err(_with(shift_end_mode="nuke")), "config key 'shift_end_mode': expected one of log, remind, cut"),
        contains(_err(_with(shifts={"mon": [["day", "8:00", "16:00"]]})), "config key 'shifts.mon[0]': start must be"),
        contains(_err(_with(shifts={"funday": []})), "config key 'shifts.funday': unknown weekday"),
        contains(_err(_with(overrides={"25/12": []})), "config key 'overrides.25/12': expected a date"),
        contains(_err(_with(tz=[[0, 60], [0, 120]])), "config key 'tz[1]': change instants must increase"),
        contains(_err(_with(power_on_level=100, power_off_level=200)), "config key 'power_off_level'"),
        contains(_err([1, 2]), "config: expected a JSON object"),
    ]
    return len(out)


def test_json_syntax_error_is_a_config_error():
    # (MicroPython's parser accepts some malformed JSON that CPython rejects;
    # a truncated file fails on both.)
    msg = raises(config.ConfigError, config.parse, '{"site": "hq",\n "unit": ')
    contains(msg, "not valid JSON")
    eq(config.parse('{"site":"hq","unit":"u1","seat":"s1","limit_ms":12000}')["limit_ms"], 12000)
    return "ok"


def test_bad_config_keeps_a_safe_state():
    """A bad config: the unit runs on defaults (no shifts, relay closed),
    shows the fault pattern, emits one fault event naming the key, and still
    times calls."""
    raw = _with(limit_ms="soon", cadence="CN")
    c = core.Core(raw, 0)
    c.set_clock(0, EPOCH)
    s = scenario.Script(PERIOD)
    s.answer(3000, cadence.PROFILES["CN"], 1000, 4000)
    outputs = []
    events = run(c, s, 4100, outputs=outputs)
    eq([e["kind"] for e in events], ["fault", "call"])
    eq(events[0]["code"], "config_invalid")
    contains(events[0]["detail"], "'limit_ms'")
    eq(events[0]["unit"], "u-0001")  # identity salvaged from the bad config
    eq(c.relay, True)
    eq(outputs[0][1], "fault")
    call = calls(events)[0]
    eq(call["limit_ms"], 10000)  # the default, not the bad value
    near(call["answer_ms"], 2000, "answer_ms")
    bad_id = core.Core({"unit": 5}, 0)
    eq(bad_id.conf["unit"], "unconfigured")
    return events[0]["code"]


def test_new_config_from_the_host():
    """A valid new config applies at once (even from the safe state, which
    clears the fault); an invalid one is rejected with a fault event and
    the running config stays."""
    c = core.Core(_with(limit_ms="soon"), 0)
    c.set_clock(0, EPOCH)
    eq(c.apply_config(_with(limit_ms=8000, cadence="US"), 10), None)
    eq([c.conf["limit_ms"], c.profile.name, c.fault_codes], [8000, "US", {}])
    err = c.apply_config(_with(limit_rings=-1), 20)
    contains(err, "'limit_rings'")
    eq(c.conf["limit_ms"], 8000)
    s = scenario.Script(PERIOD)
    events = run(c, s, 100, t_from=20)
    eq([e["kind"] for e in events], ["fault", "fault"])
    eq([e["code"] for e in events], ["config_invalid", "config_rejected"])
    return err


def test_ticks_helpers_match_micropython_semantics():
    eq(ticks_diff(5, 3), 2)
    eq(ticks_diff(3, 5), -2)
    eq(ticks_diff(2, TICKS_MAX - 1), 4)  # across the wrap
    eq(ticks_diff(TICKS_MAX - 1, 2), -4)
    eq(ticks_add(TICKS_MAX, 1), 0)
    eq(ticks_add(0, -1), TICKS_MAX)
    eq(ticks_add(TICKS_MAX - 10, 100), 89)
    eq(ticks_diff(ticks_add(123, 1 << 28), 123), 1 << 28)
    eq(ticks_diff(1 << 29, 0), -(1 << 29))  # half period: the sign flips
    return TICKS_MAX


def test_patterns_are_data():
    eq(patterns.level("idle", 123), False)
    eq(patterns.level("fault", 99999), True)
    # notice: 250 ms on, 750 ms off
    eq([patterns.level("notice", t) for t in (0, 249, 250, 999, 1000)], [True, True, False, False, True])
    eq(patterns.strongest(["missed", "urgent", "fault"]), "urgent")
    eq(patterns.strongest([]), "idle")
    eq(patterns.buzz("urgent", 50), True)
    eq(patterns.buzz("missed", 50), False)
    return sorted(patterns.PATTERNS)


def test_power_sense_adc_hysteresis_and_digital():
    # One reading a second: each is a window of its own (see firmware_power_cases.py).
    p = PowerSense("adc", on_level=2000, off_level=1500)
    eq([p.update(i * 1000, v) for i, v in enumerate((100, 1800, 2100, 1800, 1600, 1400, 1800, None))],
       [False, False, True, True, True, False, False, None])
    d = PowerSense("digital")
    eq([d.update(i * 1000, v) for i, v in enumerate((0, 1, True, False))], [False, True, True, False])
    eq(PowerSense("none").update(0, 1), None)
    # A digital reading under ADC thresholds is unreadable, never "off".
    eq([PowerSense("adc").update(i * 1000, v) for i, v in enumerate((True, False))], [None, None])
    return "ok"
