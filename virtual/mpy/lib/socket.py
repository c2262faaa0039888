# The board's `socket`: the unix port's own, except that an NTP server's name
# (any UDP port 123 lookup) resolves to the host's fake NTP server
# (virtual/ntpserver.py), which stands in for the site's servers: a lab has
# no route to pool.ntp.org. Addresses with another port go through unchanged.
import os
import sys

_path = sys.path[:]
sys.path.clear()
import socket as _s  # noqa: E402  (the built-in: nothing on the path can shadow it now)

sys.path.extend(_path)
del _path

for _k in dir(_s):
    if not _k.startswith("__"):
        globals()[_k] = getattr(_s, _k)

_ntp = os.getenv("SEATMON_VB_NTP") or ""


def getaddrinfo(host, port, *args):
    if port == 123 and _ntp:
        host, port = _ntp.rsplit(":", 1)[0], int(_ntp.rsplit(":", 1)[1])
    return _s.getaddrinfo(host, port, *args)
