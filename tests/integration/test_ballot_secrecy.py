"""Issue 20: an attacker holding every byte the feedback service wrote, but not the campaign's key, ties no ballot
to its voter.

The attacker is the database's superuser after the campaign: `pageinspect` on every page of every relation of the
service's schema (dead row versions included, since nobody ran VACUUM), `pg_waldump` and the raw bytes of the WAL
written while voting went on, the service's topic, and its logs at DEBUG. The attack of the issue, subtracting
successive versions of the row every ballot rewrote and naming the voter by the `voted` row of the same transaction,
is run first against the design it broke (all six ballots recovered), then against the service.
"""

from __future__ import annotations

import base64
import logging
import random
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack.postgres import _bin_dir
from services.feedback import sealing
from services.feedback.service import FeedbackSettings
from shared.envelope import Envelope
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest
from tests.integration.test_feedback import campaign_body, directory_knows, open_campaign, vote
from tests.support.kafka import produce, read_topic

ISSUE_SCORES = [1, 2, 3, 4, 5, 3]  # the six members of the issue
VOTERS = 100  # enough that "no better than chance" means something
LOCK_ONLY = 0x0080  # HEAP_XMAX_LOCK_ONLY: the row was locked (FOR SHARE), not replaced or deleted
XMAX_IS_MULTI = 0x1000


@dataclass(frozen=True)
class HeapTuple:
    """One row version on a heap page, live or dead, as pageinspect shows it."""

    relation: str
    xmin: int
    xmax: int
    infomask: int
    attrs: tuple[bytes | None, ...]

    @property
    def replaced_by(self) -> int | None:
        """The transaction that updated or deleted this version (not one that only locked it)."""
        if self.xmax == 0 or self.infomask & (LOCK_ONLY | XMAX_IS_MULTI):
            return None
        return self.xmax


async def relations(conn: asyncpg.Connection, schema: str, kinds: str) -> list[tuple[str, int, int]]:
    """(qualified name, filenode, pages) of the schema's relations of these kinds, and of their TOAST tables."""
    rows = await conn.fetch(
        """
        WITH own AS (
            SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1
        ), every AS (
            SELECT oid FROM own UNION SELECT reltoastrelid FROM own WHERE reltoastrelid <> 0
            UNION SELECT i.indexrelid FROM pg_index i JOIN own ON i.indrelid = own.reltoastrelid
        )
        SELECT c.oid::regclass::text AS name, pg_relation_filenode(c.oid) AS filenode,
               pg_relation_size(c.oid) / current_setting('block_size')::int AS pages
        FROM every JOIN pg_class c USING (oid) WHERE c.relkind::text = ANY($2::text[])
        """,
        schema,
        list(kinds),
    )
    return [(r["name"], r["filenode"], r["pages"]) for r in rows]


async def read_heap(conn: asyncpg.Connection, schema: str) -> list[HeapTuple]:
    """Every row version on every heap page of the schema, dead ones included."""
    tuples = []
    for name, _, pages in await relations(conn, schema, "rt"):
        rows = await conn.fetch(
            "SELECT t_xmin::text::bigint AS xmin, t_xmax::text::bigint AS xmax, t_infomask, t_attrs "
            "FROM generate_series(0, $2::int - 1) AS block, "
            "LATERAL public.heap_page_item_attrs(public.get_raw_page($1, block), $1::regclass) WHERE lp_flags = 1",
            name,
            pages,
        )
        short = name.rsplit(".", 1)[-1]
        tuples += [
            HeapTuple(
                short,
                r["xmin"],
                r["xmax"],
                r["t_infomask"],
                tuple(None if a is None else bytes(a) for a in r["t_attrs"]),
            )
            for r in rows
        ]
    return tuples


async def raw_pages(conn: asyncpg.Connection, schema: str) -> bytes:
    """The bytes of every page of every relation of the schema: tables, TOAST, indexes."""
    pages = [
        bytes(await conn.fetchval("SELECT public.get_raw_page($1, $2)", name, block))
        for name, _, count in await relations(conn, schema, "rti")
        for block in range(count)
    ]
    return b"".join(pages)


