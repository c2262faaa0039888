"""Per-unit fake board modules for the virtual desk unit: what cannot exist on
a PC (GPIO pins, Wi-Fi radio, the RTC, the NTP servers of the simulated
world) behind the same calls the real `machine`, `network` and `socket`
modules offer, so firmware/board_esp32.py
runs unchanged. Every unit gets its own instances: no shared pin state."""

from __future__ import annotations

import time


class SimClock:
    """The unit's `time`: ticks_ms (wrapping at 2**30, like MicroPython) and an
    RTC, both running `speed` times faster than real time. `true_ms()` is the
    simulated world's exact wall clock (what NTP answers). It starts at the
    real time, or where `epoch` (real epoch s, simulated epoch ms) puts it, so
    that several clocks (and other processes) share one simulated world."""

    def __init__(self, speed: float = 1.0, rtc_error_ms: int = 0, tick0: int = 0,
                 epoch: tuple[float, int] | None = None):
        self.speed = speed
        self._t0 = time.monotonic()
        self._wall0 = time.time() * 1000
        if epoch is not None:
            self._wall0 = world_ms(epoch, speed, self._wall0 / 1000)
        self._tick0 = tick0
        self.rtc_offset_ms = rtc_error_ms  # RTC minus true time

    def virtual_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000 * self.speed

    def ticks_ms(self) -> int:
        return (self._tick0 + int(self.virtual_ms())) & 0x3FFFFFFF

    def true_ms(self) -> int:
        return int(self._wall0 + self.virtual_ms())

    def time(self) -> float:
        return (self.true_ms() + self.rtc_offset_ms) / 1000

    def set_rtc_ms(self, epoch_ms: int) -> None:
        self.rtc_offset_ms = epoch_ms - self.true_ms()


def world_ms(epoch: tuple[float, int], speed: float, real_s: float) -> float:
    """The simulated world's epoch ms at real epoch time `real_s`."""
    return epoch[1] + (real_s - epoch[0]) * 1000 * speed


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    PULL_DOWN = 1

    machine: "Machine"  # set per unit: each Machine has its own Pin class

    def __init__(self, pin_id: int, mode: int = -1, pull: int | None = None, value=None):
        machine = self.machine
        self.id = pin_id
        self.mode = mode
        self.level = 0 if value is None else int(bool(value))
        machine.pins[pin_id] = self

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.IN:
                return self.machine.wires.level(self.machine.pin_names.get(self.id), self.machine.tick)
            return self.level
        self.level = 1 if v else 0
        return None

    def init(self, *args, **kwargs):
        pass


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin: Pin):
        self.pin = pin
        self.attn = None

    def atten(self, attn):
        self.attn = attn

    def read_u16(self) -> int:
        return self.pin.machine.wires.adc(self.pin.machine.tick)


class WDT:
    def __init__(self, machine: "Machine", timeout: int):
        if timeout < 1000:
            raise ValueError("timeout below 1 s")
        self.machine = machine
        self.timeout = timeout
        self.fed = 0
        self.last = machine.clock.ticks_ms()

    def feed(self):
        self.fed += 1
        self.last = self.machine.clock.ticks_ms()

    def starving_ms(self) -> int:
        return (self.machine.clock.ticks_ms() - self.last) & 0x3FFFFFFF


class SimReset(SystemExit):
    """machine.reset() on a virtual unit: its process (or task) ends."""


class Machine:
    """A fake `machine` module for one unit. `wires` answers input levels at a
    tick (the traffic model or a script); `pin_names` maps GPIO -> input name."""

    PWRON_RESET = 1
    HARD_RESET = 2
    WDT_RESET = 3
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5

    def __init__(self, clock: SimClock, wires, pin_names: dict[int, str], reset_cause: int = 1):
        self.clock = clock
        self.wires = wires
        self.pin_names = pin_names
        self.pins: dict[int, Pin] = {}
        self.tick = 0
        self._cause = reset_cause
        self.wdt: WDT | None = None
        self.ADC = ADC
        self.Pin = type("Pin", (Pin,), {"machine": self})  # machine.Pin, private to this unit

    def WDT(self, id=0, timeout=5000):  # noqa: N802
        self.wdt = WDT(self, timeout)
        return self.wdt

    def reset_cause(self) -> int:
        return self._cause

    def unique_id(self) -> bytes:
        return b"\x24\xa1\x60\xc0\xff\xee"

    def reset(self):
        raise SimReset("machine.reset()")

    def sim_at_tick(self, tick: int):
        """The sampler is about to read the pins for the sample at `tick`."""
        self.tick = tick

    def output(self, name_pin: int) -> int:
        return self.pins[name_pin].level


class WLAN:
    def __init__(self, net: "Network"):
        self.net = net
        self._active = False
        self._joined = False

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        return None

    def connect(self, ssid=None, key=None):
        self._joined = self._active and ssid is not None

    def disconnect(self):
        self._joined = False

    def isconnected(self) -> bool:
        return self._active and self._joined and self.net.up

    def ifconfig(self):
        return (self.net.ip, "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def status(self, param=None):
        if param == "rssi":
            return self.net.rssi
        return 1010 if self.isconnected() else 1000


class Network:
    """A fake `network` module: one access point the test can take down."""

    STA_IF = 0
    AP_IF = 1

    def __init__(self, ip: str = "10.0.0.2", rssi: int = -60):
        self.up = True
        self.ip = ip
        self.rssi = rssi
        self._wlan: WLAN | None = None

    def WLAN(self, interface=0):  # noqa: N802
        if self._wlan is None:
            self._wlan = WLAN(self)
        return self._wlan


class NtpNet:
    """A fake `socket` module with UDP only, whose every server answers NTP
    with the simulated world's true time (virtual/ntpserver.py builds the
    answer); while the network is down nothing answers."""

    AF_INET = 2
    SOCK_DGRAM = 2

    def __init__(self, clock: SimClock, net: Network):
        self.clock = clock
        self.net = net
        self.answering = True  # False: the site's NTP servers are unreachable (the rest of the network is not)
        self.asked: list[tuple] = []  # every address a request went to

    def getaddrinfo(self, host, port, af=0, kind=0):
        return [(self.AF_INET, self.SOCK_DGRAM, 0, "", (host, port))]

    def socket(self, af=AF_INET, kind=SOCK_DGRAM):
        return _SimUdp(self)


class _SimUdp:
    def __init__(self, world: NtpNet):
        self.world = world
        self.pending = False

    def setblocking(self, flag):
        pass

    def sendto(self, data, addr):
        self.world.asked.append(addr)
        self.pending = self.world.net.up and self.world.answering

    def recv(self, n):
        from virtual.ntpserver import answer_packet

        if not self.pending:
            raise OSError(11, "EAGAIN")
        self.pending = False
        return answer_packet(self.world.clock.true_ms())

    def close(self):
        pass
