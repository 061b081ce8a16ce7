"""Two replicas of a service: both consume (the group shares the partitions out), exactly one relays (elected), and
when the relay's holder is killed the other relays from where it stopped: nothing lost, nothing applied twice.

Membership and the card service run two processes each on the session's PostgreSQL and broker, the second replica
on its port + 100 (as `make run REPLICAS=2`). Members join through both replicas; half-way the replica that
relays is killed with SIGKILL; the joins go on through the survivor. Then every event of membership's log is on
its topic, every member has exactly one card, and the records the move sent again are counted and shown.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.platform import REPLICA_PORT_STEP, Platform, ServiceProcess
from tests.conftest import Stack
from tests.e2e.test_member_life import org
from tests.support import auth, data
from tests.support.kafka import read_topic
from tests.support.waiting import eventually

SERVICES = ("membership", "servicecard")
JOINS = 40


def _free_pair() -> int:
    """A port free together with the one REPLICA_PORT_STEP above it."""
    while True:
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port + REPLICA_PORT_STEP > 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + REPLICA_PORT_STEP))
                except OSError:
                    continue
            return port


@pytest.fixture(scope="module")
def replicated(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, str]]:
    unique = os.urandom(4).hex()
    prefix = f"r{unique}."
    stack.provision(prefix)
    key = base64.b64encode(os.urandom(32)).decode()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "TOPIC_PREFIX": prefix,
        "DB_SCHEMA_PREFIX": f"r{unique}_",
        "PII_MASTER_KEY": key,
        "BLIND_INDEX_KEY": key,
        "RELAY_POLL_INTERVAL": "0.05",
        "APPLICATION_RATE_PER_ADDRESS": "100000/minute",
    }
    ports = {name: _free_pair() for name in SERVICES}
    logs = Path(tmp_path_factory.mktemp("replicas"))
    running = Platform(
        env, dict.fromkeys(SERVICES, stack.dsn), logs, ports, replicas=2, service_env=stack.service_env
    ).start()
    try:
        yield running, f"r{unique}_"
    finally:
        running.stop()


def roles(process: ServiceProcess) -> dict[str, object]:
    return dict(httpx.get(f"{process.url}/readyz", timeout=5).json())


async def test_replicas_share_the_partitions_one_relays_and_a_killed_relay_moves(
    replicated: tuple[Platform, str], stack: Stack
) -> None:
    platform, schema_prefix = replicated
    members = platform.replicas_of("membership")
    cards = platform.replicas_of("servicecard")
    assert [p.port for p in members] == [members[0].port, members[0].port + REPLICA_PORT_STEP]

    async def settled() -> bool:  # both in the group with partitions, one elected
        seen = [await asyncio.to_thread(roles, p) for p in members + cards]
        return all(r["partitions"] for r in seen) and all(
            [r["relay"] for r in seen[i : i + 2]].count("active") == 1 for i in (0, 2)
        )

    await eventually(settled, "both replicas of each service to hold partitions, and one of each to relay")
    held = [set(roles(p)["partitions"]) for p in cards]  # type: ignore[arg-type]
    assert held[0].isdisjoint(held[1])
    assert len(held[0] | held[1]) == 3  # union.membership.v1's three partitions, shared out
    relaying = next(p for p in members if roles(p)["relay"] == "active")
    standby = next(p for p in members if p is not relaying)

    admin = auth.bearer("admin")
    clients = {p.name: httpx.AsyncClient(base_url=p.url, headers=admin, timeout=30) for p in members}
    try:
        town = await org(clients[relaying.name], "township", await org(clients[relaying.name], "county"))

        async def join(via: ServiceProcess) -> str | None:
            client = clients[via.name]
            try:
                r = await client.post("/applications", json=data.application(town))
                r = await client.post(f"/applications/{r.json()['application_id']}/approve", json={})
            except httpx.TransportError:
                return None  # the replica died under it: whether it was recorded, the log says
            return str(r.json()["member_id"]) if r.status_code == 200 else None

        first = asyncio.gather(*(join(members[i % 2]) for i in range(JOINS // 2)))
        await asyncio.sleep(0.3)  # under load: joins in flight through both replicas
        relaying.process.kill()  # type: ignore[union-attr]  # SIGKILL: no goodbye, the lock goes with the session
        killed_at = time.monotonic()
        relaying.process.wait()  # type: ignore[union-attr]
        await first
        rest = [await join(standby) for _ in range(JOINS // 2)]
        assert all(rest)

        async def took_over() -> bool:
            return roles(standby)["relay"] == "active"

        await eventually(took_over, "the surviving replica to win the relay's election")
        moved_in = time.monotonic() - killed_at
    finally:
        for client in clients.values():
            await client.aclose()

    schema, card_schema = f"{schema_prefix}membership", f"{schema_prefix}servicecard"
    db = await asyncpg.connect(stack.dsn)
    try:

        async def every_member_has_a_card() -> bool:
            joined = await db.fetchval(f"SELECT count(*) FROM \"{schema}\".events WHERE event_type = 'MemberJoined'")
            return bool(await db.fetchval(f'SELECT count(DISTINCT member_id) FROM "{card_schema}".cards') == joined)

        await eventually(every_member_has_a_card, "a card for every member who joined", timeout=60)

        async def flow_caught_up() -> bool:  # /readyz's figures of how far behind the flow is
            seen = [await asyncio.to_thread(roles, p) for p in (standby, *platform.replicas_of("servicecard"))]
            lags = [r["consumer_lag"] for r in seen]
            return seen[0]["relay_behind"] == 0 and all(isinstance(lag, dict) and not any(lag.values()) for lag in lags)

        await eventually(flow_caught_up, "/readyz to say nothing waits for the relay and no consumer lags")
        card_roles = [roles(p) for p in platform.replicas_of("servicecard")]
        assert [r["relay"] for r in card_roles if "relay_behind" in r] == ["active"]  # only the one that relays
        joined = {
            r[0]
            for r in await db.fetch(
                f"SELECT data->>'member_id' FROM \"{schema}\".events WHERE event_type = 'MemberJoined'"
            )
        }
        public = {
            str(r[0])
            for r in await db.fetch(
                f'SELECT event_id FROM "{schema}".events'
                " WHERE event_type NOT IN ('MemberIdentityIndexed', 'MemberIdentityIndexErased')"  # restricted topic
            )
        }
        cards = Counter(str(r[0]) for r in await db.fetch(f'SELECT member_id FROM "{card_schema}".cards'))
        issued = Counter(
            r[0]
            for r in await db.fetch(
                f"SELECT data->>'member_id' FROM \"{card_schema}\".events WHERE event_type = 'CardIssued'"
            )
        )
    finally:
        await db.close()

    assert len(joined) >= JOINS // 2  # what the killed replica was answering may or may not have been recorded
    assert set(cards) == joined
    assert set(cards.values()) == {1}  # nothing applied twice: one card each
    assert set(issued.values()) == {1}
    prefix = platform.processes["membership"].env["TOPIC_PREFIX"]
    records = await read_topic(stack.bootstrap, f"{prefix}union.membership.v1", expect=len(public))
    on_topic = Counter(dict(r.headers)["ce_id"].decode() for r in records)
    assert public - set(on_topic) == set()  # nothing lost
    again = sum(n - 1 for n in on_topic.values())
    print(
        f"\nrelay moved {moved_in:.1f} s after SIGKILL: {len(public)} events, {len(records)} records on the topic,"
        f" {again} sent again by the move"
    )
