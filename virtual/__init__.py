"""Virtual desk hardware: a virtual ESP32 board on the real MicroPython unix port, for tests and the demo."""
