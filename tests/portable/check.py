# Assertion helpers that work on MicroPython too (no pytest there).


def raises(exc_type, fn, *args):
    """Call fn(*args), expect exc_type, return str(exception)."""
    try:
        fn(*args)
    except exc_type as exc:
        return str(exc)
    raise AssertionError("expected " + exc_type.__name__ + " from " + repr(args)[:80])


def eq(actual, expected, what=""):
    if actual != expected:
        raise AssertionError((what + ": " if what else "") + "expected " + repr(expected) + ", got " + repr(actual))
    return actual


def contains(text, part):
    if part not in text:
        raise AssertionError("expected " + repr(part) + " in " + repr(text))
    return text
