"""`unionctl`: the operator's command line. Kernel-only: a service's schema, database and broker come from options.

Every option defaults to the environment a service reads (DATABASE_URL, DB_SCHEMA, KAFKA_BOOTSTRAP_SERVERS,
TOPIC_PREFIX). Topics are named without the prefix (`union.membership.v1`); `--topic-prefix` is added.
Kafka credentials come from the environment only, as a service reads them (KAFKA_SECURITY_PROTOCOL,
KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SSL_CAFILE): see docs/kafka-security.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.envelope import Envelope, MalformedMessageError
from shared.events import EventRegistry
from shared.migrations import schema_namespace
from shared.outbox import republish_from
from shared.settings import KafkaSecurity, KernelSettings
from shared.store import EventStore, relay_channel
from unionctl import calendar, ops

app = typer.Typer(name="unionctl", help="Operate the union platform: topics, streams, DLQs, lag, integrity.")
dlq_app = typer.Typer(help="Dead-letter topics: list, inspect and replay what consumers gave up on.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(calendar.app, name="calendar")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_DEFAULTS = KernelSettings()


def _kafka_security() -> KafkaSecurity:
    """How to sign in to Kafka, from the environment as it is when a command runs (KAFKA_SECURITY_PROTOCOL, ...)."""
    return KernelSettings().kafka_security()


_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

DatabaseUrl = Annotated[str, typer.Option("--database-url", envvar="DATABASE_URL", help="PostgreSQL DSN")]
Schema = Annotated[str, typer.Option("--schema", envvar="DB_SCHEMA", help="the service's schema")]
Bootstrap = Annotated[
    str, typer.Option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers")
]
TopicPrefix = Annotated[str, typer.Option("--topic-prefix", envvar="TOPIC_PREFIX", help="prepended to topic names")]
Partition = Annotated[int | None, typer.Option("--partition", "-p", help="the partition, when offsets are ambiguous")]

DLQ_PREFIX = "dlq_"
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _schema(value: str) -> str:
    if not _SCHEMA.match(value):
        raise typer.BadParameter(f"{value!r} is not a lower-case SQL identifier", param_hint="--schema")
    return value


@asynccontextmanager
async def _connect(database_url: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": _schema(schema)})
    try:
        yield conn
    finally:
        await conn.close()


def _text(value: object) -> str:
    return escape("" if value is None else str(value))


# --- topics ---------------------------------------------------------------------------------------------


async def _read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message on `topic` up to its end offsets at the start of the read (no consumer group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **_kafka_security(),
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            raise typer.BadParameter(f"no topic {topic!r} on {bootstrap}")
        # without a group a subscription holds every partition, once the metadata names them (a client's metadata
        # holds only the topics it asked for: Apache Kafka's answer to "all topics" does not fill it)
        consumer.subscribe([topic])
        for _ in range(200):  # 10 s at most
            if consumer.assignment():
                break
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, messages in batch.items():
                records.extend(m for m in messages if m.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return sorted(records, key=lambda m: (m.timestamp, m.partition, m.offset))
    finally:
        await consumer.stop()


def _headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in record.headers}


def _when(record: ConsumerRecord[bytes, bytes]) -> str:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(timespec="milliseconds")


def _print_event(record: ConsumerRecord[bytes, bytes]) -> None:
    key = record.key.decode(errors="replace") if record.key is not None else "-"
    where = f"[dim]{record.partition}:{record.offset}[/dim]"
    try:
        env = Envelope.from_kafka(list(record.headers), record.value)
    except MalformedMessageError as exc:
        out.print(f"{where} [red]not a CloudEvent[/red] ({_text(exc)}) key={_text(key)}")
        out.print(_text((record.value or b"").decode(errors="replace")))
        return
    out.print(
        f"{where} {env.time.isoformat()} [bold]{_text(env.type)}[/bold] "
        f"subject={_text(env.subject)} key={_text(key)} id={env.id}"
    )
    out.print(_text(json.dumps(env.data, ensure_ascii=False, sort_keys=True)))


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="e.g. union.membership.v1")],
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="start at the oldest message")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="with --from-beginning: keep waiting")] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="stop after N messages")] = None,
    bootstrap: Bootstrap = _DEFAULTS.kafka_bootstrap_servers,
    topic_prefix: TopicPrefix = "",
) -> None:
    """Print a topic's events readably: time, type, subject, key, then the data as JSON.

    Without --from-beginning it waits for new messages (Ctrl-C stops); with it, it stops at the end unless -f.
    """
    name = topic_prefix + topic

    async def main() -> None:
        if from_beginning and not follow:
            records = await _read_topic(bootstrap, name)
            for record in records[:limit] if limit else records:
                _print_event(record)
            return
        consumer = AIOKafkaConsumer(
            name,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            **_kafka_security(),
        )
        await consumer.start()
        seen = 0
        try:
            async for record in consumer:
                _print_event(record)
                seen += 1
                if limit and seen >= limit:
                    return
        finally:
            await consumer.stop()

    try:
        _run(main())
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


# --- the event store ------------------------------------------------------------------------------------


@app.command()
def stream(
    stream_id: Annotated[str, typer.Argument(help="e.g. member-<uuid>")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per event")] = False,
    database_url: DatabaseUrl = _DEFAULTS.database_url,
    schema: Schema = _DEFAULTS.db_schema,
) -> None:
    """The events of one stream from the service's `events` table: version, type, time, data."""

    async def main() -> list[asyncpg.Record]:
        async with _connect(database_url, schema) as conn:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT position, version, event_type, schema_version, recorded_at, data, metadata "
                "FROM events WHERE stream_id = $1 ORDER BY version",
                stream_id,
            )
            return rows

    rows = _run(main())
    if not rows:
        err.print(f"no stream {_text(stream_id)} in schema {_text(schema)}")
        raise typer.Exit(1)
    if as_json:
        for r in rows:
            out.print_json(
                json.dumps(
                    {
                        "position": r["position"],
                        "version": r["version"],
                        "type": r["event_type"],
                        "schema_version": r["schema_version"],
                        "time": r["recorded_at"].isoformat(),
                        "data": json.loads(r["data"]),
                        "metadata": json.loads(r["metadata"]),
                    }
                ),
                indent=None,
            )
        return
    table = Table(title=f"{stream_id} ({schema})")
    for column in ("version", "type", "time", "position", "data"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["version"]),
            f"{r['event_type']} v{r['schema_version']}",
            r["recorded_at"].isoformat(timespec="seconds"),
            str(r["position"]),
            _text(json.dumps(json.loads(r["data"]), ensure_ascii=False, sort_keys=True)),
        )
    out.print(table)


