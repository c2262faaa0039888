# Host service: MQTT -> validation -> durable spool -> InfluxDB.
