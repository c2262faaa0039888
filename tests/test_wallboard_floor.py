"""The wallboard's deciding logic (seatmon/wallboard/floor.py), fed protocol
messages and a clock, and its configuration and stored-calls parsing."""

import pytest

from seatmon.wallboard import config as board_config
from seatmon.wallboard.floor import Floor, row_of
from seatmon.wallboard.history import rows_from_results, shift_calls_query
from shared import protocol

T0 = 1763900000000
SHIFT = "2026-11-23/day"


def live(seat="A-01", unit="u-1", state="idle", since=T0, **kw):
    msg = {"v": 1, "site": "hq", "unit": unit, "seat": seat, "state": state, "since": since, "pattern": "off",
           "missed_pending": False, "left_on": False, "shift": SHIFT, "ts": since}
    msg.update(kw)
    return protocol.validate(protocol.LIVE, msg)


def call(seq, outcome="answered", within=True, unit="u-1", boot=1, shift=SHIFT):
    msg = {"v": 1, "kind": "call", "site": "hq", "unit": unit, "seat": "A-01", "boot": boot, "seq": seq,
           "ts": T0, "clock": "ntp", "shift": shift, "outcome": outcome, "rings": 2, "ring_ms": 6000,
           "within_limit": outcome == "answered" and within, "limit_ms": 10000, "apology_prompted": False}
    if outcome == "answered":
        msg["answer_ms"] = 6000 if within else 12000
    return protocol.validate(protocol.EVENT, msg)


def tile(floor, now, seat="A-01"):
    return next(t for t in floor.snapshot(now)["tiles"] if t["seat"] == seat)


def test_row_is_the_prefix_before_the_last_dash():
    assert row_of("A-01") == "A"
    assert row_of("east-B-12") == "east-B"
    assert row_of("7") == "7"
    assert row_of("-3") == "-3"


def test_ringing_seat_counts_seconds_and_escalates_at_notice_then_limit():
    f = Floor(notice_ms=5000, limit_ms=10000)
    f.set_connected(True, T0)
    f.on_live("hq", "u-1", live(state="ringing", since=T0, rings=1), T0)
    assert tile(f, T0 + 999)["level"] == "ring"
    assert tile(f, T0 + 999)["ring_s"] == 0
    assert tile(f, T0 + 4999)["level"] == "ring"
    assert tile(f, T0 + 5000)["level"] == "notice"
    t = tile(f, T0 + 10000)
    assert (t["status"], t["level"], t["ring_s"], t["rings"]) == ("ringing", "limit", 10, 1)
    assert f.header(T0 + 12500)["longest"] == {"seat": "A-01", "site": "hq", "ring_s": 12, "level": "limit"}
    f.on_live("hq", "u-1", live(state="talking", since=T0 + 12600), T0 + 12600)
    t = tile(f, T0 + 13000)
    assert (t["status"], t["level"], t["ring_s"]) == ("talking", None, None)
    assert f.header(T0 + 13000)["longest"] is None


def test_longest_ring_is_the_oldest_ringing_seat():
    f = Floor()
    f.set_connected(True, T0)
    f.on_live("hq", "u-1", live("A-01", "u-1", "ringing", T0 + 3000), T0 + 3000)
    f.on_live("hq", "u-2", live("A-02", "u-2", "ringing", T0), T0 + 3000)
    f.on_live("hq", "u-3", live("B-01", "u-3", "outgoing", T0 - 60000), T0 + 3000)
    assert f.header(T0 + 7000)["longest"]["seat"] == "A-02"
    assert f.header(T0 + 7000)["longest"]["level"] == "notice"


def test_badges_and_other_states():
    f = Floor()
    f.on_live("hq", "u-1", live(state="outgoing", missed_pending=True, left_on=True), T0)
    t = tile(f, T0)
    assert (t["status"], t["missed"], t["left_on"], t["row"]) == ("outgoing", True, True, "A")


