# /boot.py on the desk unit. On a stock MicroPython image the code is .mpy
# files in /lib; on the custom image (docs/hardware.md) it runs from the
# ROMFS image that provisioning deploys to the romfs partition, mounted at
# /rom (the esp32 port puts /rom and /rom/lib on sys.path). Make sure
# /rom/lib comes before /lib, so a module left in /lib by an older
# deployment never shadows the image's.
import sys

if "/rom/lib" in sys.path:
    sys.path.remove("/rom/lib")
if "/lib" not in sys.path:
    sys.path.append("/lib")
sys.path.insert(sys.path.index("/lib"), "/rom/lib")

# Over-the-air updates: run the confirmed or trial slot of new code, or roll
# an unconfirmed trial back (firmware/otaboot.py). A failure here leaves the
# provisioned code running.
try:
    from firmware import otaboot
    otaboot.select("/")
    del otaboot
except Exception as exc:
    print("update selector failed, running the provisioned code:", repr(exc))
