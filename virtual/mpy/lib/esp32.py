# `esp32` of the virtual board: just what the firmware asks of it.


class Partition:
    RUNNING = 1

    def __init__(self, id):
        self.id = id

    @staticmethod
    def mark_app_valid_cancel_rollback():
        raise OSError(-261)  # not booted from an OTA partition, as a plain flash image answers
