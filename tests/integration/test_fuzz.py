"""Hostile input: schemathesis against each service's own OpenAPI, with a fixed example budget per operation.

Every operation gets positive cases (valid by the schema) and, where it takes input, negative ones (invalid
by the schema), some with ids that exist so that not everything is 404. No answer may be a 5xx, and every
declared response must match its schema and content type. The figures go to the terminal summary.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.settings import KernelSettings
from shared.validators import CREDIT_CODE_ALPHABET, credit_code_check_char, identity_number_check_char
from tests.integration.conftest import ServiceUnderTest, secret, serve_in_process
from tests.integration.test_membership import join, make_org
from tests.support import auth, data
from tests.support.fuzz import FuzzReport, count_operations, fuzz
from tests.support.waiting import eventually

# examples per operation and generation mode (positive; negative where the operation takes input)
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
# the stateful phase: scenarios per service, each up to this many calls that follow the links
SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "40"))
SCENARIO_STEPS = int(os.environ.get("FUZZ_SCENARIO_STEPS", "6"))

Seeded = tuple[ServiceUnderTest, dict[str, Any]]


def created(r: httpx.Response, key: str) -> str:
    assert r.status_code in {200, 201, 202}, r.text
    return str(r.json()[key])


def settings_like(membership_settings: Any, cls: type[KernelSettings], db_schema: str, **extra: Any) -> Any:
    """Another service's settings on the same database, broker, topics and token issuer as membership's."""
    shared = {name: getattr(membership_settings, name) for name in KernelSettings.model_fields}
    return cls(**{**shared, "db_schema": db_schema, "run_consumers": True, **extra})


# --- one seeded service per test: ids that exist and values that pass the rules behind the schema ---------


_fresh = random.Random(20240601)  # deterministic: the same run twice sends the same values


def _identity_number() -> str:
    """A valid identity number not given before in this run (a new applicant, so a new member)."""
    serial = next(_serials)
    first17 = f"310115{date(1980, 1, 1) + timedelta(days=serial // 1000):%Y%m%d}{serial % 1000:03d}"
    return first17 + identity_number_check_char(first17)


_serials = itertools.count(_fresh.randrange(10_000_000))


def _credit_code() -> str:
    first17 = "91310115" + "".join(_fresh.choices(CREDIT_CODE_ALPHABET, k=9))
    return first17 + credit_code_check_char(first17)


# values that pass membership's rules behind its schema, so that the rest of a hostile body reaches the database
VALID_FIELDS: dict[str, object] = {
    "region_code": "310115",
    "id_number": _identity_number,
    "phone": "13912345678",
    "credit_code": _credit_code,
    "employer_credit_code": _credit_code,
}


async def membership_world(m: ServiceUnderTest, members: int = 1) -> dict[str, Any]:
    county = await make_org(m, "county")
    township = await make_org(m, "township", county)
    member = await join(m, township)
    for _ in range(members - 1):
        await join(m, township)
    r = await m.post("/applications", data.application(township))
    return {
        **VALID_FIELDS,
        "parent_id": county,
        "org_id": township,
        "member_id": member["member_id"],
        "application_id": created(r, "application_id"),
    }


@asynccontextmanager
async def seeded_membership(m: ServiceUnderTest, _: Any) -> AsyncIterator[Seeded]:
    yield m, await membership_world(m)


@asynccontextmanager
async def seeded_transfer(m: ServiceUnderTest, settings: Any) -> AsyncIterator[Seeded]:
    from services.transfer.main import build_app  # noqa: PLC0415
    from services.transfer.service import TransferSettings  # noqa: PLC0415

    world = await membership_world(m)
    target = await make_org(m, "township", world["parent_id"])
    other = (await join(m, world["org_id"]))["member_id"]
    transfer_settings = settings_like(
        settings, TransferSettings, f"x_{settings.db_schema[2:]}", blind_index_key=settings.blind_index_key
    )
    async with serve_in_process(build_app(transfer_settings)) as t:

        async def heard() -> bool:
            r = await t.get(f"/organizations/{target}/transfers")
            return r.status_code == 200 and (await t.get(f"/members/{other}/transfers")).status_code == 200

        await eventually(heard, "transfer to hear of membership's organisations and members")
        body = {"member_id": world["member_id"], "to_org_id": target, "reason": "moved", "requested_by": "staff-1"}
        transfer_id = created(await t.post("/transfers", body), "transfer_id")
        bulk = {"member_ids": [other], "to_org_id": target, "reason": "a unit union was founded"}
        batch_id = created(await t.post("/transfers/bulk", bulk), "batch_id")
        known = {"transfer_id": transfer_id, "batch_id": batch_id, "to_org_id": target, "member_ids": [other]}
        yield t, {**world, **known}


@asynccontextmanager
async def seeded_servicecard(m: ServiceUnderTest, settings: Any) -> AsyncIterator[Seeded]:
    from services.servicecard.main import build_app  # noqa: PLC0415
    from services.servicecard.service import ServicecardSettings  # noqa: PLC0415

    world = await membership_world(m)
    async with serve_in_process(
        build_app(settings_like(settings, ServicecardSettings, f"c_{settings.db_schema[2:]}"))
    ) as sc:

        async def card() -> str | None:
            r = await sc.get(f"/members/{world['member_id']}/card")
            return str(r.json()["card_no"]) if r.status_code == 200 else None

        card_no = await eventually(card, "the member's service card")
        item = {"name": "法律咨询", "category": "legal_aid", "provider": "法律援助中心", "standard": "一次30分钟"}
        item_id = created(await sc.post("/catalog/items", {**item, "quota_per_year": 100}), "item_id")
        r = await sc.post(f"/cards/{card_no}/redemptions", {"item_id": item_id})
        redemption_id = created(r, "redemption_id")
        yield sc, {**world, "card_no": card_no, "item_id": item_id, "redemption_id": redemption_id}


@asynccontextmanager
async def seeded_feedback(m: ServiceUnderTest, settings: Any) -> AsyncIterator[Seeded]:
    from services.feedback.main import build_app  # noqa: PLC0415
    from services.feedback.service import FeedbackSettings  # noqa: PLC0415

    world = await membership_world(m, members=3)  # an electorate of at least the smallest minimum turnout
    async with serve_in_process(
        build_app(
            settings_like(settings, FeedbackSettings, f"f_{settings.db_schema[2:]}", ballot_master_key=secret(32))
        )
    ) as f:
        body = {"member_id": world["member_id"], "category": "wages", "text": "工资拖欠"}

        async def raised() -> str | None:
            r = await f.post("/requests", body, headers=auth.bearer("member", member_id=world["member_id"]))
            return str(r.json()["request_id"]) if r.status_code == 201 else None

        request_id = await eventually(raised, "feedback to hear of the member")
        now = datetime.now(UTC)
        campaign = {
            "title": "年度评议",
            "subject_type": "organization",
            "subject_id": world["org_id"],
            "electorate_org_id": world["org_id"],
            "electorate": "members",
            "opens_at": (now - timedelta(hours=1)).isoformat(),
            "closes_at": (now + timedelta(days=1)).isoformat(),
            "min_turnout": 3,
        }

        async def opened() -> str | None:  # once feedback heard of the whole electorate
            r = await f.post("/campaigns", campaign)
            return str(r.json()["campaign_id"]) if r.status_code == 201 else None

        campaign_id = await eventually(opened, "feedback to hear of the electorate")
        known = {"request_id": request_id, "campaign_id": campaign_id, "voter_id": world["member_id"]}
        yield f, {**world, **known, "electorate_org_id": world["org_id"], "subject_id": world["org_id"]}


@asynccontextmanager
async def seeded_dues(m: ServiceUnderTest, settings: Any) -> AsyncIterator[Seeded]:
    from services.dues.main import build_app  # noqa: PLC0415
    from services.dues.service import DuesSettings  # noqa: PLC0415

    world = await membership_world(m)
    dues_settings = settings_like(settings, DuesSettings, f"d_{settings.db_schema[2:]}", dues_review_interval=3600)
    async with serve_in_process(build_app(dues_settings)) as d:
        member_id = world["member_id"]
        await eventually(lambda: _ok(d.get(f"/members/{member_id}/dues")), "dues to open the member's account")
        month = f"{datetime.now(UTC):%Y-%m}"
        member_no = (await m.get(f"/members/{member_id}")).json()["member_no"]
        remittance = {"month": month, "lines": [{"member_no": member_no, "amount": "1.00"}]}
        r = await d.post(f"/organizations/{world['org_id']}/checkoff", remittance)
        remittance_id = created(r, "remittance_id")
        yield d, {**world, "remittance_id": remittance_id, "member_no": member_no, "month": month}


@asynccontextmanager
async def seeded_console(m: ServiceUnderTest, settings: Any) -> AsyncIterator[Seeded]:
    """The console before the four services it calls (each in this process, reached through its ASGI app), signed
    in as an admin: its session cookie and the CSRF token that goes with it are known."""
    from services.console.main import build_app  # noqa: PLC0415
    from services.console.settings import ConsoleSettings  # noqa: PLC0415

    async with (
        seeded_transfer(m, settings) as (t, moved),
        seeded_servicecard(m, settings) as (sc, carded),
        seeded_feedback(m, settings) as (f, asked),
    ):
        backends = {"membership": m, "transfer": t, "servicecard": sc, "feedback": f}
        urls = {f"{name}_url": f"http://{name}" for name in backends}
        app = build_app(ConsoleSettings(**urls))
        mounts = {f"http://{name}": httpx.ASGITransport(app=s.app) for name, s in backends.items()}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(mounts=mounts) as client,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as http,
        ):
            console = app.state.console
            console.services.client = client
            session_id = "fuzz-session"
            token = auth.bearer("admin", name="fuzz-admin")["Authorization"].removeprefix("Bearer ")
            # a header, not the client's cookie jar: signing out or in answers with new cookies the jar would keep
            http.headers["Cookie"] = f"console_token={token}; console_sid={session_id}"
            known = {**carded, **asked, **moved, "csrf": console.sessions.csrf(session_id)}
            yield ServiceUnderTest(http, app), known


async def _ok(response: Awaitable[httpx.Response]) -> bool:
    return (await response).status_code == 200


async def openapi(running: ServiceUnderTest) -> dict[str, Any]:
    """The service's OpenAPI document as a client reads it; the console, which serves none, its app's."""
    r = await running.get("/openapi.json")
    return r.json() if r.status_code == 200 else json.loads(json.dumps(running.app.openapi()))


SEEDERS = {
    "membership": seeded_membership,
    "transfer": seeded_transfer,
    "servicecard": seeded_servicecard,
    "feedback": seeded_feedback,
    "dues": seeded_dues,
    "console": seeded_console,
}


# Hypothesis draws the cases in a worker thread while the service's consumer and workers run on the loop's
# thread; when those touch the global `random`, Hypothesis takes it for a strategy that uses `random`.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("service", list(SEEDERS))
async def test_hostile_input_gets_no_500_and_no_answer_outside_the_schema(
    service: str, membership: ServiceUnderTest, membership_settings: Any, request: pytest.FixtureRequest
) -> None:
    async with SEEDERS[service](membership, membership_settings) as (running, known):
        document = await openapi(running)
        loop = asyncio.get_running_loop()

        def send(method: str, url: str, headers: dict[str, str], body: bytes | None) -> httpx.Response:
            call = running.http.request(method, url, headers=headers, content=body)
            return asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)

        started = time.monotonic()
        figures = await asyncio.to_thread(
            fuzz,
            service,
            document,
            send,
            base_url=str(running.http.base_url).rstrip("/"),
            headers=dict(running.http.headers),
            known=known,
            max_examples=MAX_EXAMPLES,
            scenarios=SCENARIOS,
            steps=SCENARIO_STEPS,
        )
    line = f"{figures.line()} ({time.monotonic() - started:.1f} s)"
    print(line)
    FuzzReport.of(request.config).lines.append(line)
    assert figures.failures == [], "\n\n".join(figures.failures)
    assert len(figures.tested) == count_operations(document) == figures.operations
    assert figures.examples > 0
