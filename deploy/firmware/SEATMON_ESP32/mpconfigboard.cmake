# The seatmon custom image: ESP32_GENERIC (ESP32-WROOM, no PSRAM) with ROMFS
# and two OTA app slots. Out-of-tree board: build.sh passes BOARD_DIR.
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
