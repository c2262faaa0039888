"""Option value parsers shared by the commands, so the same kind of value is
accepted (and refused) the same way everywhere. Each raises
argparse.ArgumentTypeError with a one-line reason; argparse turns that into
`seatmon CMD: error: argument --x: reason` and exit status 2."""

from __future__ import annotations

import argparse
import difflib
import re
from datetime import date
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from shared import protocol


def duration(text: str) -> float:
    """'90s', '10m', '1h', '1h30m' or plain seconds -> seconds (> 0)."""
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 10m or 1h, got {text!r}")
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return seconds


def duration_or_zero(text: str) -> float:
    """A duration, or 0 for 'no limit'."""
    if text.strip() in ("0", "0s"):
        return 0.0
    return duration(text)


def whole_number(text: str, at_least: int = 0, meaning: str = "") -> int:
    """An integer of at least `at_least`; `meaning` says what the smallest value means."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < at_least:
        raise argparse.ArgumentTypeError(f"must be {meaning or at_least} or more, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def site_id(text: str) -> str:
    """A site id as the protocol allows it in topics."""
    try:
        protocol.topic(text, "u-0001", protocol.EVENT)
    except protocol.ProtocolError:
        raise argparse.ArgumentTypeError(
            f"expected a site id of 1-{protocol.ID_MAX} characters from A-Z a-z 0-9 - _ . , got {text!r}") from None
    return text


def host_port(text: str) -> tuple[str, int]:
    """'HOST:PORT' (an empty host means 127.0.0.1) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:1883, got {text!r}")
    return host or "127.0.0.1", int(port)


def broker(text: str) -> str:
    """Validated like host_port, kept as text (it is passed on to workers)."""
    host, port = host_port(text)
    return f"{host}:{port}"


def influx_url(text: str) -> str:
    """An InfluxDB URL; 'host:port' without a scheme means http://host:port."""
    url = text.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    try:
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number or out of range
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"expected a URL such as http://127.0.0.1:8086, got {text!r}")
    return url


def iso_date(text: str) -> str:
    """YYYY-MM-DD, checked and passed on as given."""
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
    return text


def month(text: str) -> str:
    """YYYY-MM, checked and passed on as given."""
    if not re.fullmatch(r"\d{4}-\d{2}", text) or not 1 <= int(text[5:]) <= 12:
        raise argparse.ArgumentTypeError(f"expected a month YYYY-MM, got {text!r}")
    return text


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def zone_hint(name: str) -> str:
    """did_you_mean for a misspelt IANA zone name."""
    return did_you_mean(name, available_timezones()) if isinstance(name, str) else ""


def time_zone(text: str) -> str:
    """An IANA zone name (Area/City or UTC), checked and passed on as given."""
    try:
        ZoneInfo(text)
    except (ValueError, ZoneInfoNotFoundError):
        raise argparse.ArgumentTypeError(f"expected a time zone such as Europe/Berlin or UTC, got {text!r}"
                                         + zone_hint(text)) from None
    return text
