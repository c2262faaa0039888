# MQTT 3.1.1 packet codec cases (bytes checked against the OASIS spec's layouts);
# run under CPython and inside MicroPython.

from firmware import mqtt
from tests.portable.check import eq


def _hex(b):
    return "".join(["%02x" % x for x in b])


def test_connect_minimal():
    # 10 | len 14 | 00 04 'MQTT' | 04 | flags=02 (clean) | keepalive 00 3c | 00 02 'u1'
    pkt = mqtt.encode_connect("u1", keepalive=60)
    return eq(_hex(pkt), "100e" + "00044d515454" + "04" + "02" + "003c" + "00027531")


def test_connect_with_will_and_credentials():
    pkt = mqtt.encode_connect("c", keepalive=30, will=("t/s", b"off", 1, True), user="u", password="p")
    # flags: user 0x80 | pass 0x40 | will retain 0x20 | will qos1 0x08 | will 0x04 | clean 0x02 = 0xee
    eq(pkt[9], 0xEE, "connect flags")
    eq(_hex(pkt[12:]), "000163" + "0003742f73" + "00036f6666" + "000175" + "000170")
    return _hex(pkt)


def test_publish_qos0_and_qos1():
    a = mqtt.encode_publish("a/b", b"hi", qos=0)
    eq(_hex(a), "3007" + "0003612f62" + "6869")
    b = mqtt.encode_publish("a/b", b"hi", qos=1, retain=True, pid=258)
    eq(_hex(b), "3309" + "0003612f62" + "0102" + "6869")
    c = mqtt.encode_publish("a/b", b"", qos=1, pid=1, dup=True)
    eq(c[0], 0x3A)
    return [_hex(a), _hex(b), _hex(c)]


def test_remaining_length_varint():
    out = []
    for n, expect in ((0, "00"), (127, "7f"), (128, "8001"), (16383, "ff7f"), (16384, "808001"),
                      (268435455, "ffffff7f")):
        enc = mqtt._varint(n)
        eq(_hex(enc), expect, str(n))
        eq(mqtt.decode_remaining_length(b"\x30" + enc), (n, 1 + len(enc)))
        out.append(_hex(enc))
    eq(mqtt.decode_remaining_length(b"\x30\x80"), None, "incomplete")
    return out


def test_decode_publish_round_trip():
    pkt = mqtt.encode_publish("seatmon/v1/hq/u1/ack", b'{"seq":5}', qos=1, retain=True, pid=7)
    length, start = mqtt.decode_remaining_length(pkt)
    topic, payload, qos, retain, pid = mqtt.decode_publish(pkt[0], pkt[start:start + length])
    eq((topic, payload, qos, retain, pid), ("seatmon/v1/hq/u1/ack", b'{"seq":5}', 1, True, 7))
    return [topic, qos, retain, pid]


def test_subscribe_puback_ping():
    s = mqtt.encode_subscribe(10, [("x/+", 1), ("y", 0)])
    eq(_hex(s), "820c" + "000a" + "0003782f2b01" + "00017900")
    eq(_hex(mqtt.encode_puback(513)), "40020201")
    eq(_hex(mqtt.encode_pingreq()), "c000")
    eq(_hex(mqtt.encode_disconnect()), "e000")
    return _hex(s)
