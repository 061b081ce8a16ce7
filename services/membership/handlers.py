"""Membership's command handlers: load the streams, decide, append (outbox rows ride along)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import asyncpg

from services.membership import calendars, domain, queries
from services.membership.domain import Application, Member, Organization
from services.membership.events import (
    ApplicationSubmitted,
    ClockCounted,
    MemberJoined,
    MemberOrganizationChanged,
)
from shared.events import DomainEvent
from shared.pii import PersonalDataVault
from shared.store import Metadata, Stream, StreamStore, new_id

log = logging.getLogger("services.membership")


@dataclass(frozen=True)
class Person:
    """A worker's identity as submitted, already validated."""

    name: str
    id_number: str
    phone: str
    employment_type: domain.EmploymentType
    household_type: domain.HouseholdType
    employer_credit_code: str | None = None
    employer_name: str | None = None


@dataclass(frozen=True)
class PaperMember:
    """A member approved on paper before the platform, imported from a roster."""

    org_id: UUID
    person: Person
    joined_at: date


def _personal(person: Person) -> dict[str, str]:
    return {"name": person.name, "id_number": person.id_number, "phone": person.phone}


def org_stream(org_id: UUID) -> str:
    return f"organization-{org_id}"


def application_stream(application_id: UUID) -> str:
    return f"application-{application_id}"


def member_stream(member_id: UUID) -> str:
    return f"member-{member_id}"