def test_last_will_turns_a_seat_offline_with_last_seen():
    f = Floor()
    f.on_live("hq", "u-1", live(state="ringing"), T0 + 100)
    f.on_heartbeat("hq", "u-1", {"v": 1, "site": "hq", "unit": "u-1", "boot": 1, "ts": T0 + 500}, T0 + 600)
    f.on_status("hq", "u-1", {"v": 1, "site": "hq", "unit": "u-1", "state": "offline"}, T0 + 40000)
    t = tile(f, T0 + 41000)
    assert (t["status"], t["last_seen"], t["level"]) == ("offline", T0 + 40000, None)
    assert f.header(T0 + 41000)["longest"] is None  # an offline seat is not ringing for anyone
    f.on_status("hq", "u-1", {"v": 1, "site": "hq", "unit": "u-1", "state": "online", "seat": "A-01",
                              "ts": T0 + 50000}, T0 + 50000)
    assert tile(f, T0 + 50000)["status"] == "ringing"  # until its next live message


def test_a_retained_offline_status_does_not_claim_the_unit_was_seen_now():
    f = Floor()
    f.on_live("hq", "u-1", live(state="idle", ts=T0 + 10), T0 + 9999, retained=True)
    f.on_status("hq", "u-1", {"v": 1, "site": "hq", "unit": "u-1", "state": "offline"}, T0 + 9999, retained=True)
    t = tile(f, T0 + 10000)
    assert (t["status"], t["last_seen"]) == ("offline", T0 + 10)


def test_retained_offline_status_before_the_seat_is_known_keeps_the_message_time():
    f = Floor()
    f.on_status("hq", "u-9", {"v": 1, "site": "hq", "unit": "u-9", "state": "offline"}, T0 + 9999, retained=True)
    f.on_live("hq", "u-9", live("C-01", "u-9", "idle", T0, ts=T0 + 10), T0 + 9999, retained=True)
    t = tile(f, T0 + 10000, "C-01")
    assert (t["status"], t["last_seen"]) == ("offline", T0 + 10)


def test_figures_count_each_call_once_whatever_its_source():
    f = Floor()
    f.set_connected(True, T0)
    f.on_event("hq", "u-1", call(1), T0)
    f.on_event("hq", "u-1", call(1), T0)  # redelivered
    f.on_event("hq", "u-1", call(2, within=False), T0)
    f.on_event("hq", "u-1", call(3, "missed"), T0)
    f.on_event("hq", "u-1", call(4, "abandoned"), T0)
    f.on_event("hq", "u-1", call(1, boot=2), T0)  # another boot: another call
    assert f.on_history(SHIFT, [("u-1", 1, 2, 1, 0, 0), ("u-2", 1, 1, 1, 1, 0), ("u-1", 1, 3, 0, 0, 1)]) == 1
    fig = f.header(T0)["figures"]
    # answered in time: (u-1,1,1), (u-1,2,1), (u-2,1,1) = 3; calls 6; answered 4; missed 1
    assert (fig["calls"], fig["answered"], fig["timely"], fig["missed"]) == (6, 4, 3, 1)
    assert fig["timeliness_rate"] == pytest.approx(3 / 6)
    assert fig["service_level"] == pytest.approx(3 / 5)  # abandoned left out
    assert f.header(T0)["shift"] == SHIFT


def test_the_newest_shift_label_is_current_and_old_shifts_keep_their_own_counts():
    f = Floor()
    f.set_connected(True, T0)
    f.on_event("hq", "u-1", call(1, shift="2026-11-22/night"), T0)
    f.on_live("hq", "u-1", live(state="idle", since=T0 + 1000, shift=SHIFT), T0 + 1000)
    assert f.current_shift == SHIFT
    assert f.header(T0)["figures"]["calls"] == 0
    assert f.shifts["2026-11-22/night"].as_dict()["calls"] == 1


def test_only_the_latest_shifts_are_kept_in_memory_and_never_the_current_one_dropped():
    f = Floor()
    f.on_live("hq", "u-1", live(shift="2026-11-08/day", ts=T0 + 1000), T0 + 1000)
    f.on_history("2026-11-08/day", [])
    for day in range(1, 8):  # late calls of older shifts (ts T0, before the live message)
        f.on_event("hq", "u-1", call(day, shift=f"2026-11-0{day}/day"), T0)
    assert f.current_shift == "2026-11-08/day"
    assert set(f.shifts) == {"2026-11-08/day", "2026-11-05/day", "2026-11-06/day", "2026-11-07/day"}


