"""The MicroPython images a desk unit can run, and what each gives the unit.

One entry per image a technician flashes: the stock downloads from
micropython.org (https://micropython.org/download/<BOARD>/, files named
`<BOARD>[-<VARIANT>]-<YYYYMMDD>-v<X.Y.Z>.bin`) and the custom ROMFS image
built from deploy/firmware/ (which cannot be built here).

What each image gives, from MicroPython's ports/esp32 sources:
- ROMFS: `MICROPY_VFS_ROM` is 0 in py/mpconfig.h and no stock esp32 board or
  variant turns it on, so a stock image has neither `vfs.rom_ioctl` nor
  `vfs.VfsRom`; only the custom image has them.
- The GC heap: ports/esp32/mpconfigport.h sets `MICROPY_GC_INITIAL_HEAP_SIZE`
  to 56 KiB on the ESP32 and 64 KiB on the S2 (its stock image is built with
  SPIRAM support, boards/sdkconfig.spiram_sx), S3 and C3, with
  `MICROPY_GC_SPLIT_HEAP_AUTO`: py/gc.c (`gc_try_add_heap`) adds an area the
  size of the whole heap when an allocation fails, from the largest free
  block of ESP-IDF's heap (ports/esp32 `gc_get_max_new_split`). The initial
  size is "chosen so they can grow the heap once (double it) and still have
  enough internal RAM to start WiFi and make a HTTPS request"
  (mpconfigport.h): without PSRAM the unit's budget, with Wi-Fi up and
  mbedTLS's session in ESP-IDF's heap, is twice the initial size.
- PSRAM: the `-SPIRAM` variant (boards/sdkconfig.spiram:
  `CONFIG_SPIRAM_USE_MALLOC`, allocations over 8 KiB preferring PSRAM) and
  the S3's generic image (boards/sdkconfig.spiram_sx, which finds quad PSRAM
  at boot; octal PSRAM needs the `-SPIRAM_OCT` variant) put ESP-IDF's heap,
  and so the growing GC heap, in PSRAM: up to the PSRAM the chip maps (4 MiB
  on the ESP32) less ESP-IDF's own use of it.
"""

from __future__ import annotations

from dataclasses import dataclass

CUSTOM_ROMFS = "custom-romfs"
KIB = 1024


@dataclass(frozen=True)
class Image:
    name: str  # the name a hardware revision's `firmware` gives
    chip: str  # shared/boardfiles.py's chip name
    board_name: str  # MICROPY_HW_BOARD_NAME: os.uname().machine is "<board_name> with <MCU>"
    initial_heap_kib: int  # MICROPY_GC_INITIAL_HEAP_SIZE
    psram: bool  # uses PSRAM when the module has it
    romfs: bool = False  # MICROPY_VFS_ROM: vfs.rom_ioctl, a romfs partition mounted at /rom
    download: str = ""  # the file to download from micropython.org, or where the image comes from
    note: str = ""

    @property
    def stock(self) -> bool:
        return self.name != CUSTOM_ROMFS

    def gc_budget_kib(self, psram_kib: int = 0) -> int:
        """The GC heap the unit may use with Wi-Fi and a TLS session up: the
        initial heap grown once, or with PSRAM what the PSRAM holds (less
        ESP-IDF's share, taken here as 1/8)."""
        if self.psram and psram_kib:
            return min(psram_kib, 4096 if self.chip == "esp32" else psram_kib) * 7 // 8
        return 2 * self.initial_heap_kib


def _stock(board: str, variant: str = "") -> str:
    return f"https://micropython.org/download/{board}/: {board}{'-' + variant if variant else ''}-YYYYMMDD-vX.Y.Z.bin"


