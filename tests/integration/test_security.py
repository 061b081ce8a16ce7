"""Tokens, the audit of access, and the public door's rate limits, on membership in this process.

The whole authorisation matrix (every endpoint x every role) runs against the four services as processes in
tests/e2e/test_access_matrix.py; this file proves the parts that matrix takes for granted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from devstack.tokens import Issuer
from shared.auth import KeySet, TokenVerifier, UnauthenticatedError
from shared.envelope import Envelope
from tests.conftest import Stack
from tests.integration.conftest import ServiceUnderTest, serve_in_process
from tests.integration.test_membership import join, make_org
from tests.support import auth, data
from tests.support.kafka import produce, read_topic
from tests.support.waiting import eventually
from unionctl import cli


def claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base = {
        "iss": "union-platform",
        "aud": "union-platform",
        "sub": "someone",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    return {**base, "role": "admin", **overrides}


def signed(payload: dict[str, Any], issuer: Issuer | None = None) -> dict[str, str]:
    issuer = issuer or auth.issuer()
    token = jwt.encode(payload, issuer.key, algorithm="ES256", headers={"kid": issuer.kid})
    return {"Authorization": f"Bearer {token}"}


def unsigned(payload: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(payload, None, algorithm='none')}"}


def public_key_as_hmac_secret(payload: dict[str, Any]) -> dict[str, str]:
    """The classic confusion: HS256 'signed' with the issuer's public key, which every service holds."""
    public = auth.issuer().key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": auth.issuer().kid}).encode())
    body = b64(json.dumps(payload, default=lambda t: int(t.timestamp())).encode())
    signature = b64(hmac.new(public, header + b"." + body, hashlib.sha256).digest())
    return {"Authorization": f"Bearer {(header + b'.' + body + b'.' + signature).decode()}"}


async def test_every_forged_or_stale_token_is_refused_with_401(membership: ServiceUnderTest, tmp_path: Path) -> None:
    org = await make_org(membership, "county")
    path = f"/organizations/{org}"
    stranger = Issuer.open(tmp_path / "other-issuer")  # a key pair the services never heard of
    impostor = Issuer(tmp_path, stranger.key, auth.issuer().kid)  # another key claiming the trusted key's id
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    cases: list[tuple[str, dict[str, str], str]] = [
        ("no token", {}, "unauthenticated"),
        ("basic auth", {"Authorization": "Basic YWRtaW46YWRtaW4="}, "unauthenticated"),
        ("not a JWT", {"Authorization": "Bearer not-a-token"}, "invalid_token"),
        ("expired", signed(claims(iat=hour_ago - timedelta(hours=1), exp=hour_ago)), "token_expired"),
        ("another key", signed(claims(), stranger), "invalid_token"),
        ("another key, our kid", signed(claims(), impostor), "invalid_token"),
        ("another audience", signed(claims(aud="some-other-system")), "invalid_token"),
        ("another issuer", signed(claims(iss="https://evil.example")), "invalid_token"),
        ("alg none", unsigned(claims()), "invalid_token"),
        ("HS256 with the public key", public_key_as_hmac_secret(claims()), "invalid_token"),
        ("no expiry", signed({k: v for k, v in claims().items() if k != "exp"}), "invalid_token"),
        ("unknown role", signed(claims(role="superuser")), "invalid_token"),
        ("staff without organisation", signed(claims(role="staff")), "invalid_token"),
        ("member without member id", signed(claims(role="member")), "invalid_token"),
    ]
    outcomes = {}
    for name, headers, _ in cases:
        r = await membership.http.get(path, headers={"Authorization": ""} | headers)
        outcomes[name] = (r.status_code, r.json().get("code"), r.headers.get("www-authenticate", "")[:6])
    assert outcomes == {name: (401, code, "Bearer") for name, _, code in cases}
    assert (await membership.http.get(path, headers=signed(claims()))).status_code == 200


async def test_a_service_without_the_issuers_keys_does_not_start(membership_settings: Any) -> None:
    from services.membership.main import build_app  # noqa: PLC0415

    with pytest.raises(ValueError, match="AUTH_JWKS is required"):
        build_app(membership_settings.model_copy(update={"auth_jwks": None}))


