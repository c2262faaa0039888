# Technician tools: inventory, flashing, broker and unit configuration, MicroPython runners.