IMAGES = {i.name: i for i in (
    Image("ESP32_GENERIC", "esp32", "Generic ESP32 module", 56, False, download=_stock("ESP32_GENERIC"),
          note="ESP32-WROOM modules, no PSRAM"),
    Image("ESP32_GENERIC-SPIRAM", "esp32", "Generic ESP32 module with SPIRAM", 56, True,
          download=_stock("ESP32_GENERIC", "SPIRAM"), note="ESP32-WROVER modules (PSRAM)"),
    Image("ESP32_GENERIC-OTA", "esp32", "Generic ESP32 module with OTA", 56, False,
          download=_stock("ESP32_GENERIC", "OTA"), note="two app slots, no PSRAM"),
    Image("ESP32_GENERIC_S2", "esp32-s2", "ESP32S2 module", 64, True, download=_stock("ESP32_GENERIC_S2")),
    Image("ESP32_GENERIC_S3", "esp32-s3", "Generic ESP32S3 module", 64, True, download=_stock("ESP32_GENERIC_S3"),
          note="finds quad PSRAM itself (N8R2)"),
    Image("ESP32_GENERIC_S3-SPIRAM_OCT", "esp32-s3", "Generic ESP32S3 module with Octal-SPIRAM", 64, True,
          download=_stock("ESP32_GENERIC_S3", "SPIRAM_OCT"), note="octal PSRAM (N16R8)"),
    Image("ESP32_GENERIC_C3", "esp32-c3", "ESP32C3 module", 64, False, download=_stock("ESP32_GENERIC_C3")),
    Image(CUSTOM_ROMFS, "esp32", "Seatmon ESP32 module with ROMFS", 56, False, romfs=True,
          download="built from deploy/firmware/ (docs/hardware.md)", note="ESP32-WROOM, code run in place from ROMFS"),
)}
# The PSRAM of the module each PSRAM image is for, as the image maps it:
# an ESP32-WROVER's (8 MB on a WROVER-E, of which the ESP32 maps 4 MiB), an
# ESP32-S3 N8R2's 2 MB, an N16R8's 8 MB.
MODULE_PSRAM_KIB = {"ESP32_GENERIC-SPIRAM": 4096, "ESP32_GENERIC_S3": 2048, "ESP32_GENERIC_S3-SPIRAM_OCT": 8192}
STOCK_FOR_CHIP = {"esp32": "ESP32_GENERIC", "esp32-s2": "ESP32_GENERIC_S2", "esp32-s3": "ESP32_GENERIC_S3",
                  "esp32-c3": "ESP32_GENERIC_C3"}
MCU_NAMES = {"ESP32": "esp32", "ESP32S2": "esp32-s2", "ESP32S3": "esp32-s3", "ESP32C3": "esp32-c3"}


def for_chip(chip: str) -> list[str]:
    return [name for name, image in IMAGES.items() if image.chip == chip]


def default_for(chip: str) -> str:
    """The image a revision that names none runs: the chip's stock download."""
    return STOCK_FOR_CHIP[chip]


def machine_string(image: Image) -> str:
    mcu = next(m for m, c in MCU_NAMES.items() if c == image.chip)
    return f"{image.board_name} with {mcu}"


def chip_of_machine(machine: str | None) -> str | None:
    """The chip named by os.uname().machine ("... with ESP32S3"), None when unknown."""
    if not machine or " with " not in machine:
        return None
    return MCU_NAMES.get(machine.rsplit(" with ", 1)[1].strip())


def by_machine(machine: str | None) -> Image | None:
    """The image whose os.uname().machine this is, None when not one of ours."""
    return next((i for i in IMAGES.values() if machine_string(i) == machine), None)


# The whole unit's GC heap on a 32-bit ESP32 through a shift with its TLS
# session up, keyed by ROMFS: its code as .mpy files in /lib (stock images)
# or run in place from ROMFS (the custom image): the higher of two runs of
# bench/bench_unit_heap.py on 2026-12-07 (docs/performance.md), which says
# when a new measurement exceeds these.
UNIT_HEAP_KIB = {False: 96.9, True: 57.9}
SPARE = 0.20  # of the GC budget kept free: fragmentation, a burst of events, a reconnect
INSTEAD = {  # what a chip's revision runs when its image cannot hold the unit
    "esp32": "ESP32_GENERIC-SPIRAM on a WROVER module (PSRAM), or the custom image (firmware = \"custom-romfs\")",
    "esp32-s2": "ESP32_GENERIC_S2 on a module with PSRAM",
    "esp32-s3": "ESP32_GENERIC_S3 on a module with PSRAM (N8R2; N16R8: ESP32_GENERIC_S3-SPIRAM_OCT)",
    "esp32-c3": "an ESP32-S3 or ESP32 module with PSRAM",
}


def too_small(name: str, psram_kib: int = 0) -> str | None:
    """Why image `name` with `psram_kib` of PSRAM cannot hold the unit with
    SPARE to spare, or None when it can."""
    image = IMAGES[name]
    budget = image.gc_budget_kib(psram_kib)
    need = UNIT_HEAP_KIB[image.romfs]
    if need <= budget * (1 - SPARE):
        return None
    where = "" if image.psram and psram_kib else " without PSRAM"
    return (f"{name}{where} leaves the unit {budget} KiB of GC heap; it needs {need:.0f} KiB and {SPARE:.0%} "
            f"to spare ({need / (1 - SPARE):.0f} KiB): flash {INSTEAD[image.chip]}")
