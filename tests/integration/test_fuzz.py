"""Hostile input: schemathesis against each service's own OpenAPI, with a fixed example budget per operation.

Every operation gets positive cases (valid by the schema) and, where it takes input, negative ones (invalid
by the schema), some with ids that exist so that not everything is 404. No answer may be a 5xx, and every
declared response must match its schema and content type. The figures go to the terminal summary.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import strategies as st

from shared.settings import KernelSettings
from shared.validators import CREDIT_CODE_ALPHABET, credit_code_check_char, identity_number_check_char
from tests.integration.conftest import ServiceUnderTest, secret, serve_in_process
from tests.integration.test_membership import join, make_org
from tests.support import auth, data
from tests.support.fuzz import FuzzReport, count_operations, fuzz
from tests.support.waiting import eventually

# examples per operation and generation mode (positive; negative where the operation takes input)
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))

Seeded = tuple[ServiceUnderTest, dict[str, Any]]


def created(r: httpx.Response, key: str) -> str:
    assert r.status_code in {200, 201, 202}, r.text
    return str(r.json()[key])


def settings_like(membership_settings: Any, cls: type[KernelSettings], db_schema: str, **extra: Any) -> Any:
    """Another service's settings on the same database, broker, topics and token issuer as membership's."""
    shared = {name: getattr(membership_settings, name) for name in KernelSettings.model_fields}
    return cls(**{**shared, "db_schema": db_schema, "run_consumers": True, **extra})


# --- one seeded service per test: ids that exist and values that pass the rules behind the schema ---------


def _identity_number(serial: int) -> str:
    first17 = f"31011519800101{serial:03d}"
    return first17 + identity_number_check_char(first17)


def _credit_code(middle: str) -> str:
    first17 = f"91310115{middle}"
    return first17 + credit_code_check_char(first17)


# values that pass membership's rules behind its schema, so that the rest of a hostile body reaches the database
VALID_FIELDS: dict[str, object] = {
    "region_code": "310115",
    "id_number": st.integers(0, 999).map(_identity_number),
    "phone": "13912345678",
    "credit_code": st.text(CREDIT_CODE_ALPHABET, min_size=9, max_size=9).map(_credit_code),
    "employer_credit_code": st.text(CREDIT_CODE_ALPHABET, min_size=9, max_size=9).map(_credit_code),
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


SEEDERS = {
    "membership": seeded_membership,
    "transfer": seeded_transfer,
    "servicecard": seeded_servicecard,
    "feedback": seeded_feedback,
}


# Hypothesis draws the cases in a worker thread while the service's consumer and workers run on the loop's
# thread; when those touch the global `random`, Hypothesis takes it for a strategy that uses `random`.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("service", list(SEEDERS))
async def test_hostile_input_gets_no_500_and_no_answer_outside_the_schema(
    service: str, membership: ServiceUnderTest, membership_settings: Any, request: pytest.FixtureRequest
) -> None:
    async with SEEDERS[service](membership, membership_settings) as (running, known):
        document = (await running.get("/openapi.json")).json()
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
        )
    line = f"{figures.line()} ({time.monotonic() - started:.1f} s)"
    print(line)
    FuzzReport.of(request.config).lines.append(line)
    assert figures.failures == [], "\n\n".join(figures.failures)
    assert len(figures.tested) == count_operations(document) == figures.operations
    assert figures.examples > 0