@pytest.fixture
def jwks_server() -> Iterator[str]:
    document = auth.issuer().jwks_path.read_bytes()
    fetched: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()
    assert fetched, "the verifier never fetched the JWKS"


async def test_keys_can_come_from_the_issuers_jwks_url(jwks_server: str, tmp_path: Path) -> None:
    verifier = TokenVerifier(KeySet(jwks_server), "union-platform", "union-platform")
    principal = await verifier.verify(auth.token("staff", org_id=uuid.uuid4(), name="Li Lei"))
    assert (principal.role, principal.display_name) == ("staff", "Li Lei")
    with pytest.raises(Exception, match="does not know"):
        await verifier.verify(Issuer.open(tmp_path).mint("admin"))


async def test_a_key_removed_from_the_jwks_file_stops_verifying(tmp_path: Path) -> None:
    ours, theirs = Issuer.open(tmp_path / "ours"), Issuer.open(tmp_path / "theirs")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(ours.jwks_path.read_text())
    verifier = TokenVerifier(KeySet(str(jwks), recheck=0.05), "union-platform", "union-platform")
    token = ours.mint("admin")
    assert (await verifier.verify(token)).role == "admin"
    jwks.write_text(theirs.jwks_path.read_text())  # rotated: our key is gone, theirs is in
    os.utime(jwks, (1, 1))  # a different mtime even within the file system's clock resolution
    await asyncio.sleep(0.1)
    with pytest.raises(UnauthenticatedError, match="does not know"):
        await verifier.verify(token)
    assert (await verifier.verify(theirs.mint("admin"))).role == "admin"


async def test_a_remembered_token_is_still_refused_once_it_expires(tmp_path: Path) -> None:
    issuer = Issuer.open(tmp_path)
    verifier = TokenVerifier(KeySet(str(issuer.jwks_path)), "union-platform", "union-platform", leeway=0)
    token = issuer.mint("admin", ttl=timedelta(seconds=1))
    assert (await verifier.verify(token)).role == "admin"
    assert (await verifier.verify(token)).role == "admin"  # the second time from memory
    await asyncio.sleep(2.05)  # `exp` is in whole seconds
    with pytest.raises(UnauthenticatedError, match="expired"):
        await verifier.verify(token)


def test_keys_are_never_fetched_over_plain_http_from_elsewhere() -> None:
    with pytest.raises(ValueError, match="https"):
        KeySet("http://idp.example/.well-known/jwks.json")


async def audit_rows(m: ServiceUnderTest, target: str) -> list[tuple[str, str, str]]:
    rows = await m.service.pool.fetch(
        "SELECT actor, action, outcome FROM audit_log WHERE target = $1 ORDER BY audit_id", target
    )
    return [(r["actor"], r["action"], r["outcome"]) for r in rows]


async def test_reads_of_personal_data_and_refusals_are_audited_with_the_tokens_actor(
    membership: ServiceUnderTest,
) -> None:
    county = await make_org(membership, "county")
    township, sibling = await make_org(membership, "township", county), await make_org(membership, "township", county)
    member = await join(membership, township)
    member_id = member["member_id"]
    clerk = auth.bearer("staff", org_id=township, subject="clerk-7", name="Clerk Wang")
    outsider = auth.bearer("staff", org_id=sibling, subject="clerk-9")

    r = await membership.get(f"/members/{member_id}/personal-data", headers=clerk)
    assert r.status_code == 200, r.text
    assert (r.json()["id_number"], r.json()["phone"], r.json()["name"]) == (
        member["id_number"],
        member["phone"],
        member["name"],
    )
    r = await membership.get(f"/members/{member_id}/personal-data", headers=outsider)
    assert (r.status_code, r.json()["code"]) == (403, "outside_organization")
    r = await membership.get(f"/members/{member_id}", headers=auth.bearer("member", member_id=member_id))
    assert r.status_code == 200
    other = uuid.uuid4()
    r = await membership.get(f"/members/{member_id}", headers=auth.bearer("member", member_id=other))
    assert (r.status_code, r.json()["code"]) == (403, "not_own_record")
    r = await membership.get(f"/organizations/{township}/members", headers=clerk)
    assert [m["member_id"] for m in r.json()["items"]] == [member_id]

    assert await audit_rows(membership, f"member:{member_id}") == [
        ("staff:clerk-7", "member.personal_data", "allowed"),
        ("staff:clerk-9", "member.personal_data", "refused:outside_organization"),
        (f"member:member-{member_id}", "member.read", "allowed"),
        (f"member:member-{other}", "member.read", "refused:not_own_record"),
        ("staff:clerk-7", "organization.roster", "allowed"),  # a roster shows names: a row per member listed
    ]


