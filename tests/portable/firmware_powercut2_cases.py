# Power cut at every byte position of a journal append: the second half of
# the positions, up to and including the whole record (first half and the
# checks: firmware_powercut_cases.py).

from tests.portable import mpgc
from tests.portable.firmware_powercut_cases import check_positions, record_length

mpgc.manual()


def test_power_cut_in_second_half_of_an_append():
    n = record_length()
    return check_positions(n // 2, n + 1)