@app.command()
def audit(
    target: Annotated[str | None, typer.Option(help="e.g. member:<uuid>, organization:<uuid>")] = None,
    actor: Annotated[str | None, typer.Option(help="e.g. staff:clerk-7 (role:subject from the token)")] = None,
    refused: Annotated[bool, typer.Option("--refused", help="only refusals")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    database_url: DatabaseUrl = _DEFAULTS.database_url,
    schema: Schema = _DEFAULTS.db_schema,
) -> None:
    """Who read a person's data and who was refused, newest first (the service's `audit_log`)."""

    async def main() -> list[asyncpg.Record]:
        async with _connect(database_url, schema) as conn:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT at, actor, action, target, outcome FROM audit_log "
                "WHERE ($1::text IS NULL OR target = $1) AND ($2::text IS NULL OR actor = $2) "
                "AND (NOT $3 OR outcome LIKE 'refused:%') ORDER BY audit_id DESC LIMIT $4",
                target,
                actor,
                refused,
                limit,
            )
            return rows

    rows = _run(main())
    table = Table(title=f"audit log ({schema}): {len(rows)} rows")
    for column in ("time", "actor", "action", "target", "outcome"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r["at"].isoformat(timespec="seconds"), *(_text(r[k]) for k in ("actor", "action", "target", "outcome"))
        )
    out.print(table)


@app.command()
def verify(
    database_url: DatabaseUrl = _DEFAULTS.database_url,
    schema: Schema = _DEFAULTS.db_schema,
    after_stream: Annotated[
        str, typer.Option(help="resume: start after this stream (the last one a stopped run said it checked)")
    ] = "",
) -> None:
    """Recompute every stream's hash chain in the schema: OK, or each broken link and exit code 1. Says every 10 s
    how far it got (the last stream wholly checked), so a stopped run resumes with --after-stream."""
    said = [time.monotonic()]

    def progress(stream_id: str, checked: int) -> None:
        if time.monotonic() - said[0] >= 10:
            said[0] = time.monotonic()
            err.print(f"checked {checked} events, through stream {_text(stream_id)}")

    async def main() -> tuple[int, list[str]]:
        pool = await asyncpg.create_pool(
            database_url, min_size=1, max_size=1, server_settings={"search_path": _schema(schema)}
        )
        try:
            store = EventStore(pool, EventRegistry("unionctl"), schema=schema, topic="")  # verify decodes nothing
            problems = await store.verify(after_stream, progress)
            count = int(await pool.fetchval("SELECT count(*) FROM events WHERE stream_id > $1", after_stream))
        finally:
            await pool.close()
        return count, problems

    count, problems = _run(main())
    checked = f"{count} events" + (f" after stream {_text(after_stream)}" if after_stream else "")
    if problems:
        for problem in problems:
            err.print(f"[red]TAMPERED[/red] {_text(problem)}")
        err.print(f"{len(problems)} problem(s) in {checked} of schema {_text(schema)}")
        raise typer.Exit(1)
    out.print(f"OK: {checked} in schema {_text(schema)}, every hash chain intact")


