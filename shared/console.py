# The one line a desk unit prints on its console at boot (main.py), which the
# provisioning tool reads back over serial to accept or reject a flashed unit.

SELFTEST_PASS = "SEATMON SELFTEST PASS"
SELFTEST_FAIL = "SEATMON SELFTEST FAIL"


def selftest_line(ok, details):
    return (SELFTEST_PASS if ok else SELFTEST_FAIL) + " " + details
