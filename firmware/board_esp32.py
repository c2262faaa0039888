# The ESP32 board seam: the only module that touches machine, network,
# socket, esp32 and neopixel. Every board module is injected (the real one is
# imported when none is given), so the host simulator runs this very same code
# with per-unit fake modules: many virtual units in one process share no pins.
#
# Board settings: the unit's /board.json as shared/boardfiles.py checks it:
#   pins: {"ring", "hook", "power", "button", "disconnect", "led", "buzzer",
#         "relay"} GPIO numbers (null or absent: not fitted). Without "pins"
#         (the host simulator) the rev-a map PINS applies.
#   active_low: input names whose level is inverted (opto pulls the pin down)
#   led_kind: "gpio" (one LED) or "neopixel" (one pixel, coloured per pattern)
#   power_adc: true reads the power sense with the ADC (config power_sense "adc")
#   relay_active_low: true when the relay driver energises the coil on a low pin
#   wdt_ms: watchdog timeout (>= 1000)
#
# The relay is wired fail-safe (docs/hardware.md): its normally-closed
# contacts feed the seat, and the coil is energised only to cut. The pin starts
# at the de-energised level, so a boot, reset or crash never cuts the power.

try:
    import asyncio
except ImportError:  # MicroPython before 1.21
    import uasyncio as asyncio  # type: ignore
import binascii
import gc
import os
import time

from firmware.ticks import ticks_diff

TYPE_CHECKING = False  # mypy reads this name as true (mypy-device.ini): no typing import on the board
if TYPE_CHECKING:  # the real modules' types, for mypy (mypy-device.ini) only
    from typing import List, Optional, Tuple, Type

    import esp32 as _esp32
    import machine as _machine
    import neopixel as _neopixel
    import network as _network
    import socket as _socket

_SLEEP_MS = getattr(asyncio, "sleep_ms", None)  # MicroPython's asyncio only
PINS = {"ring": 34, "hook": 35, "power": 32, "button": 33, "disconnect": None,
        "led": 2, "buzzer": 25, "relay": 26}
INPUTS = (("ring", "ring"), ("hook", "hook"), ("button", "button"), ("disconnect", "disc"))  # pin -> core input
WDT_MS = 8000
EAGAIN = 11  # a non-blocking socket with nothing to read (errno.EAGAIN on the ESP32 and Linux)
UNIX_2000 = 946684800  # seconds from 1970 to 2000 (the ESP32 port's epoch before 1.22)
# NeoPixel colours per pattern (RGB, dim).
COLOURS = {"urgent": (64, 0, 0), "notice": (48, 24, 0), "apologise": (40, 0, 40),
           "fault": (64, 0, 0), "shift_end": (0, 0, 64), "missed": (48, 32, 0)}
RESET_CAUSES = (("PWRON_RESET", "power_on"), ("HARD_RESET", "hard_reset"),
                ("WDT_RESET", "watchdog"), ("DEEPSLEEP_RESET", "deep_sleep"),
                ("SOFT_RESET", "soft_reset"))