async def test_unionctl_audit_lists_who_read_a_member(
    membership: ServiceUnderTest, membership_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    township = await make_org(membership, "township")
    member_id = (await join(membership, township))["member_id"]
    clerk = auth.bearer("staff", org_id=township, subject="clerk-5")
    await membership.get(f"/members/{member_id}/personal-data", headers=clerk)
    await membership.get(f"/members/{member_id}/personal-data", headers=auth.bearer("staff", org_id=uuid.uuid4()))
    db = ["--database-url", membership_settings.database_url, "--schema", membership_settings.db_schema]
    monkeypatch.setattr(cli.out, "width", 300)  # rich wraps tables to the terminal; a test has none
    run = CliRunner().invoke
    listed = await asyncio.to_thread(run, cli.app, ["audit", "--target", f"member:{member_id}", *db])
    assert listed.exit_code == 0, listed.output
    assert "staff:clerk-5" in listed.output
    assert "refused:outside_organization" in listed.output
    refusals = await asyncio.to_thread(run, cli.app, ["audit", "--target", f"member:{member_id}", "--refused", *db])
    assert "staff:clerk-5" not in refusals.output
    assert "1 rows" in refusals.output


async def test_every_change_carries_the_actor_from_the_token_never_from_the_body(membership: ServiceUnderTest) -> None:
    county = await make_org(membership, "county")
    township = await make_org(membership, "township", county)
    r = await membership.post("/applications", data.application(township))
    application_id = r.json()["application_id"]
    clerk = auth.bearer("staff", org_id=county, subject="clerk-3", name="Clerk Zhao")
    r = await membership.post(f"/applications/{application_id}/approve", {"reviewer": "someone else"}, headers=clerk)
    assert r.status_code == 200, r.text
    member_id = r.json()["member_id"]
    r = await membership.post(f"/members/{member_id}/suspend", {"reason": "arrears"}, headers=clerk)
    assert r.status_code == 200, r.text

    rows = await membership.service.pool.fetch(
        "SELECT event_type, metadata->>'actor' AS actor FROM events WHERE stream_id IN ($1, $2) ORDER BY position",
        f"application-{application_id}",
        f"member-{member_id}",
    )
    actors = {(r["event_type"], r["actor"]) for r in rows}
    assert ("ApplicationSubmitted", "public") in actors  # applying needs no account
    assert ("ApplicationApproved", "staff:clerk-3") in actors
    assert ("MemberSuspended", "staff:clerk-3") in actors
    assert not any(actor in {"someone else", "anonymous"} for _, actor in actors)


@pytest.fixture
async def strict_membership(membership_settings: Any, all_topics: list[str]) -> AsyncIterator[ServiceUnderTest]:
    from services.membership.main import build_app  # noqa: PLC0415

    settings = membership_settings.model_copy(
        update={"application_rate_per_address": "5/minute", "application_rate_per_person": "2/hour"}
    )
    async with serve_in_process(build_app(settings)) as running:
        yield running


async def test_applications_are_rate_limited_per_address_and_per_person(strict_membership: ServiceUnderTest) -> None:
    m = strict_membership
    org = await make_org(m, "township")
    body = data.application(org)
    public = {"Authorization": ""}  # nobody signs in to apply

    # the same person twice is fine (the second is refused as a duplicate or accepted), a third time is too many
    first = [await m.post("/applications", body, headers=public) for _ in range(2)]
    assert all(r.status_code != 429 for r in first)
    r = await m.post("/applications", body, headers=public)
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    assert int(r.headers["retry-after"]) > 60  # the hour's window

    # other people from the same address: 5 a minute in all, the refused ones included
    others = [await m.post("/applications", data.application(org), headers=public) for _ in range(3)]
    assert [r.status_code for r in others] == [201, 201, 429]
    assert 1 <= int(others[-1].headers["retry-after"]) <= 60
    assert "id_number" not in others[-1].text


async def test_oversized_and_hostile_bodies_never_reach_the_handler(membership: ServiceUnderTest) -> None:
    r = await membership.http.post(
        "/organizations", content=b'{"name": "' + b"x" * 2_000_000 + b'"}', headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    deep = "[" * 10_000 + "]" * 10_000
    r = await membership.http.post("/organizations", content=deep, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input")


async def test_no_other_topic_can_move_a_member_out_of_their_organisation(
    membership_consuming: ServiceUnderTest, stack: Stack, topic_prefix: str
) -> None:
    """Membership consumes the service card topic for the dossier; a message there that names itself
    membership's MemberOrganizationChanged (with membership's source, or with its own) must not move anyone,
    or staff of the new organisation would read the member's personal data."""
    m = membership_consuming
    county = await make_org(m, "county")
    township, sibling = await make_org(m, "township", county), await make_org(m, "township", county)
    member_id = (await join(m, township))["member_id"]
    moved = {"member_id": member_id, "from_org_id": township, "to_org_id": sibling, "transfer_id": str(uuid.uuid4())}
    forged = [
        Envelope(
            id=uuid.uuid4(),
            source=source,
            type=f"union.{source.rsplit('/', 1)[1]}.MemberOrganizationChanged.v1",
            subject=f"member-{member_id}",
            time=datetime.now(UTC),
            partitionkey=member_id,
            data=moved,
        )
        for source in ("/union/membership", "/union/servicecard")
    ]
    await produce(stack.bootstrap, f"{topic_prefix}union.servicecard.v1", [e.to_kafka() for e in forged])
    [dead] = await read_topic(stack.bootstrap, f"{topic_prefix}union.servicecard.v1.dlq", expect=1)
    assert "does not publish on" in dict(dead.headers)["dlq_error"].decode()

    async def kept_for_the_dossier() -> bool:
        return bool(await m.service.pool.fetchval("SELECT 1 FROM inbox WHERE event_id = $1", forged[1].id))

    await eventually(kept_for_the_dossier)
    assert (
        str(await m.service.pool.fetchval("SELECT org_id FROM members WHERE member_id = $1", uuid.UUID(member_id)))
        == township
    )
    r = await m.get(f"/members/{member_id}/personal-data", headers=auth.bearer("staff", org_id=sibling))
    assert (r.status_code, r.json()["code"]) == (403, "outside_organization")


async def test_a_system_token_reads_only_what_its_scopes_grant(membership: ServiceUnderTest) -> None:
    township = await make_org(membership, "township")
    member_id = (await join(membership, township))["member_id"]
    reads = [f"/organizations/{township}", f"/organizations/{township}/members", f"/members/{member_id}"]
    unscoped = auth.bearer("system", name="payroll", scope="")
    for path in reads:
        r = await membership.get(path, headers=unscoped)
        assert (r.status_code, r.json()["code"]) == (403, "scope_missing"), path
    scoped = auth.bearer("system", name="statistics", scope="organizations:read members:read")
    assert [(await membership.get(path, headers=scoped)).status_code for path in reads] == [200, 200, 200]
    # no scope makes a system token a member's reader of unmasked data, or a writer
    r = await membership.get(f"/members/{member_id}/personal-data", headers=scoped)
    assert (r.status_code, r.json()["code"]) == (403, "role_not_permitted")
    r = await membership.post(f"/members/{member_id}/suspend", {"reason": "x"}, headers=scoped)
    assert (r.status_code, r.json()["code"]) == (403, "role_not_permitted")
