"""`seatmon rehearse`: a virtual ESP32 board (virtual/board.py) for a
technician to rehearse provisioning on, without writing code.

`start IMAGE` powers a board on in a background process of its own and
prints its serial port (give it to `seatmon flash provision --port`); the
board's flash is IMAGE (made on first use) and lives on across starts.
`port`, `status` and `stop` find that process again through a small state
file beside the image (IMAGE.board.json); the board's console is copied to
IMAGE.console.log. `status --site FILE --unit ID` also says whether the
unit reached the site's broker (its retained status, read with the
collector's account, over TLS when the site uses it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools import images
from virtual.board import CHIPS, BoardError, UnixBoard, micropython_binary

START_S = 60  # a board's first power-on formats its flash


class RehearseError(RuntimeError):
    """A one-line reason; exit status 1."""


def state_path(image: Path) -> Path:
    return image.with_name(image.name + ".board.json")


def console_path(image: Path) -> Path:
    return image.with_name(image.name + ".console.log")


def running(image: Path) -> dict | None:
    """The state of the board process serving `image`, or None when none runs."""
    try:
        state = json.loads(state_path(image).read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def start(image: Path, chip: str, firmware: str) -> dict:
    already = running(image)
    if already:
        raise RehearseError(f"a board already runs on {image} (port {already['port']}); "
                            f"`seatmon rehearse stop {image}` first")
    micropython_binary()  # says how to install it, before anything starts
    image.parent.mkdir(parents=True, exist_ok=True)
    state_path(image).unlink(missing_ok=True)
    log = console_path(image)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "virtual.rehearse", str(image.resolve()), chip, firmware],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                cwd=Path(__file__).resolve().parent.parent,
                                env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        started = running(image)
        if started:
            return started
        if proc.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines()
            raise RehearseError(f"the board did not start: {lines[-1] if lines else 'no output'} (see {log})")
        time.sleep(0.1)
    proc.kill()
    raise RehearseError(f"the board did not start within {START_S} s (see {log})")


def stop(image: Path, timeout: float = 15) -> bool:
    """Power the board off; False when none was running."""
    state = running(image)
    if state is None:
        state_path(image).unlink(missing_ok=True)
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running(image):
        time.sleep(0.1)
    if running(image):
        os.kill(state["pid"], signal.SIGKILL)
    state_path(image).unlink(missing_ok=True)
    return True


def unit_on_broker(site_path: Path, unit_id: str, wait_s: float) -> str:
    """The unit's retained status on the site's broker, as one line."""
    from shared import protocol
    from tools import broker_config as bc
    from tools import inventory as inv
    from tools import unit_config

    site = inv.load(site_path)
    site.unit(unit_id)
    b = site.data["broker"]
    tls = inv.broker_tls(site)
    creds = json.loads(site.relative(b["credentials"]).read_text())
    port = b.get("port", 8883 if tls else 1883)
    client = unit_config.connect(b["host"], port, bc.COLLECTOR, creds[bc.COLLECTOR],
                                 site.relative(b["ca"]) if tls else None)
    seen: list[dict] = []
    client.on_message = lambda c, ud, m: seen.append(protocol.decode(protocol.STATUS, m.payload))
    client.subscribe(protocol.topic(site.id, unit_id, protocol.STATUS), qos=1)
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline and not (seen and seen[-1]["state"] == "online"):
            time.sleep(0.1)
    finally:
        client.loop_stop()
        client.disconnect()
    where = f"{b['host']}:{port}" + (" (TLS)" if tls else "")
    if not seen:
        return f"{unit_id} has not reached the broker at {where} (no status within {wait_s:.0f} s)"
    st = seen[-1]
    details = ", ".join(f"{k} {st[k]}" for k in ("fw", "boot", "reason") if k in st)
    return f"{unit_id} on the broker at {where}: {st['state']}" + (f" ({details})" if details else "")


# ---- CLI ----------------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="rehearse_action", metavar="ACTION", required=True)
    s = sub.add_parser("start", help="power a virtual board on in the background and print its serial port")
    s.add_argument("image", type=Path, help="the board's flash image, made on first use (e.g. lab/u-0001.img)")
    s.add_argument("--chip", choices=CHIPS, help="the board's chip (default: the --firmware image's, else esp32)")
    s.add_argument("--firmware", choices=sorted(images.IMAGES),
                   help="the MicroPython image the board runs, as a hardware revision's `firmware` names it "
                        "(default: the chip's stock download)")
    p = sub.add_parser("port", help="print the serial port of the board running on IMAGE")
    p.add_argument("image", type=Path)
    st = sub.add_parser("status", help="whether the board runs, its port, the last console line; with --site "
                                       "and --unit, whether the unit reached the site's broker")
    st.add_argument("image", type=Path)
    st.add_argument("--site", type=Path, help="the site file the board was provisioned from")
    st.add_argument("--unit", help="the unit id it was provisioned as")
    st.add_argument("--wait", type=float, default=30, help="seconds to wait for the unit's status (default: 30)")
    o = sub.add_parser("stop", help="power the board off")
    o.add_argument("image", type=Path)


def main(args) -> int:
    command = f"seatmon rehearse {args.rehearse_action}"
    image = args.image
    try:
        if args.rehearse_action == "start":
            chip = args.chip or (images.IMAGES[args.firmware].chip if args.firmware else "esp32")
            firmware = args.firmware or images.default_for(chip)
            state = start(image, chip, firmware)
            print(f"{command}: a virtual {chip} board running {firmware} on {image}, its serial port {state['port']} (console: "
                  f"{console_path(image)}); `seatmon rehearse stop {image}` powers it off", file=sys.stderr)
            print(state["port"])
            return 0
        if args.rehearse_action == "stop":
            print(f"{command}: stopped" if stop(image) else f"{command}: no board was running on {image}")
            return 0
        found = running(image)
        if found is None:
            print(f"{command}: no board runs on {image} (`seatmon rehearse start {image}`)", file=sys.stderr)
            return 1
        state = found
        if args.rehearse_action == "port":
            print(state["port"])
            return 0
        lines = console_path(image).read_text(errors="replace").strip().splitlines()
        print(f"running: a virtual {state['chip']} board ({state.get('firmware', '?')}) on {image}, serial port {state['port']}, pid {state['pid']}")
        print(f"console: {lines[-1].strip() if lines else '-'} ({console_path(image)})")
        if args.site or args.unit:
            if not (args.site and args.unit):
                print(f"{command}: --site and --unit go together", file=sys.stderr)
                return 2
            print(unit_on_broker(args.site, args.unit, args.wait))
        return 0
    except (RehearseError, BoardError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # a bad site file, no broker: one line
        print(f"{command}: {exc}", file=sys.stderr)
        return 1


def _serve(image: Path, chip: str, firmware: str) -> None:
    """The background process: the board, until SIGTERM; its console to the log."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    board = UnixBoard(image, chip=chip, firmware=firmware).start()
    state = {"pid": os.getpid(), "port": board.port, "chip": chip, "firmware": firmware}
    tmp = state_path(image).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, state_path(image))
    copied = 0
    try:
        while not stopping:
            time.sleep(0.2)
            console = bytes(board.console)
            if len(console) > copied:
                sys.stdout.buffer.write(console[copied:])
                sys.stdout.flush()
                copied = len(console)
    finally:
        board.stop()
        state_path(image).unlink(missing_ok=True)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3])
