# Test cases that run unchanged under CPython (through pytest) and under a real
# MicroPython runtime (through tools.micropython.run_cases). Each test_* function
# asserts what it checks and returns a JSON-able observation, so the two
# runtimes can be compared result for result.
