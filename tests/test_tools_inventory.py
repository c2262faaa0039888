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
    assert inv.board_config(site, site.unit("u-0003"))["pins"]["led"] == 38
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
    ('pins = { led = 38 }', 'pins = { led = 29 }', "units[2].pins.led", "led = 29", "GPIO 29 is not a usable pin on esp32-s3"),
    # Pins that break a board (defect: the inventory used to accept them).
    ('button = 33, led = 2', 'button = 0, led = 2', "hardware.rev-a.pins.button", "button = 0, led = 2",
     "GPIO 0 is the boot-mode pin on esp32"),
    ('power = 32, button = 33', 'power = 1, button = 33', "hardware.rev-a.pins.power", "power = 1,",
     "GPIO 1 is the console UART's TX (provisioning) on esp32"),
    ('power = 32, button = 33', 'power = 3, button = 33', "hardware.rev-a.pins.power", "power = 3,",
     "GPIO 3 is the console UART's RX"),
    ('buzzer = 25, relay = 26', 'buzzer = 12, relay = 26', "hardware.rev-a.pins.buzzer", "buzzer = 12",
     "GPIO 12 is a strapping pin (sets the flash voltage at reset) on esp32"),
    ('pins = { led = 38 }', 'pins = { led = 38, power = 11 }', "units[2].pins.power", "power = 11",
     "cannot read the ADC power sense on esp32-s3 while Wi-Fi is on (ADC1 pins: 1-10)"),
    ('button = 14, led = 48', 'button = 0, led = 48', "hardware.rev-b.pins.button", "button = 0, led = 48",
     "GPIO 0 is the boot-mode pin on esp32-s3"),
    ('relay = 7 }', 'relay = 19 }', "hardware.rev-b.pins.relay", "relay = 19 }",
     "GPIO 19 is native USB D- (provisioning) on esp32-s3"),
    ('relay = 7 }', 'relay = 20 }', "hardware.rev-b.pins.relay", "relay = 20 }", "GPIO 20 is native USB D+"),
    ('relay = 7 }', 'relay = 43 }', "hardware.rev-b.pins.relay", "relay = 43 }", "GPIO 43 is the console UART's TX"),
    ('relay = 7 }', 'relay = 44 }', "hardware.rev-b.pins.relay", "relay = 44 }", "GPIO 44 is the console UART's RX"),
    ('board = "esp32-s3"', 'board = "esp32-c3"', "hardware.rev-b.pins.button", "button = 14, led = 48",
     "GPIO 14 is not a usable pin on esp32-c3"),
    ('led_kind = "neopixel"', 'led_kind = "rgb"', "hardware.rev-b.led_kind", 'led_kind = "rgb"', "expected one of gpio, neopixel"),
    ('ring = 34, hook = 35, power = 32, button = 33, led = 2', 'ring = 34, hook = 35, power = 32, button = 33, led = 39',
     "hardware.rev-a.pins.led", "led = 39", "input-only"),
    ('hardware = "rev-b"', 'hardwar = "rev-b"', "units[2].hardwar", 'hardwar = "rev-b"', "did you mean 'hardware'"),
    ('power_mode = "cut"', 'power_mode = "cutt"', "units[1].power_mode", '"cutt"', "did you mean 'cut'"),
    ('mon = [', 'mo = [', "shifts.mo", "mo = [", "unknown weekday (did you mean 'mon'"),
    # The image a revision runs: one for its chip, and one that holds the unit.
    ('firmware = "ESP32_GENERIC_S3"', 'firmware = "ESP32_GENERIC-SPIRAM"', "hardware.rev-b.firmware",
     'firmware = "ESP32_GENERIC-SPIRAM"\nled_kind', "expected one of ESP32_GENERIC_S3, ESP32_GENERIC_S3-SPIRAM_OCT"),
    ('firmware = "ESP32_GENERIC-SPIRAM"', 'firmware = "ESP32_GENERIC"', "hardware.rev-a.firmware",
     'firmware = "ESP32_GENERIC"', "ESP32_GENERIC without PSRAM leaves the unit 112 KiB of GC heap"),
    ('firmware = "custom-romfs"', 'firmware = "ESP32_GENERIC-OTA"', "hardware.rev-c.firmware",
     'firmware = "ESP32_GENERIC-OTA"', "flash ESP32_GENERIC-SPIRAM on a WROVER module (PSRAM), or the custom image"),
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
    line = EXAMPLE.read_text().splitlines().index('ssid = "seatmon-hq"') + 1
    with pytest.raises(inv.InventoryError, match=rf"line {line}\b"):
        inv.load(path)


def test_unknown_unit_suggests(tmp_path):
    site = inv.load(EXAMPLE)
    with pytest.raises(inv.InventoryError, match="did you mean 'u-0001'"):
        site.unit("u-001")


@pytest.mark.parametrize("gpio,words", [(18, "native USB D-"), (19, "native USB D+"), (20, "UART's RX"),
                                        (21, "UART's TX"), (11, "VDD_SPI")])
def test_c3_refuses_usb_uart_and_flash_power_pins(tmp_path, gpio, words):
    text = EXAMPLE.read_text().replace('board = "esp32-s3"', 'board = "esp32-c3"', 1).replace(
        "ring = 4, hook = 5, power = 6, button = 14, led = 48, relay = 7",
        f"ring = 4, hook = 5, power = 6, button = 2, led = 10, relay = {gpio}").replace("pins = { led = 38 }", "")
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(inv.InventoryError) as err:
        inv.load(path)
    assert err.value.key == "hardware.rev-b.pins.relay" and words in str(err.value)
    assert err.value.line == _line_of(text, f"relay = {gpio}")


def test_c3_button_on_its_boot_pin_9_is_refused(tmp_path):
    path, _ = _variant(tmp_path, 'pins = { led = 38 }', 'pins = { led = 10, button = 9 }')
    text = path.read_text().replace('board = "esp32-s3"', 'board = "esp32-c3"', 1).replace(
        "ring = 4, hook = 5, power = 6, button = 14, led = 48, relay = 7", "ring = 4, hook = 5, power = 3, led = 8"
    ).replace('firmware = "ESP32_GENERIC_S3"', 'firmware = "ESP32_GENERIC_C3"')
    path.write_text(text)
    with pytest.raises(inv.InventoryError, match="units\\[2\\].pins.button: GPIO 9 is the boot-mode pin on esp32-c3"):
        inv.load(path)