async def _service_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'relay_state' "
        "AND table_schema IN (SELECT table_schema FROM information_schema.tables WHERE table_name = 'events') "
        "ORDER BY table_schema"
    )
    return [r["table_schema"] for r in rows]


@app.command()
def lag(
    schema: Annotated[
        list[str] | None, typer.Option("--schema", envvar="DB_SCHEMA", help="repeatable; default: every service")
    ] = None,
    database_url: DatabaseUrl = _DEFAULTS.database_url,
) -> None:
    """Per service schema: the relay's backlog (events not yet on the broker), the inbox, projection checkpoints."""

    async def main() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database_url)
        try:
            schemas = [_schema(s) for s in schema] if schema else await _service_schemas(conn)
            report = []
            for name in schemas:
                await conn.execute(f'SET search_path TO "{name}"')
                head = await conn.fetchval("SELECT safe_position($1)", schema_namespace(name))
                backlog = await conn.fetchrow(
                    "SELECT count(*) AS n, min(recorded_at) AS since FROM events"
                    " WHERE position > (SELECT position FROM relay_state)"
                )
                inbox = await conn.fetchrow(
                    "SELECT count(*) AS n, max(position) AS last, max(received_at) AS at FROM inbox"
                )
                checkpoints = await conn.fetch("SELECT name, position, updated_at FROM checkpoints ORDER BY name")
                report.append(
                    {"schema": name, "head": head, "outbox": backlog, "inbox": inbox, "checkpoints": checkpoints}
                )
            return report
        finally:
            await conn.close()

    report = _run(main())
    if not report:
        err.print("no service schemas found (tables events and relay_state)")
        raise typer.Exit(1)
    table = Table(title="lag")
    for column in ("schema", "head", "relay backlog", "oldest unpublished", "inbox", "last consumed"):
        table.add_column(column)
    for r in report:
        since = r["outbox"]["since"]
        table.add_row(
            r["schema"],
            str(r["head"]),
            str(r["outbox"]["n"]),
            since.isoformat(timespec="seconds") if since else "-",
            f"{r['inbox']['n']} (position {r['inbox']['last'] or '-'})",
            r["inbox"]["at"].isoformat(timespec="seconds") if r["inbox"]["at"] else "-",
        )
    out.print(table)
    checkpoints = Table(title="projection checkpoints (position of the last rebuild; projections run inline)")
    for column in ("schema", "projection", "checkpoint", "head", "since rebuild", "rebuilt at"):
        checkpoints.add_column(column)
    for r in report:
        for c in r["checkpoints"]:
            checkpoints.add_row(
                r["schema"],
                c["name"],
                str(c["position"]),
                str(r["head"]),
                str(max(0, r["head"] - c["position"])),
                c["updated_at"].isoformat(timespec="seconds"),
            )
    out.print(checkpoints)
    out.print(
        "[dim]consumer-group lag is not reported: Tansu does not serve group offsets; "
        "watch the DLQ topics (`unionctl dlq list`) and the inbox instead[/dim]"
    )


@app.command()
def republish(
    service: Annotated[str, typer.Argument(help="the service whose log goes to its topic again (its schema's name)")],
    from_position: Annotated[int, typer.Option("--from-position", min=1, help="the first log position to send")] = 1,
    reason: Annotated[str, typer.Option("--reason", help="why, for the relay's log")] = "asked by an operator",
    database_url: DatabaseUrl = _DEFAULTS.database_url,
    schema: Annotated[str | None, typer.Option("--schema", help="the service's schema (default: SERVICE)")] = None,
) -> None:
    """Publish a service's own events again from a log position (a regional system asking for a replay, a topic
    restored from nothing). The running relay sends them; consumers dedupe by event id, so repeats do no harm."""
    name = _schema(schema or service)

    async def main() -> int:
        async with _connect(database_url, name) as conn, conn.transaction():
            events = await republish_from(conn, from_position, reason, forget_offsets=False)
            await conn.execute("SELECT pg_notify($1, '')", relay_channel(name))  # wakes the relay after the commit
            return events

    events = _run(main())
    out.print(f"{name}: {events} events from position {from_position} will be published again")


app.command()(ops.projections)
app.command()(ops.rebuild)