def test_no_calls_means_no_rate_rather_than_zero():
    f = Floor()
    f.set_connected(True, T0)
    f.on_live("hq", "u-1", live(), T0)
    fig = f.header(T0)["figures"]
    assert (fig["calls"], fig["timeliness_rate"], fig["service_level"]) == (0, None, None)


def test_while_disconnected_the_header_is_stale_and_shows_no_numbers():
    f = Floor()
    f.set_connected(True, T0)
    f.on_event("hq", "u-1", call(1), T0)
    f.set_connected(False, T0 + 5)
    h = f.header(T0 + 10)
    assert (h["stale"], h["stale_since"], h["figures"], h["longest"]) == (True, T0 + 5, None, None)
    f.set_connected(True, T0 + 20)
    assert f.header(T0 + 20)["figures"]["calls"] == 1


def test_changes_send_only_what_changed_and_ringing_seats_as_seconds_pass():
    f = Floor()
    f.set_connected(True, T0)
    f.on_live("hq", "u-1", live("A-01", "u-1", "idle"), T0)
    f.on_live("hq", "u-2", live("A-02", "u-2", "idle"), T0)
    first = f.changes(T0)
    assert [t["seat"] for t in first["tiles"]] == ["A-01", "A-02"] and first["header"]
    assert f.changes(T0 + 100) is None
    f.on_live("hq", "u-2", live("A-02", "u-2", "ringing", T0 + 200, rings=1), T0 + 200)
    ch = f.changes(T0 + 300)
    assert [t["seat"] for t in ch["tiles"]] == ["A-02"]
    assert f.changes(T0 + 400) is None or f.changes(T0 + 400)["tiles"] == []
    later = f.changes(T0 + 1300)  # a second later the counter moved
    assert [(t["seat"], t["ring_s"]) for t in later["tiles"]] == [("A-02", 1)]


def test_layout_fixes_order_and_rows_and_shows_unheard_seats():
    f = Floor(layout=[("hq", "window", ["W-2", "W-1"]), ("hq", "A", ["A-01"])])
    tiles = f.snapshot(T0)["tiles"]
    assert [(t["seat"], t["row"], t["status"]) for t in tiles] == [
        ("W-2", "window", "unknown"), ("W-1", "window", "unknown"), ("A-01", "A", "unknown")]


def test_sites_not_on_the_board_are_ignored():
    f = Floor(sites=["hq"])
    f.on_live("branch", "u-1", live(site="branch"), T0)
    assert f.snapshot(T0)["tiles"] == [] and f.ignored == 1


def test_a_unit_moved_to_another_seat_leaves_the_old_one():
    f = Floor()
    f.set_connected(True, T0)
    f.on_live("hq", "u-1", live("A-01", "u-1", "ringing"), T0)
    f.on_live("hq", "u-1", live("A-02", "u-1", "idle"), T0 + 1)
    states = {t["seat"]: t["status"] for t in f.snapshot(T0 + 2)["tiles"]}
    assert states == {"A-01": "unknown", "A-02": "idle"}
    assert f.header(T0 + 2)["longest"] is None


# ---- configuration -----------------------------------------------------------

