"""The embedded stack: PostgreSQL and a Kafka-protocol broker from wheels, started under `.run/`."""
