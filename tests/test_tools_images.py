"""The MicroPython images a unit runs (tools/images.py) and how provisioning
chooses the code's path from what a board reports (tools/flash.py
choose_deployment): pure, no board."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import flash, images
from tools import inventory as inv

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "site.example.toml"
ROM = {"partitions": 1, "size": 131072, "sha256": None}


def scan(image: str, psram_kib: int | None = None) -> dict:
    """What the scan reads on a board running `image`."""
    i = images.IMAGES[image]
    if psram_kib is None:
        psram_kib = images.MODULE_PSRAM_KIB.get(image, 0)
    return {"machine": images.machine_string(i), "psram_kib": psram_kib if i.psram else 0, "gc_free": 50000}


@pytest.fixture(scope="module")
def site():
    return inv.load(EXAMPLE)


def on(site, revision: str) -> dict:
    return dict(site.unit("u-0001"), hardware=revision)


def test_stock_image_budgets_come_from_the_ports_initial_heap():
    """Twice MICROPY_GC_INITIAL_HEAP_SIZE without PSRAM (56 KiB on the ESP32,
    64 on the S2, S3, C3); with PSRAM, 7/8 of what the chip maps."""
    budget = {name: i.gc_budget_kib(0) for name, i in images.IMAGES.items()}
    assert budget["ESP32_GENERIC"] == budget["ESP32_GENERIC-OTA"] == budget["custom-romfs"] == 112
    assert budget["ESP32_GENERIC_S3"] == budget["ESP32_GENERIC_C3"] == budget["ESP32_GENERIC_S2"] == 128
    assert images.IMAGES["ESP32_GENERIC-SPIRAM"].gc_budget_kib(8192) == 3584  # the ESP32 maps 4 MiB
    assert images.IMAGES["ESP32_GENERIC_S3"].gc_budget_kib(2048) == 1792


def test_the_machine_string_names_image_and_chip():
    assert images.machine_string(images.IMAGES["ESP32_GENERIC-SPIRAM"]) == \
        "Generic ESP32 module with SPIRAM with ESP32"
    assert images.chip_of_machine("Generic ESP32S3 module with Octal-SPIRAM with ESP32S3") == "esp32-s3"
    assert images.by_machine("Generic ESP32S3 module with ESP32S3").name == "ESP32_GENERIC_S3"
    assert images.chip_of_machine(None) is None and images.by_machine("linux [GCC 12] version") is None


@pytest.mark.parametrize("revision, board_image, psram, romfs, seen", [
    ("rev-a", "ESP32_GENERIC-SPIRAM", None, False, "ESP32_GENERIC-SPIRAM, 4096 KiB of PSRAM"),
    ("rev-b", "ESP32_GENERIC_S3", None, False, "ESP32_GENERIC_S3, 2048 KiB of PSRAM"),
    ("rev-b", "ESP32_GENERIC_S3-SPIRAM_OCT", None, False, "ESP32_GENERIC_S3-SPIRAM_OCT, 8192 KiB of PSRAM"),
    ("rev-c", "custom-romfs", None, True, "custom-romfs, no PSRAM"),
])
def test_the_board_and_its_revision_choose_the_path(site, revision, board_image, psram, romfs, seen):
    rom = ROM if images.IMAGES[board_image].romfs else None
    assert flash.choose_deployment(site, on(site, revision), rom, scan(board_image, psram)) == (romfs, seen)


@pytest.mark.parametrize("revision, board_image, psram, words", [
    # an ESP32 without PSRAM on a stock image: the code in RAM does not fit
    ("rev-a", "ESP32_GENERIC", None, "the board runs ESP32_GENERIC, no PSRAM: ESP32_GENERIC without PSRAM leaves "
                                     "the unit 112 KiB of GC heap"),
    # the SPIRAM image on a WROOM module: no PSRAM found
    ("rev-a", "ESP32_GENERIC-SPIRAM", 0, "the board runs ESP32_GENERIC-SPIRAM, no PSRAM: ESP32_GENERIC-SPIRAM "
                                         "without PSRAM leaves the unit 112 KiB"),
    ("rev-c", "ESP32_GENERIC-SPIRAM", None, "without ROMFS: hardware revision rev-c runs the custom image "
                                            "custom-romfs: flash it (built from deploy/firmware/"),
    ("rev-b", "ESP32_GENERIC-SPIRAM", None, "the board is an esp32, hardware revision rev-b is an esp32-s3"),
])
def test_a_board_that_cannot_run_the_unit_is_refused_naming_the_image(site, revision, board_image, psram, words):
    rom = ROM if images.IMAGES[board_image].romfs else None
    with pytest.raises(flash.FlashError) as err:
        flash.choose_deployment(site, on(site, revision), rom, scan(board_image, psram))
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_no_romfs_overrides_the_revision_and_an_unknown_board_is_not_refused(site):
    assert flash.choose_deployment(site, on(site, "rev-c"), None, scan("ESP32_GENERIC"), override=False)[0] is False
    # The WebAssembly test board: no os.uname().machine, no esp32 module.
    assert flash.choose_deployment(site, on(site, "rev-a"), None, {"machine": None, "psram_kib": None}) == \
        (False, "a MicroPython")
    assert flash.choose_deployment(site, on(site, "rev-c"), ROM, {"machine": None, "psram_kib": None})[0] is True
