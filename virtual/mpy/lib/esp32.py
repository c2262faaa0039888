# `esp32` of the virtual board: just what the firmware and provisioning ask of it.
import os

HEAP_DATA = 4  # MALLOC_CAP_8BIT, as the esp32 port's constant
HEAP_EXEC = 1
# ESP-IDF's data heaps as idf_heap_info reports them, (total, free, largest
# free block, minimum free) each: two internal RAM regions (illustrative
# figures: the virtual board has no ESP-IDF) and, on a module with PSRAM that
# the image uses, one PSRAM region of its size (what provisioning looks for).
_PSRAM = int(os.getenv("SEATMON_VB_PSRAM_KIB") or "0") * 1024
_INTERNAL = [(113840, 60000, 40000, 50000), (84592, 30000, 28000, 25000)]


def idf_heap_info(capabilities):
    heaps = list(_INTERNAL)
    if _PSRAM and capabilities == HEAP_DATA:
        heaps.append((_PSRAM, _PSRAM - 65536, _PSRAM - 65536, _PSRAM - 131072))
    return heaps


class Partition:
    RUNNING = 1

    def __init__(self, id):
        self.id = id

    @staticmethod
    def mark_app_valid_cancel_rollback():
        raise OSError(-261)  # not booted from an OTA partition, as a plain flash image answers
