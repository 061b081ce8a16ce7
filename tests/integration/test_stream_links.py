"""The stream's links (issue 14): one correlation id from an HTTP request through three services' events, and
position tokens: a read given a token never answers from a read model older than the token.

The services run in this process for real: each with its database schema, outbox relay and consumer, on the
session's PostgreSQL and broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.servicecard.service import ServicecardSettings
from services.transfer.service import TransferSettings
from shared.settings import KernelSettings
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, secret, serve_in_process
from tests.integration.test_membership import join, make_org
from tests.support.kafka import read_topic
from tests.support.waiting import eventually


def settings_like(membership_settings: Any, cls: type[KernelSettings], db_schema: str, **extra: Any) -> Any:
    """Another service's settings on the same database, broker and topics as membership's."""
    common = {name: getattr(membership_settings, name) for name in KernelSettings.model_fields}
    return cls(**{**common, "db_schema": db_schema, "run_consumers": True, **extra})


@pytest.fixture
def servicecard_settings(membership_settings: Any, unique: str) -> ServicecardSettings:
    settings: ServicecardSettings = settings_like(membership_settings, ServicecardSettings, f"c_{unique}")
    return settings


@pytest.fixture
async def servicecard(servicecard_settings: ServicecardSettings, all_topics: list[str]) -> AsyncIterator[Any]:
    from services.servicecard.main import build_app  # noqa: PLC0415

    async with serve_in_process(build_app(servicecard_settings)) as service:
        yield service


@pytest.fixture
async def transfer(membership_settings: Any, unique: str, all_topics: list[str]) -> AsyncIterator[Any]:
    from services.transfer.main import build_app  # noqa: PLC0415

    settings = settings_like(
        membership_settings, TransferSettings, f"x_{unique}", blind_index_key=membership_settings.blind_index_key
    )
    async with serve_in_process(build_app(settings)) as service:
        yield service


def token(r: httpx.Response) -> str:
    """The position a command wrote: in the body and in the header, the same."""
    assert r.headers["x-position"] == r.json()["position"], r.text
    return r.headers["x-position"]


# --- one correlation id through three services -------------------------------------------------------------


async def test_one_correlation_id_from_a_request_through_transfer_membership_and_the_card(
    membership_consuming: ServiceUnderTest, transfer: ServiceUnderTest, servicecard: ServiceUnderTest
) -> None:
    m, t, c = membership_consuming, transfer, servicecard
    county = await make_org(m, "county")
    source = await make_org(m, "township", county)
    target = await make_org(m, "township", county)
    joined = await join(m, source)
    member = joined["member_id"]
    chain = f"corr-{uuid.uuid4()}"
    # transfer must have heard of the member and the target before it may move them: its answer waits for that
    headers = {"X-Correlation-Id": chain, "X-After-Position": joined["position"]}

    requested = await t.post(
        "/transfers",
        {"member_id": member, "to_org_id": target, "reason": "a new job", "requested_by": "the member"},
        headers=headers,
    )
    assert requested.status_code == 201, requested.text
    assert requested.headers["x-correlation-id"] == chain
    transfer_id = requested.json()["transfer_id"]
    released = await t.post(f"/transfers/{transfer_id}/release", {"by": "source staff"}, headers=headers)
    assert released.status_code == 200, released.text
    accepted = await t.post(f"/transfers/{transfer_id}/accept", {"by": "target staff"}, headers=headers)
    assert accepted.status_code == 200, accepted.text
    accept_request = accepted.headers["x-request-id"]

    # the dossier, once membership has consumed the completion (and servicecard its echo): read with tokens
    moved = await m.get(f"/members/{member}", params={"after": token(accepted)})
    assert moved.status_code == 200, moved.text
    assert moved.json()["org_id"] == target  # read after the transfer's position: the move is there
    card = await c.get(f"/members/{member}/card", params={"after": moved.headers["x-position"]})
    assert card.status_code == 200, card.text
    assert card.json()["org_id"] == target  # read after membership's position: the card moved
    history = await m.get(f"/members/{member}/history", params={"after": card.headers["x-position"]})
    assert history.status_code == 200, history.text
    events = history.json()["events"]

    def the(name: str) -> dict[str, Any]:
        [entry] = [e for e in events if e["event"] == name]
        return entry

    completed = the("TransferCompleted")
    assert completed["source"] == "/union/transfer"
    assert (completed["correlation_id"], completed["causation_id"]) == (chain, accept_request)
    org_changed = the("MemberOrganizationChanged")
    assert org_changed["source"] == "/union/membership"
    assert (org_changed["correlation_id"], org_changed["causation_id"]) == (chain, completed["id"])
    card_moved = the("CardOrganizationChanged")
    assert card_moved["source"] == "/union/servicecard"
    assert (card_moved["correlation_id"], card_moved["causation_id"]) == (chain, org_changed["id"])
    assert the("TransferRequested")["correlation_id"] == chain
    assert the("TransferRequested")["causation_id"] == requested.headers["x-request-id"]
    # a chain begun without a correlation id is named after its request
    joined_entry = the("MemberJoined")
    assert joined_entry["correlation_id"] == joined_entry["causation_id"]
    issued = the("CardIssued")
    assert (issued["correlation_id"], issued["causation_id"]) == (joined_entry["correlation_id"], joined_entry["id"])


# --- position tokens ---------------------------------------------------------------------------------------


async def test_a_read_with_a_position_token_never_answers_from_a_read_model_older_than_the_token(
    membership: ServiceUnderTest, servicecard_settings: ServicecardSettings, all_topics: list[str]
) -> None:
    from services.servicecard.main import build_app  # noqa: PLC0415

    m = membership
    township = await make_org(m, "township", await make_org(m, "county"))
    members = [await join(m, township) for _ in range(6)]  # spread over the topic's three partitions
    last = members[-1]["position"]
    assert all(int(j["position"].split(":")[1]) < int(last.split(":")[1]) for j in members[:-1])
    # an API-only replica of the card service, with nobody consuming yet: its read models know no member
    replica_settings = servicecard_settings.model_copy(update={"run_consumers": False, "read_after_timeout": 1.0})
    async with serve_in_process(build_app(replica_settings)) as replica:
        first = members[0]["member_id"]
        assert (await replica.get(f"/members/{first}/card")).status_code == 404  # without a token: the old model
        loop = asyncio.get_running_loop()
        started = loop.time()
        refused = await replica.get(f"/members/{first}/card", params={"after": last})
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "not_caught_up"
        behind = int(last.split(":")[1])  # nothing consumed yet: the whole way
        assert f"{last} (consumed through membership:0, {behind} behind)" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "1"
        assert loop.time() - started >= 1.0  # it waited its bounded time first
        assert (await replica.get(f"/members/{first}/card", headers={"X-After-Position": last})).status_code == 409

        # a consumer starts (another replica, same database and group); the API-only replica keeps answering
        answers: list[int] = []
        async with serve_in_process(build_app(servicecard_settings)):

            async def answered() -> bool:
                r = await replica.get(f"/members/{first}/card", params={"after": last})
                answers.append(r.status_code)
                return r.status_code == 200

            await eventually(answered, "the replica to answer once the consumer caught up")
            assert set(answers) <= {409, 200}  # never the old read model (404)
            # through the last member's position on every partition: every member before them is there too
            for j in members:
                r = await replica.get(f"/members/{j['member_id']}/card", params={"after": last})
                assert r.status_code == 200, (j, r.text)
                assert r.json()["org_id"] == township
                assert r.headers["x-position"].startswith("servicecard:")


async def test_tokens_of_the_service_itself_or_of_a_service_it_does_not_read_need_no_wait(
    membership_settings: Any, all_topics: list[str]
) -> None:
    from services.membership.main import build_app  # noqa: PLC0415

    settings = membership_settings.model_copy(update={"read_after_timeout": 0.3})
    async with serve_in_process(build_app(settings)) as m:
        township = await make_org(m, "township", await make_org(m, "county"))
        member = (await join(m, township))["member_id"]
        for tokens in ["membership:999999999999", "membership:1"]:
            r = await m.get(f"/members/{member}", params={"after": tokens})
            assert r.status_code == 200, (tokens, r.text)
        # membership reads transfer's (and feedback's) topic; nobody consumes them in this test: their tokens cannot
        # be vouched for. (Membership reads every other service's topic since its work queue takes requests.)
        for tokens in ["transfer:1", "feedback:5"]:
            r = await m.get(f"/members/{member}", headers={"X-After-Position": tokens})
            assert (r.status_code, r.json()["code"]) == (409, "not_caught_up")
            assert tokens in r.json()["detail"]
        for bad, field in [
            ({"params": {"after": "membership"}}, "query.after"),
            ({"params": {"after": "membership:-1"}}, "query.after"),
            ({"params": {"after": "Membership:1"}}, "query.after"),
            ({"headers": {"X-After-Position": "membership:1;transfer:2"}}, "header.x-after-position"),
        ]:
            r = await m.get(f"/members/{member}", **bad)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["code"] == "invalid_input"
            assert field.split(".")[1] in r.json()["errors"][0]["field"], r.text


async def test_a_command_names_the_position_it_wrote_and_its_retry_the_same(
    membership: ServiceUnderTest, stack: Stack, topic_prefix: str
) -> None:
    m = membership
    body = {"name": "浦东新区总工会", "type": "county", "region_code": "310115"}
    first = await m.post("/organizations", body, headers={"Idempotency-Key": "county-1"})
    again = await m.post("/organizations", body, headers={"Idempotency-Key": "county-1"})
    assert first.status_code == again.status_code == 201
    assert token(first) == token(again)
    assert token(first).startswith("membership:")
    second = await m.post("/organizations", {**body, "name": "另一个"})
    assert int(token(second).split(":")[1]) > int(token(first).split(":")[1])
    # the position on the wire is the event's position in the store: what consumers derive theirs from
    records = await read_topic(stack.bootstrap, f"{topic_prefix}union.membership.v1", expect=2)
    async with m.service.pool.acquire() as conn:
        positions = {
            str(r["event_id"]): r["position"] for r in await conn.fetch("SELECT event_id, position FROM events")
        }
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        assert int(headers["ce_position"]) == positions[headers["ce_id"]]
    assert {f"membership:{p}" for p in positions.values()} >= {token(first), token(second)}


async def test_a_campaign_electorate_is_fixed_as_of_a_stated_point_of_the_membership_stream(
    membership: ServiceUnderTest, membership_settings: Any, unique: str, all_topics: list[str]
) -> None:
    from services.feedback.main import build_app  # noqa: PLC0415
    from services.feedback.service import FeedbackSettings  # noqa: PLC0415

    m = membership
    township = await make_org(m, "township", await make_org(m, "county"))
    async with serve_in_process(
        build_app(settings_like(membership_settings, FeedbackSettings, f"f_{unique}", ballot_master_key=secret(32)))
    ) as f:
        voters = [await join(m, township) for _ in range(5)]
        last = voters[-1]["position"]
        now = datetime.now(UTC)
        body = {
            "title": "年度评议",
            "subject_type": "organization",
            "subject_id": township,
            "electorate_org_id": township,
            "electorate": "members",
            "opens_at": now.isoformat(),
            "closes_at": (now + timedelta(days=1)).isoformat(),
        }
        # created just after the joins: with their position, the electorate holds every one of them
        r = await f.post("/campaigns", body, headers={"X-After-Position": last})
        assert r.status_code == 201, r.text
        opened = r.json()
        assert opened["eligible"] == len(voters)
        service, position = opened["electorate_as_of"].split(":")
        assert service == "membership"
        assert int(position) >= int(last.split(":")[1])
        campaign = (await f.get(f"/campaigns/{opened['campaign_id']}")).json()
        assert campaign["electorate_as_of"] == opened["electorate_as_of"]


async def test_the_callers_trace_context_rides_on_the_events_with_nothing_exported(
    membership: ServiceUnderTest,
) -> None:
    """No exporter here, so no span is made; a regional system's trace still continues through our events."""
    trace_id = uuid.uuid4().hex
    parent = f"00-{trace_id}-b7ad6b7169203331-01"
    r = await membership.post(
        "/organizations",
        {"name": "traced union", "type": "township", "region_code": "310115"},
        headers={"traceparent": parent},
    )
    assert r.status_code == 201, r.text
    [carried] = await membership.service.pool.fetch(
        "SELECT metadata->>'traceparent' AS tp FROM events WHERE stream_id = $1", f"organization-{r.json()['org_id']}"
    )
    assert carried["tp"] == parent