def test_config_reads_every_section(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text(
        '[mqtt]\nhost = "broker"\nport = 8883\nusername = "board"\n'
        '[influx]\nurl = "http://db:8086"\n'
        '[board]\nlisten = "0.0.0.0:9000"\nnotice_ms = 4000\nlimit_ms = 12000\nauth_user = "sup"\n'
        '[[layout]]\nsite = "hq"\nrow = "A"\nseats = ["A-01", "A-02"]\n')
    cfg = board_config.load(path, {"SEATMON_BOARD_PASSWORD": "s3cret", "SEATMON_MQTT_PASSWORD": "m"})
    assert (cfg.mqtt_host, cfg.mqtt_port, cfg.mqtt_password, cfg.influx_url) == ("broker", 8883, "m", "http://db:8086")
    assert (cfg.listen_host, cfg.listen_port, cfg.notice_ms, cfg.limit_ms) == ("0.0.0.0", 9000, 4000, 12000)
    assert (cfg.auth_user, cfg.auth_password) == ("sup", "s3cret")
    assert cfg.layout == [("hq", "A", ["A-01", "A-02"])]


@pytest.mark.parametrize("text, expected", [
    ('[board]\ntitle = "x"\nlimit_ms = "ten"\n', "line 3: key 'board.limit_ms': expected a positive number of milliseconds, got 'ten'"),
    ('[mqtt]\nport = 0\n', "line 2: key 'mqtt.port': expected a port number"),
    ('[mqtt]\nhots = "x"\n', "line 2: key 'mqtt.hots': expected one of"),
    ('[board]\nnotice_ms = 11000\n', "line 2: key 'board.notice_ms': expected at most board.limit_ms"),
    ('[board]\nauth_user = "a"\n', "key 'board.auth_password'"),
    ('[board]\nlisten = "8080"\n', "key 'board.listen': expected HOST:PORT"),
    ('[[layout]]\nsite = "hq"\nseats = ["A-01"]\n', "key 'layout[0].row'"),
    ('[[layout]]\nsite = "hq"\nrow = "A"\nseats = ["A 1"]\n', "line 4: key 'layout[0].seats'"),
    ('[boards]\n', "line 1: key 'boards': expected one of the sections"),
    ('[board\n', "not valid TOML"),
])
def test_config_errors_name_the_key_and_line(text, expected):
    with pytest.raises(board_config.ConfigError) as err:
        board_config.parse(text, "b.toml", {})
    assert expected in str(err.value)
    assert str(err.value).startswith("b.toml")


def test_non_loopback_listen_requires_basic_auth():
    from seatmon.wallboard import check_exposure

    check_exposure(board_config.parse('[board]\nlisten = "127.0.0.1:1"\n', "b", {}))
    check_exposure(board_config.parse('[board]\nlisten = "[::1]:1"\n', "b", {}))
    with pytest.raises(board_config.ConfigError, match="requires basic auth"):
        check_exposure(board_config.parse('[board]\nlisten = "0.0.0.0:1"\n', "b", {}))
    check_exposure(board_config.parse('[board]\nlisten = "0.0.0.0:1"\nauth_user = "a"\nauth_password = "b"\n',
                                      "b", {}))


# ---- stored calls ------------------------------------------------------------

def test_shift_query_selects_identities_of_one_shift_within_its_dates():
    q = shift_calls_query("2026-11-23/it's", ["hq"])
    assert q.startswith('SELECT "boot", "seq", "answered", "timely", "missed" FROM "call" WHERE ')
    # The label is a field; the shift's name, a tag, narrows the series read.
    assert "\"shift_name\" = 'it\\'s' AND \"shift\"::field = '2026-11-23/it\\'s'" in q
    assert "time >= 1795219200000ms AND time < 1795651200000ms" in q  # 2026-11-21 .. 2026-11-26 UTC
    assert q.endswith("(\"site\" = 'hq') GROUP BY \"unit\", \"inc\"")
    old = shift_calls_query("2026-11-23/day", [], old_schema=True)  # calls stored with the label as a tag
    assert "(\"shift\"::field = '2026-11-23/day' OR \"shift\"::tag = '2026-11-23/day')" in old


def test_rows_from_influx_json():
    results = [{"series": [{"name": "call", "tags": {"unit": "u-1"}, "columns":
                            ["time", "boot", "seq", "answered", "timely", "missed"],
                            "values": [[T0, 1, 5, 1, 0, 0], [T0 + 1, 1, 6, 0, 0, 1]]}]}]
    assert rows_from_results(results) == [("u-1", 1, 5, 1, 0, 0), ("u-1", 1, 6, 0, 0, 1)]


def test_a_reflashed_boards_calls_are_not_taken_for_the_old_boards():
    """A new board incarnation numbers its calls from boot 1, seq 1 again:
    the same (boot, seq) under another `inc` is another call, from the live
    stream and from InfluxDB alike."""
    f = Floor()
    f.set_connected(True, T0)
    f.on_event("hq", "u-1", call(1), T0)
    f.on_event("hq", "u-1", dict(call(1), inc="24a160c0ffee-0a0b0c"), T0)
    results = [{"series": [{"name": "call", "tags": {"unit": "u-1", "inc": "24a160c0ffee-0a0b0c"}, "columns":
                            ["time", "boot", "seq", "answered", "timely", "missed"], "values": [[T0, 1, 1, 1, 1, 0]]},
                           {"name": "call", "tags": {"unit": "u-1", "inc": ""}, "columns":
                            ["time", "boot", "seq", "answered", "timely", "missed"], "values": [[T0, 1, 1, 1, 1, 0]]}]}]
    assert f.on_history(SHIFT, rows_from_results(results)) == 0  # both already seen live
    assert f.header(T0)["figures"]["calls"] == 2


def test_the_selfcheck_test_event_gets_no_tile():
    from seatmon import selfcheck

    f = Floor()
    f.set_connected(True, T0)
    event = selfcheck.test_event("hq", T0)
    assert f.on_event("hq", event["unit"], event, T0) is False
    assert f.snapshot(T0)["tiles"] == []


def reminder(seq, action, ts, unit="u-1"):
    msg = {"v": 1, "kind": "reminder", "site": "hq", "unit": unit, "seat": "A-01", "boot": 1, "seq": seq,
           "ts": ts, "clock": "ntp", "shift": SHIFT, "pattern": "missed", "action": action}
    return protocol.validate(protocol.EVENT, msg)


def test_a_call_event_ends_a_ring_whose_live_message_was_lost():
    f = Floor()
    f.set_connected(True, T0)
    f.on_live("hq", "u-1", live(state="ringing", since=T0, rings=2), T0)
    # the live "idle" after the miss never arrived (QoS0); the call event (QoS1) did
    f.on_event("hq", "u-1", call(1, outcome="missed"), T0 + 12000)
    t = tile(f, T0 + 723000)
    assert (t["status"], t["ring_s"], t["rings"]) == ("idle", None, None)
    assert f.header(T0 + 723000)["longest"] is None
    # a newer ring is not ended by the previous call's late event
    f.on_live("hq", "u-1", live(state="ringing", since=T0 + 20000, rings=1), T0 + 20000)
    f.on_event("hq", "u-1", call(2, outcome="missed"), T0 + 21000)
    assert tile(f, T0 + 22000)["status"] == "ringing"


def test_the_missed_call_badge_ends_as_the_units_reminder_does():
    f = Floor()
    f.set_connected(True, T0)
    f.on_live("hq", "u-1", live(), T0)
    f.on_event("hq", "u-1", reminder(1, "start", T0 + 1000), T0 + 1000)
    assert tile(f, T0 + 1000)["missed"] is True
    f.on_event("hq", "u-1", reminder(2, "ack", T0 + 60000), T0 + 60000)  # the agent's button
    assert tile(f, T0 + 60000)["missed"] is False
    # a live message older than the acknowledgement (retained, delayed) does not bring it back
    f.on_live("hq", "u-1", live(since=T0 + 2000, missed_pending=True), T0 + 61000, retained=True)
    assert tile(f, T0 + 61000)["missed"] is False
    f.on_event("hq", "u-1", reminder(3, "start", T0 + 70000), T0 + 70000)
    f.on_event("hq", "u-1", reminder(4, "stop", T0 + 80000), T0 + 80000)  # the shift's end
    assert tile(f, T0 + 80000)["missed"] is False


def update(seq, step, version, ts, unit="u-1", seat="A-01", detail=None):
    msg = {"v": 1, "kind": "update", "site": "hq", "unit": unit, "seat": seat, "boot": 1, "seq": seq,
           "ts": ts, "clock": "ntp", "step": step, "version": version}
    if detail:
        msg["detail"] = detail
    return protocol.validate(protocol.EVENT, msg)


def status(fw, ts, unit="u-1", seat="A-01"):
    return protocol.validate(protocol.STATUS, {"v": 1, "site": "hq", "unit": unit, "state": "online", "ts": ts,
                                               "boot": 2, "fw": fw, "reason": "power_on", "seat": seat})


def test_a_tile_follows_an_update_until_it_is_confirmed():
    f = Floor()
    f.set_connected(True, T0)
    f.on_status("hq", "u-1", status("0.1.0", T0), T0)
    f.on_live("hq", "u-1", live(), T0)
    t = tile(f, T0)
    assert (t["fw"], t["update"]) == ("0.1.0", None)
    f.on_event("hq", "u-1", update(1, "receiving", "0.2.0", T0 + 1000), T0 + 1000)
    assert tile(f, T0 + 1000)["update"] == {"step": "receiving", "version": "0.2.0", "text": "updating 0.2.0",
                                            "trouble": False}
    f.on_event("hq", "u-1", update(2, "staged", "0.2.0", T0 + 60000), T0 + 60000)
    assert tile(f, T0 + 60000)["update"]["text"] == "installing 0.2.0"
    f.on_status("hq", "u-1", status("0.2.0", T0 + 70000), T0 + 70000)  # the new code's birth
    assert tile(f, T0 + 70000)["update"]["text"] == "installing 0.2.0"
    f.on_event("hq", "u-1", update(3, "confirmed", "0.2.0", T0 + 80000), T0 + 80000)
    t = tile(f, T0 + 80000)
    assert (t["fw"], t["update"], t["status"]) == ("0.2.0", None, "idle")
    # the patch stream sends the tile each time it changed
    assert f.changes(T0 + 80000)["tiles"][0]["update"] is None


def test_a_refused_failed_or_rolled_back_update_stays_on_the_tile_until_the_next_step():
    f = Floor()
    f.set_connected(True, T0)
    f.on_status("hq", "u-1", status("0.1.0", T0), T0)
    f.on_event("hq", "u-1", update(1, "refused", "0.1.0", T0 + 1000, detail="not newer"), T0 + 1000)
    assert tile(f, T0 + 3600000)["update"] == {"step": "refused", "version": "0.1.0",
                                               "text": "update 0.1.0 refused", "trouble": True}
    f.on_event("hq", "u-1", update(2, "receiving", "0.2.0", T0 + 5000), T0 + 5000)
    f.on_event("hq", "u-1", update(3, "failed", "0.2.0", T0 + 9000, detail="sha256 mismatch"), T0 + 9000)
    assert tile(f, T0 + 9000)["update"]["text"] == "update 0.2.0 failed"
    f.on_event("hq", "u-1", update(4, "receiving", "0.2.0", T0 + 20000), T0 + 20000)
    f.on_event("hq", "u-1", update(5, "staged", "0.2.0", T0 + 30000), T0 + 30000)
    f.on_event("hq", "u-1", update(6, "rolled_back", "0.2.0", T0 + 300000, detail="self-test failed"), T0 + 300000)
    t = tile(f, T0 + 300000)
    assert (t["update"]["text"], t["update"]["trouble"], t["fw"]) == ("rolled back from 0.2.0", True, "0.1.0")
    # an older step delivered late (a resent journal) does not undo it
    f.on_event("hq", "u-1", update(5, "staged", "0.2.0", T0 + 30000), T0 + 301000)
    assert tile(f, T0 + 301000)["update"]["step"] == "rolled_back"


def test_a_units_update_and_version_follow_it_to_another_seat():
    f = Floor()
    f.set_connected(True, T0)
    f.on_status("hq", "u-1", protocol.validate(protocol.STATUS, {"v": 1, "site": "hq", "unit": "u-1",
                                                                 "state": "online", "fw": "0.1.0"}), T0)
    f.on_event("hq", "u-1", update(1, "failed", "0.2.0", T0 + 1000), T0 + 1000)  # the status named no seat
    assert (tile(f, T0 + 1000)["fw"], tile(f, T0 + 1000)["update"]["step"]) == ("0.1.0", "failed")
    f.on_live("hq", "u-1", live(seat="B-02", since=T0 + 2000), T0 + 2000)
    assert (tile(f, T0 + 2000)["fw"], tile(f, T0 + 2000)["update"]) == (None, None)
    t = tile(f, T0 + 2000, "B-02")
    assert (t["fw"], t["update"]["text"]) == ("0.1.0", "update 0.2.0 failed")
