# /boot.py on the desk unit: make /lib importable as the package root
# (provisioning copies firmware/ and shared/ to /lib/firmware and /lib/shared).
import sys

if "/lib" not in sys.path:
    sys.path.append("/lib")
