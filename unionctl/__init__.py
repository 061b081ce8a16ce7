"""The platform's tools, outside the kernel and the services: `unionctl` (operations: topics, streams, dead-letter
topics, lag, integrity, replays, projection rebuilds) and the AsyncAPI contract built from every service's events.

It may import every service (a rebuild runs the service's own projection code); nothing imports it.
"""
