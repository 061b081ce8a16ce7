"""Replicas, on the three-node Apache Kafka cluster: membership's approvals over HTTP with 16 clients spread over two
processes of the service, against one (the card service's apply rate with two replicas is the flow part's)."""

from __future__ import annotations

from pathlib import Path

from bench import Row, compared
from bench.brokers import REPLICAS, Brokers, Scope
from bench.membership import approval_rate

APPROVALS = 2000
CLIENTS = 16


async def run(dsn: str, brokers: Brokers, work: Path) -> list[Row]:
    kafka = await brokers.kafka()
    one = await approval_rate(dsn, Scope(kafka, "replicas1"), work, APPROVALS, CLIENTS)
    two = await approval_rate(dsn, Scope(kafka, f"replicas{REPLICAS}"), work, APPROVALS, CLIENTS, REPLICAS)
    ratio = f"×{two.per_s / one.per_s:.2f}; cores used, 1 → {REPLICAS}: {compared(one.cpu, two.cpu)}"
    return [
        (
            kafka.named(f"approvals over HTTP, {CLIENTS} clients, membership {REPLICAS} replicas"),
            f"{two.per_s:,.0f} requests/s, p50 {two.p50:.1f} ms, p99 {two.p99:.1f} ms",
            f"1 replica {one.per_s:,.0f} requests/s, p50 {one.p50:.1f} ms, p99 {one.p99:.1f} ms: {ratio}",
        )
    ]
