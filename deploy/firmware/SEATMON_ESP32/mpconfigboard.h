// The seatmon custom image. MICROPY_VFS_ROM is 0 on every stock esp32 board:
// here the port mounts the romfs partition at /rom and the unit's code runs
// in place from flash, leaving its GC heap to data.
#define MICROPY_HW_BOARD_NAME               "Seatmon ESP32 module with ROMFS"
#define MICROPY_HW_MCU_NAME                 "ESP32"

#define MICROPY_VFS_ROM                     (1)
