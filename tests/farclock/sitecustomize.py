"""Runs every Python process of a test run at a far-away wall-clock date.

CI's second pass sets SEATMON_TEST_DATE (an ISO date-time) and puts this
folder first on PYTHONPATH, so Python imports this module at start-up in the
test runner and in every Python child it starts (collector, wallboard,
simulator). The first process turns the date into a shift from the real clock
and exports it, so all of them agree on the time to the millisecond.
Monotonic clocks are left alone: durations and timeouts stay real.
"""

import os

_date = os.environ.get("SEATMON_TEST_DATE")
if _date:
    import time
    from datetime import datetime

    import time_machine

    _shift = os.environ.get("SEATMON_TEST_CLOCK_SHIFT_S")
    if _shift is None:
        _shift = str(datetime.fromisoformat(_date).timestamp() - time.time())
        os.environ["SEATMON_TEST_CLOCK_SHIFT_S"] = _shift
    time_machine.travel(time.time() + float(_shift), tick=True).start()