class Membership:
    def __init__(
        self,
        store: StreamStore,
        vault: PersonalDataVault,
        founding_threshold: int,
        application_working_days: int = 15,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.vault = vault
        self.founding_threshold = founding_threshold
        self.application_working_days = application_working_days
        self.clock = clock  # when an application's clock starts: now, but for tests that move time

    async def organization(self, conn: asyncpg.Connection, org_id: UUID) -> tuple[Stream, Organization]:
        return await self.store.load_existing(
            conn, org_stream(org_id), domain.fold, Organization, "organization", org_id
        )

    async def member(self, conn: asyncpg.Connection, member_id: UUID) -> tuple[Stream, Member]:
        return await self.store.load_existing(conn, member_stream(member_id), domain.fold, Member, "member", member_id)

    async def application(self, conn: asyncpg.Connection, application_id: UUID) -> tuple[Stream, Application]:
        stream_id = application_stream(application_id)
        return await self.store.load_existing(conn, stream_id, domain.fold, Application, "application", application_id)

    # --- organisations ---

    async def register_organization(
        self, conn: asyncpg.Connection, cmd: domain.RegisterOrganization, meta: Metadata
    ) -> UUID:
        parent = None
        if cmd.parent_id is not None:
            _, state = await self.store.load_folded(conn, org_stream(cmd.parent_id), domain.fold)
            parent = state if isinstance(state, Organization) else None
        events = domain.register_organization(cmd, parent)
        await self.store.append(conn, Stream(org_stream(cmd.org_id)), events, meta)
        return cmd.org_id

    async def dissolve_organization(self, conn: asyncpg.Connection, org_id: UUID, reason: str, meta: Metadata) -> None:
        stream, org = await self.organization(conn, org_id)
        # approvals into this organisation take the row FOR SHARE: none slips in while we count
        await conn.execute("SELECT 1 FROM organizations WHERE org_id = $1 FOR UPDATE", org_id)
        active = await conn.fetchval(
            "SELECT count(*) FROM members WHERE org_id = $1 AND status <> 'terminated'", org_id
        )
        await self.store.append(conn, stream, domain.dissolve_organization(org, active, reason), meta)

    # --- applications ---

    async def _is_member(self, conn: asyncpg.Connection, blind_index: str) -> bool:
        # one person at a time: a second approval of the same person waits here, then sees the first
        await conn.execute("SELECT pg_advisory_xact_lock(4, hashtext($1))", blind_index)
        return bool(await conn.fetchval("SELECT 1 FROM persons WHERE id_blind_index = $1", blind_index))

    async def _seal(self, conn: asyncpg.Connection, member_id: UUID, person: Person) -> dict[str, str]:
        sealed = await self.vault.encrypt(conn, member_id, _personal(person))
        return {"name_enc": sealed["name"], "id_number_enc": sealed["id_number"], "phone_enc": sealed["phone"]}

    async def submit_application(self, conn: asyncpg.Connection, org_id: UUID, person: Person, meta: Metadata) -> UUID:
        _, org = await self.organization(conn, org_id)
        blind = self.vault.blind_index(person.id_number)
        already = await self._is_member(conn, blind)
        domain.ensure_can_apply(org, already)  # the rule, checked before a data key is made for this person
        application_id, member_id = uuid4(), new_id()  # members' ids time-ordered: their tables' keys grow at the end
        # never no clock: a year whose notice is not loaded yet is counted provisionally, and again on the notice
        clock = (await calendars.for_clock(conn)).clock(self.clock(), self.application_working_days)
        submitted = ApplicationSubmitted(
            application_id=application_id,
            member_id=member_id,
            org_id=org_id,
            id_blind_index=blind,
            employer_credit_code=person.employer_credit_code,
            employer_name=person.employer_name,
            employment_type=person.employment_type,
            household_type=person.household_type,
            respond_by=clock.deadline,
            clock=ClockCounted.model_validate(clock.as_json()),
            **await self._seal(conn, member_id, person),
        )
        await self.store.append(conn, Stream(application_stream(application_id)), [submitted], meta)
        return application_id

    async def approve_application(
        self, conn: asyncpg.Connection, application_id: UUID, reviewer: str, meta: Metadata
    ) -> tuple[UUID, str]:
        stream, app = await self.application(conn, application_id)
        _, org = await self.organization(conn, app.org_id)
        await conn.execute("SELECT 1 FROM organizations WHERE org_id = $1 FOR SHARE", app.org_id)
        already = await self._is_member(conn, app.submitted.id_blind_index)
        member_no = await self._next_member_no(conn, org.region_code)
        app_events, member_events = domain.approve_application(
            app, org, already, reviewer, member_no, datetime.now(UTC).date()
        )
        await self.store.append(conn, stream, app_events, meta)
        await self.store.append(conn, Stream(member_stream(app.member_id)), member_events, meta)
        await self._suggest_founding(conn, member_events, meta)
        return app.member_id, member_no

    async def _next_member_no(self, conn: asyncpg.Connection, region_code: str) -> str:
        seq = await conn.fetchval("SELECT nextval('member_no_seq')")
        return f"{region_code}-{seq:08d}"

    async def reject_application(
        self, conn: asyncpg.Connection, application_id: UUID, reviewer: str, reason: str, meta: Metadata
    ) -> None:
        stream, app = await self.application(conn, application_id)
        await self.store.append(conn, stream, domain.reject_application(app, reviewer, reason), meta)

    async def mark_application_overdue(
        self, conn: asyncpg.Connection, application_id: UUID, now: datetime, meta: Metadata
    ) -> bool:
        """Record that a pending application's clock ran out, once: a second worker's append fails on the version."""
        stream, app = await self.application(conn, application_id)
        due = app.respond_by
        if due is None:  # recorded before provisional clocks, when the year's calendar was not known: count it now
            calendar = await calendars.for_clock(conn)
            due = calendar.clock(stream.events[0].recorded_at, self.application_working_days).deadline
        _, org = await self.organization(conn, app.org_id)
        events = domain.mark_overdue(app, due, now, org.parent_id)
        await self.store.append(conn, stream, events, meta)
        return bool(events)

    async def import_members(self, conn: asyncpg.Connection, rows: Sequence[PaperMember], meta: Metadata) -> int:
        """Members approved on paper, in one transaction; people already on the platform are skipped (re-runs)."""
        orgs = {org_id: (await self.organization(conn, org_id))[1] for org_id in {r.org_id for r in rows}}
        for org in orgs.values():
            domain.ensure_accepts_members(org)
        blinds = [self.vault.blind_index(r.person.id_number) for r in rows]
        await conn.execute("SELECT pg_advisory_xact_lock(4, hashtext(b)) FROM unnest($1::text[]) b ORDER BY b", blinds)
        existing = {
            r["id_blind_index"]
            for r in await conn.fetch(
                "SELECT id_blind_index FROM persons WHERE id_blind_index = ANY($1::text[])", blinds
            )
        }
        new = [(row, blind, new_id()) for row, blind in zip(rows, blinds, strict=True) if blind not in existing]
        if not new:
            return 0
        sealed = await self.vault.encrypt_new(conn, {member_id: _personal(row.person) for row, _, member_id in new})
        numbers = await conn.fetch("SELECT nextval('member_no_seq') AS n FROM generate_series(1, $1)", len(new))
        streams: list[tuple[Stream, list[DomainEvent]]] = []
        for (row, blind, member_id), number in zip(new, numbers, strict=True):
            p, enc = row.person, sealed[member_id]
            joined = MemberJoined(
                member_id=member_id,
                member_no=f"{orgs[row.org_id].region_code}-{number['n']:08d}",
                org_id=row.org_id,
                joined_at=row.joined_at,
                imported=True,
                id_blind_index=blind,
                employer_credit_code=p.employer_credit_code,
                employer_name=p.employer_name,
                employment_type=p.employment_type,
                household_type=p.household_type,
                name_enc=enc["name"],
                id_number_enc=enc["id_number"],
                phone_enc=enc["phone"],
            )
            streams.append((Stream(member_stream(member_id)), domain.joined_events(joined)))
        # each kind of event in one run (every stream's first event, then every stream's second), so the read
        # models take each kind set-wise; within a stream the order stays
        depth = max(len(events) for _, events in streams)
        batch = [(stream, events[i : i + 1]) for i in range(depth) for stream, events in streams if i < len(events)]
        await self.store.append_streams(conn, batch, meta)
        return len(new)

    # --- members ---

    async def suspend(self, conn: asyncpg.Connection, member_id: UUID, reason: str, meta: Metadata) -> None:
        stream, member = await self.member(conn, member_id)
        await self.store.append(conn, stream, domain.suspend(member, reason), meta)

    async def reinstate(self, conn: asyncpg.Connection, member_id: UUID, reason: str, meta: Metadata) -> None:
        stream, member = await self.member(conn, member_id)
        await self.store.append(conn, stream, domain.reinstate(member, reason), meta)

    async def terminate(self, conn: asyncpg.Connection, member_id: UUID, reason: str, meta: Metadata) -> None:
        stream, member = await self.member(conn, member_id)
        await self.store.append(conn, stream, domain.terminate(member, reason), meta)

    async def change_organization(
        self, conn: asyncpg.Connection, member_id: UUID, to_org_id: UUID, transfer_id: UUID | None, meta: Metadata
    ) -> None:
        stream, member = await self.member(conn, member_id)
        _, to = await self.organization(conn, to_org_id)
        events = domain.change_organization(member, to, transfer_id)
        await self.store.append(conn, stream, events, meta)
        await self._suggest_founding(conn, events, meta)

    async def erase_personal_data(self, conn: asyncpg.Connection, member_id: UUID, meta: Metadata) -> None:
        stream, member = await self.member(conn, member_id)
        await self.store.append(conn, stream, domain.erase_personal_data(member), meta)
        await self.vault.erase(conn, member_id)

    # --- founding suggestions ---

    async def _suggest_founding(self, conn: asyncpg.Connection, events: list[DomainEvent], meta: Metadata) -> None:
        """When a federation or joint union holds `threshold` active members of one employer, say so once."""
        for event in events:
            if isinstance(event, MemberJoined):
                org_id = event.org_id
            elif isinstance(event, MemberOrganizationChanged):
                org_id = event.to_org_id
            else:
                continue
            count = await queries.employer_count(conn, event.member_id, org_id)
            if count is None:
                continue
            suggestion = domain.suggest_founding(count, self.founding_threshold)
            if suggestion:
                stream_id = f"founding-{org_id}-{count.employer_credit_code}"
                await self.store.append(conn, Stream(stream_id), suggestion, meta)
