"""The board's MQTT subscription: read-only, its own client id, reconnecting
by itself. Decodes each message with the shared protocol and hands it to a
sink; a bad message is counted and dropped, never fatal.
"""

from __future__ import annotations

import logging
import ssl
import time

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from shared import protocol

log = logging.getLogger("seatmon.board")

# channel -> QoS we ask for: events must not be missed, the rest is refreshed anyway
CHANNEL_QOS = {protocol.LIVE: 0, protocol.STATUS: 1, protocol.HEARTBEAT: 0, protocol.EVENT: 1}


class LiveFeed:
    """`sink.message(site, unit, channel, msg, retained)` for every valid
    message; `sink.connection(connected)` when the broker comes and goes."""

    def __init__(self, cfg, sink):
        self.cfg = cfg
        self.sink = sink
        self.bad = 0
        self.client_id = cfg.client_id
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        if cfg.mqtt_username:
            c.username_pw_set(cfg.mqtt_username, cfg.mqtt_password)
        if cfg.mqtt_tls_ca:
            c.tls_set(ca_certs=cfg.mqtt_tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        c.reconnect_delay_set(min_delay=1, max_delay=5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c
        self._stopping = False
        self.down_since: float | None = time.monotonic()  # until the first CONNACK
        self.refused = ""  # the broker's reason, when it refused us

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        # A persistent session: events published while we reconnect are queued for us.
        props.SessionExpiryInterval = self.cfg.mqtt_session_expiry
        self.client.connect_async(self.cfg.mqtt_host, self.cfg.mqtt_port, keepalive=self.cfg.mqtt_keepalive,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("broker refused the board: %s", reason_code)
            self.refused = str(reason_code)
            return
        self.down_since = None
        self.refused = ""
        prefix = self.cfg.mqtt_prefix
        client.subscribe([(protocol.subscription(ch, prefix), qos) for ch, qos in CHANNEL_QOS.items()])
        log.info("connected to %s:%s", self.cfg.mqtt_host, self.cfg.mqtt_port)
        self.sink.connection(True)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:  # e.g. an ACL that does not let this account read a channel
            log.error("broker refused %d of the board's subscriptions: %s", len(refused), ", ".join(refused))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if not self._stopping:
            log.warning("lost the broker (%s); reconnecting", reason_code)
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.sink.connection(False)

    def _on_message(self, client, userdata, m):
        try:
            site, unit, channel = protocol.parse_topic(m.topic, self.cfg.mqtt_prefix)
            msg = protocol.decode(channel, m.payload)
            protocol.check_topic_matches(site, unit, msg)
        except protocol.ProtocolError as exc:
            self.bad += 1
            if self.bad <= 10 or self.bad % 1000 == 0:
                log.warning("ignored a bad message on %s (%d so far): %s", m.topic, self.bad, exc)
            return
        try:
            self.sink.message(site, unit, channel, msg, bool(m.retain))
        except Exception:  # the board must outlive any one message
            self.bad += 1
            log.exception("could not apply a message on %s", m.topic)
