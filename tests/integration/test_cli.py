"""`unionctl`: every verb answers --help; stream, verify, lag read a schema; a replayed dead letter applies once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from uuid import UUID

import asyncpg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from shared.consumer import ConsumerRunner
from shared.messaging import make_consumer
from shared.runtime import Runtime
from shared.settings import KernelSettings
from shared.store import Recorded
from tests.conftest import Stack
from tests.integration.test_consumer import effects, remote_event, wait_for
from tests.integration.test_store import append_one
from tests.support.kafka import produce, read_topic
from unionctl import cli

VERBS = [[], ["tail"], ["stream"], ["lag"], ["verify"], ["rebuild"], ["dlq"], ["dlq", "list"], ["dlq", "inspect"]]
VERBS += [["dlq", "replay"], ["audit"], ["republish"]]


@pytest.fixture(autouse=True)
def wide_console() -> Iterator[None]:
    # rich wraps tables to the terminal; a test has none
    before = cli.out.width, cli.err.width
    cli.out.width = cli.err.width = 300
    yield
    cli.out.width, cli.err.width = before


def unionctl(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.app, list(args), env=env)


async def unionctl_async(*args: str, env: dict[str, str] | None = None) -> Result:
    # the commands run their own event loop: give them a thread
    return await asyncio.to_thread(unionctl, *args, env=env)


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "unionctl")
def test_every_verb_has_help(verb: list[str]) -> None:
    result = unionctl(*verb, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def db(settings: KernelSettings) -> list[str]:
    return ["--database-url", settings.database_url, "--schema", settings.db_schema]


async def test_stream_shows_a_streams_events(kernel: Runtime, kernel_settings: KernelSettings) -> None:
    counter = uuid.uuid4()
    for by in (4, 5):
        await append_one(kernel, counter, by)
    table = await unionctl_async("stream", f"counter-{counter}", *db(kernel_settings))
    assert table.exit_code == 0, table.output
    assert table.output.count("CounterIncremented v2") == 2
    lines = await unionctl_async("stream", f"counter-{counter}", "--json", *db(kernel_settings))
    events = [json.loads(line) for line in lines.output.splitlines()]
    assert [(e["version"], e["type"], e["data"]["by"]) for e in events] == [
        (1, "CounterIncremented", 4),
        (2, "CounterIncremented", 5),
    ]
    missing = await unionctl_async("stream", "counter-nobody", *db(kernel_settings))
    assert missing.exit_code == 1


async def test_verify_passes_then_reports_a_tampered_event(kernel: Runtime, kernel_settings: KernelSettings) -> None:
    counter = uuid.uuid4()
    for by in (1, 2, 3):
        await append_one(kernel, counter, by)
    ok = await unionctl_async("verify", *db(kernel_settings))
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("OK: 3 events")
    async with kernel.pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute(
            "UPDATE events SET data = jsonb_set(data, '{by}', '200') WHERE stream_id = $1 AND version = 2",
            f"counter-{counter}",
        )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    bad = await unionctl_async("verify", *db(kernel_settings))
    assert bad.exit_code == 1
    assert f"counter-{counter}: event 2" in bad.output
    assert "does not match its hash" in bad.output


async def test_lag_reports_the_outbox_backlog(kernel: Runtime, kernel_settings: KernelSettings) -> None:
    await append_one(kernel, uuid.uuid4())  # no relay runs: it waits in the outbox
    result = await unionctl_async("lag", *db(kernel_settings))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if kernel_settings.db_schema in line)
    assert row.split("│")[3].strip() == "1"


async def needs_a_known_counter(conn: asyncpg.Connection, entry: Recorded) -> None:
    """A handler that needs a row another message should have created first."""
    counter = UUID(str(entry.data["counter_id"]))
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM known_counters WHERE counter_id = $1)", counter):
        raise LookupError(f"unknown counter {counter}")
    await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", UUID(str(entry.event_id)))


async def test_a_dead_letter_replayed_after_the_fix_is_applied_once(
    kernel: Runtime, topics: list[str], stack: Stack, kernel_settings: KernelSettings, unique: str
) -> None:
    async with kernel.pool.acquire() as conn:
        await conn.execute("CREATE TABLE known_counters (counter_id uuid PRIMARY KEY)")
    topic = kernel_settings.topic("union.remote.v1")
    await kernel.relay.producer.start()
    consuming = ConsumerRunner(
        kernel.pool,
        kernel.store,
        make_consumer(kernel_settings, f"g{unique}", [topic]),
        kernel.relay.producer,
        {topic: needs_a_known_counter},
        group_id=f"g{unique}",
        max_retries=2,
        retry_delay=0.01,
    )
    task = asyncio.create_task(consuming.run())
    kafka = ["--bootstrap", stack.bootstrap, "--topic-prefix", kernel_settings.topic_prefix]
    counter = uuid.uuid4()
    try:
        key, headers, value = remote_event(counter, by=7)
        event_id = UUID(dict(headers)["ce_id"].decode())
        await produce(stack.bootstrap, topic, [(key, headers, value)])
        await wait_for(lambda: _is(lambda: consuming.dead_lettered, 1))
        assert await effects(kernel) == {}

        listed = await unionctl_async("dlq", "list", "union.remote.v1", *kafka, env=stack.env())
        assert listed.exit_code == 0, listed.output
        assert "1 dead letter(s)" in listed.output
        assert f"LookupError: unknown counter {counter}" in listed.output
        offset = next(line for line in listed.output.splitlines() if "LookupError" in line).split("│")[1]
        partition, at = offset.strip().split(":")
        inspected = await unionctl_async(
            "dlq", "inspect", "union.remote.v1", at, "--partition", partition, *kafka, env=stack.env()
        )
        assert inspected.exit_code == 0, inspected.output
        assert str(event_id) in inspected.output
        assert '"by": 7' in inspected.output

        async with kernel.pool.acquire() as conn:  # the fix: the missing row
            await conn.execute("INSERT INTO known_counters VALUES ($1)", counter)
        replayed = await unionctl_async("dlq", "replay", "union.remote.v1", *kafka, env=stack.env())
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1 message(s)" in replayed.output
        await wait_for(lambda: _is(lambda: consuming.handled, 1))
        assert await effects(kernel) == {event_id: 1}

        again = await unionctl_async(
            "dlq", "replay", "union.remote.v1", "--offset", at, "--partition", partition, *kafka, env=stack.env()
        )
        assert again.exit_code == 0, again.output
        await wait_for(lambda: _is(lambda: consuming.duplicates, 1))
        await asyncio.sleep(0.5)
        assert await effects(kernel) == {event_id: 1}
        assert (consuming.handled, consuming.dead_lettered) == (1, 1)
    finally:
        consuming.request_stop()
        await asyncio.wait_for(task, 15)

    tailed = await unionctl_async("tail", "union.remote.v1", "--from-beginning", *kafka, env=stack.env())
    assert tailed.exit_code == 0, tailed.output
    assert tailed.output.count("union.remote.RemoteCounterIncremented.v1") == 3  # the original and two replays
    on_topic = await read_topic(stack.bootstrap, topic, expect=3)
    assert [sorted(k for k, _ in m.headers if k.startswith("dlq_")) for m in on_topic] == [[], [], []]


async def _is(read, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(read() >= n)


async def test_unionctl_rebuilds_a_services_projection_with_progress(stack: Stack, unique: str) -> None:
    env = {"DATABASE_URL": stack.dsn, "DB_SCHEMA": f"s_{unique}", "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap}
    result = await asyncio.to_thread(CliRunner().invoke, cli.app, ["rebuild", "servicecard", "catalog"], env=env)
    assert result.exit_code == 0, result.output
    assert "rebuilt servicecard.catalog from 0 log entries" in result.output
    unknown = await asyncio.to_thread(CliRunner().invoke, cli.app, ["rebuild", "servicecard", "nope"], env=env)
    assert unknown.exit_code == 2


async def test_republish_sends_a_services_log_again_from_a_position(
    kernel: Runtime, kernel_settings: KernelSettings, topics: list[str], stack: Stack
) -> None:
    counter = uuid.uuid4()
    for by in range(1, 6):
        await append_one(kernel, counter, by)
    relay = asyncio.create_task(kernel.relay.run())
    try:
        first = await read_topic(stack.bootstrap, topics[0], expect=5)
        third = int(dict(first[2].headers)["ce_position"])
        result = await unionctl_async(
            "republish",
            "kerneltest",
            "--schema",
            kernel_settings.db_schema,
            "--from-position",
            str(third),
            "--reason",
            "a regional system asked",
            "--database-url",
            kernel_settings.database_url,
        )
        assert result.exit_code == 0, result.output
        assert "3 events" in result.output
        records = await read_topic(stack.bootstrap, topics[0], expect=8)  # the last three once more
    finally:
        kernel.relay.request_stop()
        await relay
    sequences = sorted(int(dict(r.headers)["ce_sequence"]) for r in records)
    assert sequences == [1, 2, 3, 3, 4, 4, 5, 5]
    logged = await kernel.pool.fetchrow("SELECT action, from_position, events, reason FROM relay_log")
    assert dict(logged) == {
        "action": "republish",
        "from_position": third,
        "events": 3,
        "reason": "a regional system asked",
    }
