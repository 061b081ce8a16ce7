"""The platform's published language: what each producing service's public events mean to the services that consume
them, written once. A consuming service reads another service's events through this package, never through the
producer's own modules; the producer's events are checked against it (tests/unit/test_published.py)."""
