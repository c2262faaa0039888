"""Protocol cases under CPython (the same cases run under MicroPython in
test_micropython.py)."""

import pytest

from tests.portable import protocol_cases

CASES = sorted(n for n in dir(protocol_cases) if n.startswith("test_"))


@pytest.mark.parametrize("name", CASES)
def test_protocol_case(name):
    getattr(protocol_cases, name)()


def test_every_example_in_the_protocol_doc_is_valid():
    import json
    import re
    from pathlib import Path

    from shared import protocol as p

    text = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    lines = [ln for block in re.findall(r"```json\n(.*?)```", text, re.S) for ln in block.strip().splitlines()]
    kinds = set()
    for line in lines:
        msg = json.loads(line)
        if "kind" in msg:
            channel = p.EVENT
            kinds.add(msg["kind"])
        elif "state" in msg and "seat" in msg and "pattern" in msg:
            channel = p.LIVE
        elif "state" in msg:
            channel = p.STATUS
        elif "uptime_s" in msg:
            channel = p.HEARTBEAT
        elif "config" in msg:
            channel = p.CONFIG
        elif "image" in msg:
            channel = p.UPDATE_ACK
        else:
            channel = p.ACK
        p.decode(channel, line)
    assert kinds == set(p.EVENT_FIELDS), "one example per event kind"