def _dlq_name(topic: str, prefix: str) -> str:
    name = prefix + topic
    return name if name.endswith(".dlq") else f"{name}.dlq"


def _select(
    records: list[ConsumerRecord[bytes, bytes]], offset: int | None, partition: int | None
) -> list[ConsumerRecord[bytes, bytes]]:
    chosen = [
        r for r in records if (offset is None or r.offset == offset) and (partition is None or r.partition == partition)
    ]
    if offset is not None and not chosen:
        where = f" in partition {partition}" if partition is not None else ""
        err.print(f"no dead letter at offset {offset}{where}")
        raise typer.Exit(1)
    if offset is not None and len(chosen) > 1:
        where = ", ".join(str(r.partition) for r in chosen)
        err.print(f"offset {offset} exists in partitions {where}: choose one with --partition")
        raise typer.Exit(2)
    return chosen


@dlq_app.command("list")
def dlq_list(
    topic: Annotated[str, typer.Argument(help="the source topic, e.g. union.membership.v1 (or its .dlq)")],
    bootstrap: Bootstrap = _DEFAULTS.kafka_bootstrap_servers,
    topic_prefix: TopicPrefix = "",
) -> None:
    """The dead letters of a topic: partition:offset, key, error, original topic, attempts, time."""
    name = _dlq_name(topic, topic_prefix)
    records = _run(_read_topic(bootstrap, name))
    table = Table(title=f"{name}: {len(records)} dead letter(s)")
    for column in ("partition:offset", "key", "dlq_error", "dlq_topic", "attempts", "failed at"):
        table.add_column(column, overflow="fold")
    for r in records:
        h = _headers(r)
        table.add_row(
            f"{r.partition}:{r.offset}",
            _text(r.key.decode(errors="replace") if r.key is not None else "-"),
            _text(h.get("dlq_error")),
            _text(h.get("dlq_topic")),
            _text(h.get("dlq_attempts")),
            _text(h.get("dlq_failed_at") or _when(r)),
        )
    out.print(table)


@dlq_app.command("inspect")
def dlq_inspect(
    topic: Annotated[str, typer.Argument(help="the source topic (or its .dlq)")],
    offset: Annotated[int, typer.Argument(help="the dead letter's offset (see `dlq list`)")],
    partition: Partition = None,
    bootstrap: Bootstrap = _DEFAULTS.kafka_bootstrap_servers,
    topic_prefix: TopicPrefix = "",
) -> None:
    """One dead letter in full: every header and the value."""
    name = _dlq_name(topic, topic_prefix)
    (record,) = _select(_run(_read_topic(bootstrap, name)), offset, partition)
    table = Table(title=f"{name} {record.partition}:{record.offset}", show_header=False)
    table.add_column("header", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("key", _text(record.key.decode(errors="replace") if record.key is not None else None))
    table.add_row("timestamp", _when(record))
    for k, v in record.headers:
        table.add_row(_text(k), _text(v.decode(errors="replace")))
    out.print(table)
    raw = (record.value or b"").decode(errors="replace")
    try:
        out.print_json(raw)
    except json.JSONDecodeError:
        out.print(_text(raw))


@dlq_app.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="the source topic (or its .dlq)")],
    offset: Annotated[int | None, typer.Option("--offset", help="replay only this dead letter")] = None,
    partition: Partition = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be replayed")] = False,
    bootstrap: Bootstrap = _DEFAULTS.kafka_bootstrap_servers,
    topic_prefix: TopicPrefix = "",
) -> None:
    """Re-produce dead letters to their original topic (`dlq_topic`) with the original key and headers.

    Fix the cause first. Consumers dedupe by CloudEvents id in their inbox, so replaying a message that
    was applied meanwhile (or replaying twice) has no second effect.
    """
    name = _dlq_name(topic, topic_prefix)

    async def main() -> int:
        chosen = _select(await _read_topic(bootstrap, name), offset, partition)
        producer = None if dry_run else AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **_kafka_security())
        if producer is not None:
            await producer.start()
        try:
            for r in chosen:
                h = _headers(r)
                target = h.get("dlq_topic") or name.removesuffix(".dlq")
                headers = [(k, v) for k, v in r.headers if not k.startswith(DLQ_PREFIX)]
                out.print(f"{r.partition}:{r.offset} -> {_text(target)} ce_id={_text(h.get('ce_id'))}")
                if producer is not None:
                    await producer.send_and_wait(target, r.value, key=r.key, headers=headers)
        finally:
            if producer is not None:
                await producer.stop()
        return len(chosen)

    count = _run(main())
    out.print(f"{'would replay' if dry_run else 'replayed'} {count} message(s) from {name}")


if __name__ == "__main__":
    app()
