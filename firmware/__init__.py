# Desk-unit firmware (MicroPython; also runs unmodified in CPython as a virtual unit).
