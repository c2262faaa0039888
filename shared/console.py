# The boot self-test line a desk unit prints on its serial console, once per
# boot, and that `seatmon flash provision` waits for. Portable MicroPython.
#
#   SEATMON SELFTEST PASS <details>
#   SEATMON SELFTEST FAIL <details>

SELFTEST_PREFIX = "SEATMON SELFTEST "
SELFTEST_PASS = SELFTEST_PREFIX + "PASS"
SELFTEST_FAIL = SELFTEST_PREFIX + "FAIL"


def selftest_line(ok, details=""):
    """The line to print at boot; details are squeezed onto one line."""
    text = " ".join(str(details).split())
    return (SELFTEST_PASS if ok else SELFTEST_FAIL) + (" " + text if text else "")


def parse_selftest(line):
    """(ok, details) for a self-test line, or None for any other line."""
    line = line.strip()
    for mark, ok in ((SELFTEST_PASS, True), (SELFTEST_FAIL, False)):
        if line == mark or line.startswith(mark + " "):
            return ok, line[len(mark):].strip()
    return None
