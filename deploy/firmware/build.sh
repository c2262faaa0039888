#!/bin/sh
# Build the seatmon custom MicroPython image (deploy/firmware/SEATMON_ESP32)
# in Espressif's ESP-IDF container. Needs Docker and network access; it
# cannot be built on the project's development machines, and no test here
# runs the image itself (the virtual board models it: tools/images.py).
#
#   deploy/firmware/build.sh [MICROPYTHON_TAG] [IDF_VERSION]
#
# Writes deploy/firmware/out/seatmon-esp32-<tag>.bin (bootloader, partition
# table, otadata and the app in one image, flashed at 0x1000).
set -eu
TAG=${1:-v1.29.0}
IDF=${2:-v5.4.1}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$HERE/build
mkdir -p "$WORK" "$HERE/out"
if [ ! -d "$WORK/micropython" ]; then
    git clone --depth 1 --branch "$TAG" https://github.com/micropython/micropython.git "$WORK/micropython"
fi
docker run --rm -u "$(id -u):$(id -g)" -e HOME=/tmp \
    -v "$WORK/micropython:/src" -v "$HERE:/board:ro" -w /src \
    "espressif/idf:$IDF" sh -c '
        set -eu
        make -C mpy-cross
        make -C ports/esp32 submodules BOARD_DIR=/board/SEATMON_ESP32
        make -C ports/esp32 BOARD_DIR=/board/SEATMON_ESP32
    '
cp "$WORK/micropython/ports/esp32/build-SEATMON_ESP32/firmware.bin" "$HERE/out/seatmon-esp32-$TAG.bin"
echo "built $HERE/out/seatmon-esp32-$TAG.bin"