class Board:
    def __init__(self, settings=None, machine=None, network=None, socket=None, esp32=None,
                 neopixel=None, clock=None, speed=1):
        # The board modules: the ones injected, else the real ones. For mypy
        # (mypy-device.ini) each local below is the real module as the ESP32
        # stubs type it, so every use of an injected module is checked.
        if TYPE_CHECKING:
            mach = _machine
            net = _network
            sock = _socket
            e32 = _esp32
        else:
            mach = machine if machine is not None else __import__("machine")
            net = network if network is not None else __import__("network")
            sock = socket if socket is not None else __import__("socket")
            e32 = esp32
            if e32 is None:
                try:
                    e32 = __import__("esp32")
                except ImportError:  # not an ESP32 build: the partition check is skipped
                    e32 = None
        self.machine = mach
        self.network = net
        self.socket = sock
        self.esp32 = e32
        # clock: a module with ticks_ms() and time() (the board's `time`); the
        # simulator passes an accelerated one and `speed` to scale sleeps.
        self.clock = clock if clock is not None else time
        self.speed = speed
        s = settings or {}
        # The pins board.json lists, exactly: no default may name a GPIO the
        # chip lacks (Pin() raises ValueError) or drive a pin nothing is wired to.
        pins = s["pins"] if "pins" in s else PINS
        low = s.get("active_low", ["ring", "hook"])
        Pin = mach.Pin
        ADC = mach.ADC
        self._WDT = mach.WDT
        self._WLAN = net.WLAN
        # Host simulators may have no RTC (their clock has set_rtc_ms).
        self._RTC = getattr(mach, "RTC", None)  # type: Optional[Type[_machine.RTC]]
        self._STA_IF = net.STA_IF
        self._inputs = []  # type: List[Tuple[str, _machine.Pin, bool]]
        for role, name in INPUTS:
            if pins.get(role) is not None:
                if role == "button":  # a push button to ground
                    pin = Pin(pins[role], Pin.IN, Pin.PULL_UP)
                else:  # opto outputs have their own pull-up
                    pin = Pin(pins[role], Pin.IN)
                self._inputs.append((name, pin, role in low or role == "button"))
        self._adc = None  # type: Optional[_machine.ADC]
        self._power = None  # type: Optional[_machine.Pin]
        self._power_low = "power" in low
        self.power_kind = None  # how the power sense is read: "adc", "digital" or None
        if pins.get("power") is not None:
            self.power_kind = "adc" if s.get("power_adc") else "digital"
            if s.get("power_adc"):
                self._adc = ADC(Pin(pins["power"]))
                self._adc.atten(ADC.ATTN_11DB)
            else:
                self._power = Pin(pins["power"], Pin.IN)
        self._pixel = None  # type: Optional[_neopixel.NeoPixel]
        self._led = None  # type: Optional[_machine.Pin]
        if pins.get("led") is not None:
            if s.get("led_kind") == "neopixel":
                if TYPE_CHECKING:
                    np = _neopixel
                else:
                    np = neopixel if neopixel is not None else __import__("neopixel")
                NeoPixel = np.NeoPixel
                self._pixel = NeoPixel(Pin(pins["led"], Pin.OUT), 1)
            else:
                self._led = Pin(pins["led"], Pin.OUT, value=0)
        self._buzzer = None  # type: Optional[_machine.Pin]
        if pins.get("buzzer") is not None:
            self._buzzer = Pin(pins["buzzer"], Pin.OUT, value=0)
        self._relay_low = bool(s.get("relay_active_low"))
        self._relay = None  # type: Optional[_machine.Pin]
        if pins.get("relay") is not None:
            # Coil off: the normally-closed contacts keep the seat powered.
            self._relay = Pin(pins["relay"], Pin.OUT, value=self._coil_level(False))
        self._out = None  # last (led, buzzer, relay, pattern) driven
        self._wdt = None  # type: Optional[_machine.WDT]
        self.wdt_ms = max(1000, s.get("wdt_ms", WDT_MS))  # the ESP32's WDT cannot be stopped; >= 1 s
        self._wlan = None  # type: Optional[_network.WLAN]
        # The simulator replays its wires at each sample's tick; a real board
        # has no such hook and reads its pins as they are.
        self._at_tick = getattr(mach, "sim_at_tick", None)

    def new_incarnation(self):
        """An id for a journal that starts empty: this chip's unique id (its
        MAC) and 24 random bits (the ESP32's hardware RNG), so neither a board
        replacing another nor this one erased and re-flashed reuses an
        identity the host has seen."""
        uid = binascii.hexlify(self.machine.unique_id()).decode()
        try:
            rnd = binascii.hexlify(os.urandom(3)).decode()
        except AttributeError:  # a port without os.urandom (the ESP32 ports all have it)
            import random
            rnd = "%06x" % random.getrandbits(24)
        return uid[-12:] + "-" + rnd

    # ---- time ---------------------------------------------------------------
    def ticks_ms(self):
        return self.clock.ticks_ms()

    def sleep_ms(self, ms):
        """An awaitable. On MicroPython asyncio.sleep_ms itself: no float and
        no coroutine allocated per call (the sampler sleeps 100 times a second)."""
        if self.speed == 1 and _SLEEP_MS is not None:
            return _SLEEP_MS(ms)
        return asyncio.sleep(ms / 1000 / self.speed)

    def rtc_ms(self):
        """The RTC as epoch ms (1970), whatever the port's epoch."""
        t = self.clock.time()
        if time.gmtime(0)[0] == 2000:
            t += UNIX_2000
        return int(t * 1000)

    # ---- pins -----------------------------------------------------------------
    def read_inputs(self, inputs, tick):
        """Fill the core's inputs dict in place (no allocation)."""
        if self._at_tick is not None:
            self._at_tick(tick)
        for name, pin, inverted in self._inputs:
            v = pin.value()
            inputs[name] = (not v) if inverted else bool(v)
        if self._adc is not None:
            inputs["power"] = self._adc.read_u16()
        elif self._power is not None:
            v = self._power.value()
            inputs["power"] = (not v) if self._power_low else bool(v)
        else:
            inputs["power"] = None

    def drive(self, led, buzzer, relay, pattern):
        """Set the outputs; pins are written only on a change."""
        out = (led, buzzer, relay, pattern)
        if out == self._out:
            return
        self._out = out
        if self._led is not None:
            self._led.value(1 if led else 0)
        if self._pixel is not None:
            self._pixel[0] = COLOURS.get(pattern, (0, 0, 48)) if led else (0, 0, 0)
            self._pixel.write()
        if self._buzzer is not None:
            self._buzzer.value(1 if buzzer else 0)
        if self._relay is not None:
            self._relay.value(self._coil_level(not relay))  # energised only to cut

    def _coil_level(self, energised):
        return (0 if energised else 1) if self._relay_low else (1 if energised else 0)

    # ---- health ---------------------------------------------------------------
    def reset_cause(self):
        if TYPE_CHECKING:
            mach = _machine  # mypy: the injected module as the stubs type it
        else:
            mach = self.machine
        cause = mach.reset_cause()
        for attr, name in RESET_CAUSES:
            if getattr(mach, attr, None) == cause:  # host simulators may lack some causes
                return name
        return "unknown_" + str(cause)

    def wdt_start(self):
        self._wdt = self._WDT(timeout=self.wdt_ms)

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def heap_free(self):
        mem_free = getattr(gc, "mem_free", None)  # MicroPython only; CPython has no fixed heap
        return mem_free() if mem_free is not None else 0

    def mark_app_valid(self):
        """After an OTA update, tell the bootloader this image runs (no-op otherwise)."""
        if TYPE_CHECKING:
            e32 = _esp32  # mypy: the injected module as the stubs type it
        else:
            e32 = self.esp32
        if e32 is not None and hasattr(e32, "Partition"):
            try:
                e32.Partition.mark_app_valid_cancel_rollback()
            except OSError:
                pass  # not booted from an OTA partition

    def reset(self):
        if TYPE_CHECKING:
            mach = _machine
        else:
            mach = self.machine
        mach.reset()

    # ---- Wi-Fi and NTP ----------------------------------------------------------
    def wifi_start(self, ssid, password):
        wlan = self._WLAN(self._STA_IF)
        wlan.active(True)
        wlan.connect(ssid, password)
        self._wlan = wlan

    def wifi_connected(self):
        return self._wlan is not None and self._wlan.isconnected()

    def wifi_stop(self):
        if self._wlan is not None:
            try:
                self._wlan.disconnect()
            except OSError:
                pass

    def ip(self):
        if self._wlan is None:
            return None
        return self._wlan.ifconfig()[0]

    def rssi(self):
        if self._wlan is None or not self._wlan.isconnected():
            return None
        try:
            return int(self._wlan.status("rssi"))
        except (OSError, ValueError, TypeError):
            return None

    def resolve(self, host, port):
        """A UDP server's address. A name blocks in getaddrinfo (lwIP's DNS);
        an address literal does not."""
        if TYPE_CHECKING:
            sock = _socket
        else:
            sock = self.socket
        return sock.getaddrinfo(host, port, 0, sock.SOCK_DGRAM)[0][-1]

    def udp_socket(self):
        """A non-blocking UDP socket (for NTP: polled, never waited on)."""
        if TYPE_CHECKING:
            sock = _socket
        else:
            sock = self.socket
        s = sock.socket(sock.AF_INET, sock.SOCK_DGRAM)
        s.setblocking(False)
        return s

    def udp_recv(self, s):
        """A datagram waiting on `s`, or None when nothing has arrived."""
        try:
            return s.recv(64)
        except OSError as exc:
            if exc.args and exc.args[0] == EAGAIN:
                return None
            raise

    def set_rtc_ms(self, epoch_ms):
        """Set the RTC (epoch ms), so that a soft reset keeps the time."""
        if self._RTC is None:
            self.clock.set_rtc_ms(epoch_ms)
            return
        s = epoch_ms // 1000
        if time.gmtime(0)[0] == 2000:
            s -= UNIX_2000
        tm = time.gmtime(s)
        self._RTC().datetime((tm[0], tm[1], tm[2], tm[6] + 1, tm[3], tm[4], tm[5], (epoch_ms % 1000) * 1000))

    def elapsed(self, since):
        return ticks_diff(self.ticks_ms(), since)