# --- the WAL -----------------------------------------------------------------------------------------------

WAL_LINE = re.compile(r"rmgr: (\S+)\s+len \(rec/tot\):\s+(\d+)/\s*\d+, tx:\s+(\d+), lsn: \S+, prev \S+, desc: (\S+)")
BLOCK_REF = re.compile(r"rel \d+/\d+/(\d+)")


@dataclass(frozen=True)
class WalRecord:
    rmgr: str
    length: int
    xid: int
    kind: str
    filenodes: tuple[int, ...]


async def wal_position(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))


async def flushed(conn: asyncpg.Connection, lsn: str) -> None:
    """The tests' server commits asynchronously: wait until the WAL up to `lsn` is on disk for pg_waldump."""
    for _ in range(100):
        if await conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn", lsn):
            return
        await conn.execute("SELECT pg_sleep(0.05)")
    pytest.fail(f"the WAL up to {lsn} was not flushed")


def waldump(data_dir: Path, start: str, end: str) -> list[WalRecord]:
    out = subprocess.run(
        [str(_bin_dir() / "pg_waldump"), "-p", str(data_dir / "pg_wal"), "-s", start, "-e", end],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    records = []
    for line in out.splitlines():
        if m := WAL_LINE.match(line):
            nodes = tuple(int(n) for n in BLOCK_REF.findall(line))
            records.append(WalRecord(m[1], int(m[2]), int(m[3]), m[4], nodes))
    return records


async def raw_wal(conn: asyncpg.Connection, data_dir: Path, start: str, end: str) -> bytes:
    """The bytes of the WAL from `start` to `end`, straight from the segment files."""
    first = await conn.fetchrow("SELECT * FROM pg_walfile_name_offset($1::text::pg_lsn)", start)
    last = await conn.fetchrow("SELECT * FROM pg_walfile_name_offset($1::text::pg_lsn)", end)
    names = sorted(p.name for p in (data_dir / "pg_wal").iterdir() if first["file_name"] <= p.name <= last["file_name"])
    chunks = []
    for name in names:
        data = (data_dir / "pg_wal" / name).read_bytes()
        lo = first["file_offset"] if name == first["file_name"] else 0
        hi = last["file_offset"] if name == last["file_name"] else len(data)
        chunks.append(data[lo:hi])
    return b"".join(chunks)


# --- the attacks -------------------------------------------------------------------------------------------


def voters_by_transaction(heap: list[HeapTuple]) -> dict[int, str]:
    """`voted.xmin` names the voter of every transaction that cast a ballot."""
    return {t.xmin: str(uuid.UUID(bytes=t.attrs[1])) for t in heap if t.relation == "voted" and t.attrs[1]}


def scores_from_row_versions(heap: list[HeapTuple]) -> dict[str, int]:
    """The issue's attack: in each row version a ballot's transaction replaced, the counter that grew by one."""
    found = {}
    for xid, voter in voters_by_transaction(heap).items():
        for old in (t for t in heap if t.replaced_by == xid):
            for new in (t for t in heap if t.relation == old.relation and t.xmin == xid):
                counters = [
                    (int.from_bytes(a, "little", signed=True), int.from_bytes(b, "little", signed=True))
                    for a, b in zip(old.attrs, new.attrs, strict=True)
                    if a is not None and b is not None and len(a) == len(b) == 4
                ]
                grew = [slot for slot, (before, after) in enumerate(counters, 1) if after == before + 1]
                if len(grew) == 1:
                    found[voter] = grew[0]
    return found


def sealed_by_voter(heap: list[HeapTuple]) -> dict[str, HeapTuple]:
    """The xmin pairing still works: it pairs each voter with a ciphertext."""
    voters = voters_by_transaction(heap)
    return {voters[t.xmin]: t for t in heap if t.relation == "sealed_ballots" and t.xmin in voters}


def points(row: HeapTuple) -> list[bytes]:
    score = row.attrs[1]
    assert score is not None
    body = score[4:]  # a 4-byte varlena header, then R and C_1..C_5
    return [body[i : i + sealing.POINT] for i in range(0, len(body), sealing.POINT)]


GUESSES: dict[str, Callable[[list[bytes]], int]] = {
    "the smallest C_i": lambda p: 1 + min(range(5), key=lambda i: p[1 + i]),
    "the largest C_i": lambda p: 1 + max(range(5), key=lambda i: p[1 + i]),
    "R's first byte": lambda p: 1 + p[0][1] % 5,
    "C_i with an even y": lambda p: 1 + next((i for i in range(5) if p[1 + i][-1] % 2 == 0), 0),
}


def opened_with(keys: sealing.CampaignKeys, row: HeapTuple) -> int:
    """What the holder of the campaign's key learns from one ballot's row: its score."""
    one = sealing.SealedSum()
    one.add([b"".join(points(row))])
    return 1 + one.open(keys, 1).index(1)


def secrets_of(settings: FeedbackSettings, campaign_id: str) -> list[bytes]:
    """The master key and the campaign's private keys, in every spelling a leak could take."""
    master = settings.ballot_master_key.get_secret_value()
    keys = sealing.CampaignKeys.derive(base64.b64decode(master), uuid.UUID(campaign_id))
    raw = [base64.b64decode(master), *(x.to_bytes(32, "big") for x in keys.score_secrets), bytes(keys.comment_secret)]
    return [master.encode(), *raw, *(r.hex().encode() for r in raw)]


def found_in(data: bytes, needles: Iterable[bytes]) -> list[bytes]:
    return [n for n in needles if n in data]


# --- the design the issue broke, as a control: the same attack recovers every ballot ----------------------------

_OLD_DROP = """
UPDATE ballot_box SET score_1 = score_1 + ($2 = 1)::int, score_2 = score_2 + ($2 = 2)::int,
    score_3 = score_3 + ($2 = 3)::int, score_4 = score_4 + ($2 = 4)::int, score_5 = score_5 + ($2 = 5)::int,
    comments = ARRAY(SELECT c FROM unnest(comments || $3::text[]) AS c ORDER BY c COLLATE "C")
WHERE campaign_id = $1
"""


async def test_the_issues_attack_recovers_every_ballot_of_a_box_rewritten_per_ballot(stack: Stack, unique: str) -> None:
    schema = f"old_box_{unique}"
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public")
        await conn.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
        await conn.execute(
            "CREATE TABLE voted (campaign_id uuid, voter_id uuid, PRIMARY KEY (campaign_id, voter_id));"
            "CREATE TABLE ballot_box (campaign_id uuid PRIMARY KEY, score_1 int DEFAULT 0, score_2 int DEFAULT 0,"
            " score_3 int DEFAULT 0, score_4 int DEFAULT 0, score_5 int DEFAULT 0, comments text[] DEFAULT '{}',"
            " discarded boolean DEFAULT false)"
        )
        campaign = uuid.uuid4()
        await conn.execute("INSERT INTO ballot_box (campaign_id) VALUES ($1)", campaign)
        ballots = {str(uuid.uuid4()): score for score in ISSUE_SCORES}
        for voter, score in ballots.items():
            async with conn.transaction():
                await conn.execute("INSERT INTO voted VALUES ($1, $2)", campaign, uuid.UUID(voter))
                await conn.execute(_OLD_DROP, campaign, score, [])
        assert scores_from_row_versions(await read_heap(conn, schema)) == ballots
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


# --- the service -------------------------------------------------------------------------------------------


def membership_facts(org_id: str, members: list[str]) -> list[tuple[Any, ...]]:
    """What membership would publish: the organisation and its members, straight onto the topic."""
    now = datetime.now(UTC)
    today = now.date().isoformat()

    def fact(kind: str, key: str, data: dict[str, Any]) -> tuple[Any, ...]:
        return Envelope(
            id=uuid.uuid4(),
            source="/union/membership",
            type=f"union.membership.{kind}.v1",
            time=now,
            partitionkey=key,
            data=data,
        ).to_kafka()

    org = {"org_id": org_id, "name": "张江镇总工会", "type": "township", "parent_id": None, "region_code": "310115"}
    return [fact("OrganizationRegistered", org_id, {**org, "accepts_members": True})] + [
        fact(
            "MemberJoined",
            m,
            {
                "member_id": m,
                "member_no": f"31011525{i:08d}",
                "org_id": org_id,
                "joined_at": today,
                "employment_type": "regular",
                "household_type": "urban",
            },
        )
        for i, m in enumerate(members)
    ]


async def test_a_copy_of_the_database_the_wal_the_topic_and_the_logs_tie_no_voter_to_a_score(
    feedback: ServiceUnderTest,
    feedback_settings: FeedbackSettings,
    stack: Stack,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = feedback_settings.db_schema
    org = str(uuid.uuid4())
    voters = [str(uuid.uuid4()) for _ in range(VOTERS)]
    await produce(stack.bootstrap, f"{topic_prefix}union.membership.v1", membership_facts(org, voters))
    await directory_knows(feedback, dict.fromkeys(voters, "active"), [org])
    campaign_id = await open_campaign(feedback, campaign_body(org))
    rest = [1 + i % 5 for i in range(VOTERS - len(ISSUE_SCORES))]
    random.Random(20).shuffle(rest)
    scores = dict(zip(voters, ISSUE_SCORES + rest, strict=True))
    comments = {v: f"意见{i}-{uuid.uuid4().hex[:12]}" for i, v in enumerate(voters) if i % 3 == 0}

    async with feedback.service.pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public")
        wal_start = await wal_position(conn)
        caplog.set_level(logging.DEBUG)
        caplog.clear()
        for voter, score in scores.items():
            assert await vote(feedback, campaign_id, voter, score, comments.get(voter)) == (201, None)
        wal_end = await wal_position(conn)
        pages_while_open = await raw_pages(conn, schema)
        assert (await feedback.post(f"/campaigns/{campaign_id}/close")).status_code == 200
        logs = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
        heap = await read_heap(conn, schema)  # after the close: the deleted ciphertexts are dead tuples, still there
        await flushed(conn, wal_end)
        wal = waldump(stack.postgres.data_dir, wal_start, wal_end)
        wal_bytes = await raw_wal(conn, stack.postgres.data_dir, wal_start, wal_end)
        filenodes = {node: name.rsplit(".", 1)[-1] for name, node, _ in await relations(conn, schema, "rti")}

    # the published result is right
    results = (await feedback.get(f"/campaigns/{campaign_id}/results")).json()
    assert results["distribution"] == {str(s): Counter(scores.values())[s] for s in range(1, 6)}
    assert results["turnout"] == VOTERS
    assert results["comments"] == sorted(comments.values())

    # 1. the pages: the issue's attack finds nothing to subtract, since no ballot replaced any row version
    ballot_xids = set(voters_by_transaction(heap))
    assert len(ballot_xids) == VOTERS
    assert not [t for t in heap if t.replaced_by in ballot_xids]
    assert scores_from_row_versions(heap) == {}
    # a ballot's transaction left its `voted` row and one sealed row, and nothing else on any page
    written = Counter(t.relation for t in heap if t.xmin in ballot_xids)
    assert written == {"voted": VOTERS, "sealed_ballots": VOTERS}
    # the only other mark of a ballot's transaction is the share lock it took on its campaign's row
    assert {t.relation for t in heap if t.xmax in ballot_xids} <= {"campaigns"}

    # 2. the xmin pairing names each voter's ciphertext; the ciphertexts are all of one size and all different
    paired = sealed_by_voter(heap)
    assert set(paired) == set(voters)
    assert {tuple(len(a or b"") for a in t.attrs) for t in paired.values()} == {
        (16, 4 + sealing.SCORE_BYTES, 4 + sealing.COMMENT_BYTES)
    }
    every_point = [p for t in paired.values() for p in points(t)]
    assert len(set(every_point)) == len(every_point)  # equal scores do not give equal ciphertexts

    # 3. no better than chance: guesses from the ciphertexts do as well as always guessing the commonest score
    chance = max(Counter(scores.values()).values()) / VOTERS
    for strategy, guess in GUESSES.items():
        right = sum(guess(points(row)) == scores[voter] for voter, row in paired.items()) / VOTERS
        assert right <= chance + 0.16, (strategy, right, chance)  # four standard deviations above chance
    # while the same pairing with the campaign's key gets every ballot: the key is all that stands in the way
    keys = sealing.CampaignKeys.derive(
        base64.b64decode(feedback_settings.ballot_master_key.get_secret_value()), uuid.UUID(campaign_id)
    )
    assert {voter: opened_with(keys, row) for voter, row in paired.items()} == scores

    # 4. the WAL of the voting period: each ballot's transaction inserted into the register and the box, and
    # took its share lock; it updated nothing. Its records are the same size whatever the score and the comment.
    # (index splits, hint-bit page images and catalog pruning are housekeeping, and carry no more than the pages)
    ballot_records = [r for r in wal if r.xid in ballot_xids]
    ours = [(filenodes[n], r) for r in ballot_records for n in r.filenodes if n in filenodes]
    assert {name for name, _ in ours} <= {
        "voted",
        "voted_pkey",
        "sealed_ballots",
        "sealed_ballots_campaign",
        "campaigns",
    }
    assert not [r for _, r in ours if r.rmgr.startswith("Heap") and r.kind in {"UPDATE", "HOT_UPDATE", "DELETE"}]
    assert {r.kind for name, r in ours if name == "campaigns"} <= {"LOCK", "FPI_FOR_HINT"}
    inserts = [r for name, r in ours if name == "sealed_ballots" and r.rmgr == "Heap" and r.kind.startswith("INSERT")]
    assert len(inserts) == VOTERS
    assert len({r.length for r in inserts}) == 1
    assert not [r for r in wal if any(filenodes.get(n) == "ballot_box" for n in r.filenodes)]  # nobody rewrote a box

    # 5. no plaintext comment and no key in any page while voting went on, nor in the WAL of the voting period
    secrets = secrets_of(feedback_settings, campaign_id)
    texts = [c.encode() for c in comments.values()]
    for where, data in (("pages", pages_while_open), ("WAL", wal_bytes)):
        assert found_in(data, texts) == [], where
        assert found_in(data, secrets) == [], where
    # after the close, the comments are in one row of the box, sorted, written by the close
    [box] = [t for t in heap if t.relation == "ballot_box" and t.replaced_by is None and t.xmin not in ballot_xids]
    assert all(c in b"".join(a or b"" for a in box.attrs) for c in texts)

    # 6. the logs at DEBUG, through voting and the close: no voter, no comment, no key
    assert sum("/ballots" in r.getMessage() for r in caplog.records) >= VOTERS
    assert not [v for v in voters if v in logs]
    assert not [c for c in comments.values() if c in logs]
    assert found_in(logs.encode(), secrets) == []

    # 7. the topic: the campaign's three facts and the right result; no voter, no comment, no key
    records = await read_topic(stack.bootstrap, f"{topic_prefix}union.feedback.v1", expect=3)
    assert sorted(dict(r.headers)["ce_type"].decode() for r in records) == [
        "union.feedback.CampaignClosed.v1",
        "union.feedback.CampaignOpened.v1",
        "union.feedback.ResultsPublished.v1",
    ]
    topic = b"".join(r.value + b"".join(v for _, v in r.headers) for r in records)
    assert not [v for v in voters if v.encode() in topic]
    assert found_in(topic, texts) == []
    assert found_in(topic, secrets) == []
