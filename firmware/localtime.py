# Local time and shifts without a time-zone database: the host computes a table
# of (utc_ms, offset_minutes) rows, one per offset change (tools/tztable.py),
# and the unit looks instants up in it. Pure integer calendar maths.

MS_PER_MIN = 60000
MS_PER_DAY = 86400000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def offset_min(table, utc_ms):
    """UTC offset in minutes at `utc_ms`: the last row whose instant is <= it
    (the first row's offset before the table starts)."""
    lo, hi = 0, len(table)
    while lo < hi:  # binary search: first row with instant > utc_ms
        mid = (lo + hi) // 2
        if table[mid][0] <= utc_ms:
            lo = mid + 1
        else:
            hi = mid
    return table[lo - 1][1] if lo else table[0][1]


def to_local_ms(table, utc_ms):
    return utc_ms + offset_min(table, utc_ms) * MS_PER_MIN


def to_utc_ms(table, local_ms):
    """Local wall time -> UTC. In a DST gap the time is shifted forward; in
    the repeated hour the first occurrence is chosen."""
    guess = local_ms - offset_min(table, local_ms - 720 * MS_PER_MIN) * MS_PER_MIN
    off = offset_min(table, guess)
    utc = local_ms - off * MS_PER_MIN
    if offset_min(table, utc) != off:
        utc = local_ms - offset_min(table, utc) * MS_PER_MIN
    return utc


def civil(days):
    """Days since 1970-01-01 -> (year, month, day) (H. Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y, m, d)


def days_from_civil(y, m, d):
    y = y - 1 if m <= 2 else y
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def date_text(days):
    y, m, d = civil(days)
    return "%04d-%02d-%02d" % (y, m, d)


def weekday(days):
    """0 = Monday (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def shifts_on(conf, days):
    """The shifts of one local date: a dated override, else the weekday's."""
    over = conf["overrides"].get(date_text(days))
    if over is not None:
        return over
    return conf["shifts"].get(WEEKDAYS[weekday(days)], ())


def shift_at(conf, utc_ms):
    """The shift running at `utc_ms` as (label, start_utc_ms, end_utc_ms), or
    None. A shift belongs to the local date it starts on, so a night shift
    22:00-06:00 that started on the 22nd is labelled '<22nd>/night' also
    after midnight."""
    table = conf["tz"]
    local = to_local_ms(table, utc_ms)
    today = local // MS_PER_DAY
    for days in (today, today - 1):
        for name, start, end in shifts_on(conf, days):
            s_local = days * MS_PER_DAY + start * MS_PER_MIN
            e_local = days * MS_PER_DAY + end * MS_PER_MIN
            if end <= start:
                e_local += MS_PER_DAY
            s = to_utc_ms(table, s_local)
            e = to_utc_ms(table, e_local)
            if s <= utc_ms < e:
                return (date_text(days) + "/" + name, s, e)
    return None


def local_text(table, utc_ms):
    """'YYYY-MM-DD HH:MM' local time, for logs and tests."""
    local = to_local_ms(table, utc_ms)
    mins = (local % MS_PER_DAY) // MS_PER_MIN
    return date_text(local // MS_PER_DAY) + " %02d:%02d" % (mins // 60, mins % 60)
