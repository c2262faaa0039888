"""Site inventory: the example loads and builds unit configs; bad inventories
are rejected with the key and the line named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import inventory as inv

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"


def _variant(tmp_path, old, new):
    text = EXAMPLE.read_text()
    assert old in text
    path = tmp_path / "site.toml"
    path.write_text(text.replace(old, new, 1))
    return path, text.replace(old, new, 1)


def _line_of(text, fragment):
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_example_builds_a_config_per_unit():
    site = inv.load(EXAMPLE)
    assert [u["id"] for u in site.units] == ["u-0001", "u-0002", "u-0003"]
    conf = inv.unit_config(site, site.unit("u-0002"))
    assert conf["unit"] == "u-0002" and conf["seat"] == "A-02" and conf["site"] == "hq"
    assert conf["limit_ms"] == 12000 and conf["limit_rings"] == 3  # unit override, site value
    assert conf["shift_end_mode"] == "cut"
    assert conf["shifts"]["sat"] == [["day", "08:00", "20:00"]]
    assert inv.board_config(site, site.unit("u-0003"))["pins"]["led"] == 47
    inv.validate_with_firmware(conf)


def test_tz_table_has_the_dst_changes():
    rows = inv.tz_table("Europe/Berlin", start_year=2026, years=1)
    # 2026-03-29 01:00 UTC -> +120, 2026-10-25 01:00 UTC -> +60
    assert rows == [[1767225600000, 60], [1774746000000, 120], [1792890000000, 60]]
    assert inv.tz_table("Asia/Shanghai", start_year=2026, years=2) == [[1767225600000, 480]]


@pytest.mark.parametrize("old,new,key,fragment,words", [
    ('limit_rings = 3', 'limit_ring = 3', "limits.limit_ring", "limit_ring =", "did you mean 'limit_rings'"),
    ('timezone = "Europe/Berlin"', 'timezone = "Europe/Berlim"', "site.timezone", "Berlim", "unknown IANA time zone"),
    ('id = "u-0003"', 'id = "u-0001"', "units[2].id", 'id = "u-0001"\nseat = "B-01"', "duplicate unit 'u-0001'"),
    ('pins = { led = 47 }', 'pins = { led = 29 }', "units[2].pins.led", "led = 29", "GPIO 29 is not a usable pin on esp32-s3"),
    ('ring = 34, hook = 35, power = 32, button = 0, led = 2', 'ring = 34, hook = 35, power = 32, button = 0, led = 39',
     "hardware.rev-a.pins.led", "led = 39", "input-only"),
    ('hardware = "rev-b"', 'hardwar = "rev-b"', "units[2].hardwar", 'hardwar = "rev-b"', "did you mean 'hardware'"),
    ('power_mode = "cut"', 'power_mode = "cutt"', "units[1].power_mode", '"cutt"', "did you mean 'cut'"),
    ('mon = [', 'mo = [', "shifts.mo", "mo = [", "unknown weekday (did you mean 'mon'"),
])
def test_bad_inventory_names_key_and_line(tmp_path, old, new, key, fragment, words):
    path, text = _variant(tmp_path, old, new)
    with pytest.raises(inv.InventoryError) as err:
        inv.load(path)
    e = err.value
    first = fragment.split("\n")[0]
    if "\n" in fragment:  # the second of two identical lines
        lines = [i for i, line in enumerate(text.splitlines(), 1) if line == first]
        expected_line = lines[-1]
    else:
        expected_line = _line_of(text, first)
    assert e.key == key and e.line == expected_line, str(e)
    assert words in str(e) and f"site.toml:{expected_line}: {key}:" in str(e)


def test_syntax_error_keeps_tomllib_position(tmp_path):
    path, _ = _variant(tmp_path, 'ssid = "seatmon-hq"', 'ssid = "seatmon-hq')
    with pytest.raises(inv.InventoryError, match=r"line 14"):
        inv.load(path)


def test_unknown_unit_suggests(tmp_path):
    site = inv.load(EXAMPLE)
    with pytest.raises(inv.InventoryError, match="did you mean 'u-0001'"):
        site.unit("u-001")
