"""Virtual desk units: the real firmware (core, shell, link) on a PC, many per process, against a real broker."""
