# Ring cadence profiles as data: (on, off, on, off, ...) in ms, one ring each.
# From the ITU list of ringing tones. A ring may hold several bursts (the UK
# double ring); the last "off" is the gap between rings.

PROFILES = {
    "CN": (1000, 4000),
    "DE": (1000, 4000),
    "EU": (1000, 4000),
    "IT": (1000, 4000),
    "NL": (1000, 4000),
    "CH": (1000, 4000),
    "US": (2000, 4000),
    "UK": (400, 200, 400, 2000),
    "FR": (1500, 3500),
    "ES": (1500, 3000),
    "SE": (1000, 5000),
    "PT": (1000, 5000),
}


def check(cadence):
    """Return None if `cadence` is a usable profile, else what is wrong."""
    if not isinstance(cadence, (list, tuple)) or len(cadence) < 2 or len(cadence) % 2:
        return "expected an even-length list of on/off durations in ms"
    for v in cadence:
        if not isinstance(v, int) or v is True or v is False or v < 50 or v > 60000:
            return "expected durations in ms between 50 and 60000"
    return None


class Profile:
    """What the call logic needs from a cadence."""

    def __init__(self, name, cadence):
        self.name = name
        self.cadence = tuple(cadence)
        offs = [self.cadence[i] for i in range(1, len(self.cadence), 2)]
        # Longest silence inside a ringing call.
        self.max_gap_ms = max(offs)
        inner = offs[:-1]
        # A burst after a gap longer than this starts a new ring; shorter gaps
        # separate the bursts of one (double) ring, or are dropouts.
        if inner:
            self.ring_gap_ms = (max(inner) + offs[-1]) // 2
        else:
            self.ring_gap_ms = offs[-1] // 2
        self.period_ms = sum(self.cadence)


def resolve(name, custom=None):
    """Profile by name: custom profiles from config first, then built-ins."""
    if custom and name in custom:
        return Profile(name, custom[name])
    return Profile(name, PROFILES[name])
