#!/usr/bin/env bash
# Set up seatmon on a Debian machine: system packages (Mosquitto and its C
# clients for the broker benchmark, InfluxDB),
# a virtualenv in .venv and the project installed into it. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES="mosquitto mosquitto-clients influxdb chromium python3-venv python3-pip openssl"
missing=""
for bin in mosquitto mosquitto_pub mosquitto_sub influxd chromium openssl; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing="yes"
done
if [ -n "$missing" ] || [ "${SEATMON_APT_ALWAYS:-}" = "1" ]; then
  echo "== installing system packages: $APT_PACKAGES"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $APT_PACKAGES
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "== installing seatmon into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# Node runs the MicroPython VM of the virtual board (virtual/wasmboard.py).
if ! command -v node >/dev/null 2>&1; then
  echo "== installing Node.js"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y nodejs npm
fi
echo "== installing Node packages (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
echo "== installing the ESP32 MicroPython stubs into typings/ (for mypy-device.ini)"
.venv/bin/python -m pip install --quiet --upgrade --target typings 'micropython-esp32-stubs>=1.24'
echo "== ready: .venv/bin/seatmon --help"
