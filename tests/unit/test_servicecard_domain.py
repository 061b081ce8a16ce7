"""Service card rules as given events / when command / then events (or error)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.luhn import is_valid as is_luhn_valid

from services.servicecard import domain
from services.servicecard.domain import CardStatus, MemberFact, MemberStatus, Redeem, ServiceCategory
from services.servicecard.events import (
    BenefitRedeemed,
    CardFrozen,
    CardIssued,
    CardOrganizationChanged,
    CardReissued,
    CardRevoked,
    CardUnfrozen,
    OpeningHours,
    RedemptionReversed,
    ServiceItemPublished,
    ServiceItemWithdrawn,
    ServicePoint,
    Weekday,
)
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent

NOW = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
MEMBER = uuid.uuid4()
ORG, OTHER_ORG = uuid.uuid4(), uuid.uuid4()
ITEM = uuid.uuid4()
CARD_NO = domain.card_number_from("12345678901234567")
NEW_NO = domain.card_number_from("76543210987654321")


def names(events: Sequence[DomainEvent]) -> list[str]:
    return [e.event_name() for e in events]


def issued(card_no: str = CARD_NO, org: uuid.UUID = ORG) -> CardIssued:
    return CardIssued(
        member_id=MEMBER,
        member_no="310115-00000001",
        card_no=card_no,
        card_no_masked=domain.mask_card_number(card_no),
        org_id=org,
        issued_at=NOW,
    )


def card(*more: DomainEvent) -> domain.Card | None:
    return domain.fold_card([issued(), *more])


def fact(sequence: int, name: str, org: uuid.UUID | None = None) -> MemberFact:
    return MemberFact(
        sequence=sequence,
        arrival=0,
        name=name,
        org_id=org,
        member_no="310115-00000001" if name == "MemberJoined" else None,
    )


def member(*facts: MemberFact) -> domain.MemberState:
    return domain.fold_member(facts)


def published(quota: int | None = 1, category: ServiceCategory = ServiceCategory.LEGAL_AID) -> ServiceItemPublished:
    return ServiceItemPublished(
        item_id=ITEM,
        name="劳动争议法律咨询",
        category=category,
        provider="浦东法律援助中心",
        standard="一次不少于30分钟",
        quota_per_year=quota,
    )


def item(*events: DomainEvent, quota: int | None = 1) -> domain.Item | None:
    return domain.fold_item([published(quota), *events])


def redeemed(units: int = 1, redemption_id: uuid.UUID | None = None) -> BenefitRedeemed:
    return BenefitRedeemed(
        redemption_id=redemption_id or uuid.uuid4(),
        member_id=MEMBER,
        card_no=CARD_NO,
        card_no_masked=domain.mask_card_number(CARD_NO),
        item_id=ITEM,
        category="legal_aid",
        org_id=ORG,
        units=units,
        year=2025,
        redeemed_at=NOW,
    )


def redeem_cmd(card_no: str = CARD_NO, units: int = 1) -> Redeem:
    return Redeem(redemption_id=uuid.uuid4(), card_no=card_no, item_id=ITEM, units=units)


# --- card numbers ---


@given(st.integers(0, 10**17 - 1))
def test_card_numbers_are_19_luhn_valid_digits(n: int) -> None:
    number = domain.card_number_from(f"{n:017d}")
    assert len(number) == 19
    assert number.isdigit()
    assert is_luhn_valid(number)
    assert domain.validate_card_number(number) == number


@given(st.integers(0, 10**17 - 1), st.integers(0, 18), st.integers(1, 9))
def test_any_single_wrong_digit_is_caught(n: int, position: int, shift: int) -> None:
    number = domain.card_number_from(f"{n:017d}")
    wrong = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    assert not is_luhn_valid(wrong)


def test_a_card_number_is_read_with_or_without_spaces() -> None:
    assert domain.validate_card_number("6222021234567890128") == "6222021234567890128"
    assert domain.validate_card_number("6222 0212 3456 7890 128") == "6222021234567890128"


@pytest.mark.parametrize("wrong", "012345679")
def test_a_card_number_with_a_wrong_check_digit_names_the_right_one(wrong: str) -> None:
    with pytest.raises(ValueError, match=f"check digit should be 8, not {wrong}"):
        domain.validate_card_number("622202123456789012" + wrong)  # 6222021234567890128 is the valid one


@pytest.mark.parametrize("value", ["79927398713", "62220212345678901280", "622202123456789012X", "", "６" * 19])
def test_a_card_number_is_19_ascii_digits(value: str) -> None:
    with pytest.raises(ValueError, match="19 digits"):
        domain.validate_card_number(value)


def test_new_card_numbers_are_valid_and_unpredictable() -> None:
    numbers = {domain.new_card_number() for _ in range(1000)}
    assert len(numbers) == 1000
    assert all(len(n) == 19 and is_luhn_valid(n) and n.startswith(domain.CARD_PREFIX) for n in numbers)
    # no two numbers drawn one after the other are neighbours, as a counter's would be
    ordered = sorted(int(n[:-1]) for n in numbers)
    assert min(b - a for a, b in pairwise(ordered)) > 1


def test_a_card_number_is_masked_on_topics() -> None:
    assert domain.mask_card_number(CARD_NO) == CARD_NO[:4] + "*" * 11 + CARD_NO[-4:]
    assert "card_no" not in issued().public_data()
    assert issued().public_data()["card_no_masked"].endswith(CARD_NO[-4:])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("123", "19 digits"),
        (CARD_NO[:-1] + "x", "19 digits"),
        (CARD_NO[:-1] + str((int(CARD_NO[-1]) + 1) % 10), "check digit"),
    ],
)
def test_a_malformed_card_number_names_the_field(value: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        domain.parse_card_number(value)
    assert exc.value.field == "card_no"
    assert reason in exc.value.message


# --- the card follows the member ---


def test_given_a_join_when_followed_then_a_card_is_issued_in_the_members_organisation() -> None:
    events = domain.follow_member(None, MEMBER, member(fact(1, "MemberJoined", ORG)), NEW_NO, NOW)
    assert names(events) == ["CardIssued"]
    assert isinstance(events[0], CardIssued)
    assert (events[0].card_no, events[0].org_id, events[0].member_no) == (NEW_NO, ORG, "310115-00000001")


def test_given_no_join_yet_when_followed_then_nothing_happens() -> None:
    state = member(fact(2, "MemberSuspended"))
    assert not domain.needs_card(None, state)
    assert domain.follow_member(None, MEMBER, state, None, NOW) == []


def test_given_a_suspension_that_arrived_before_the_join_then_the_card_is_issued_frozen() -> None:
    state = member(fact(2, "MemberSuspended"), fact(1, "MemberJoined", ORG))
    assert state.status is MemberStatus.SUSPENDED
    events = domain.follow_member(None, MEMBER, state, NEW_NO, NOW)
    assert names(events) == ["CardIssued", "CardFrozen"]
    folded = domain.fold_card(events)
    assert folded is not None
    assert folded.status is CardStatus.FROZEN


def test_member_events_are_folded_in_their_streams_order_not_arrival_order() -> None:
    state = member(
        fact(3, "MemberReinstated"),
        fact(1, "MemberJoined", ORG),
        fact(2, "MemberSuspended"),
        fact(4, "MemberOrganizationChanged", OTHER_ORG),
    )
    assert (state.status, state.org_id) == (MemberStatus.ACTIVE, OTHER_ORG)
    assert (
        member(fact(3, "MemberReinstated"), fact(2, "MemberTerminated"), fact(1, "MemberJoined", ORG)).status
        is MemberStatus.TERMINATED
    )


def test_given_a_termination_before_the_join_then_the_card_is_issued_revoked() -> None:
    events = domain.follow_member(
        None, MEMBER, member(fact(1, "MemberJoined", ORG), fact(2, "MemberTerminated")), NEW_NO, NOW
    )
    assert names(events) == ["CardIssued", "CardRevoked"]


@pytest.mark.parametrize(
    ("given", "facts", "then"),
    [
        ((), [fact(2, "MemberSuspended")], ["CardFrozen"]),
        (
            (CardFrozen(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="x"),),
            [fact(2, "MemberSuspended"), fact(3, "MemberReinstated")],
            ["CardUnfrozen"],
        ),
        ((), [fact(2, "MemberTerminated")], ["CardRevoked"]),
        ((), [fact(2, "MemberOrganizationChanged", OTHER_ORG)], ["CardOrganizationChanged"]),
        (
            (),
            [fact(2, "MemberOrganizationChanged", OTHER_ORG), fact(3, "MemberSuspended")],
            ["CardOrganizationChanged", "CardFrozen"],
        ),
        (
            (CardRevoked(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="x"),),
            [fact(2, "MemberTerminated"), fact(3, "MemberReinstated")],
            [],
        ),
        ((), [], []),  # a redelivered join changes nothing
    ],
)
def test_given_a_card_when_the_member_changes_then_the_card_follows(
    given: tuple[DomainEvent, ...],
    facts: list[MemberFact],
    then: list[str],
) -> None:
    state = member(fact(1, "MemberJoined", ORG), *facts)
    assert names(domain.follow_member(card(*given), MEMBER, state, None, NOW)) == then


def test_an_organisation_change_keeps_the_card_number() -> None:
    [moved] = domain.follow_member(
        card(), MEMBER, member(fact(1, "MemberJoined", ORG), fact(2, "MemberOrganizationChanged", OTHER_ORG)), None, NOW
    )
    assert isinstance(moved, CardOrganizationChanged)
    after = card(moved)
    assert after is not None
    assert (after.card_no, after.org_id, moved.from_org_id) == (CARD_NO, OTHER_ORG, ORG)


# --- reissue ---


def test_given_an_active_card_when_reissued_then_a_new_number_replaces_the_old() -> None:
    [event] = domain.reissue(card(), CARD_NO, NEW_NO, "lost", NOW)
    assert isinstance(event, CardReissued)
    assert (event.old_card_no, event.card_no) == (CARD_NO, NEW_NO)
    after = card(event)
    assert after is not None
    assert (after.card_no, after.status, after.replaced) == (NEW_NO, CardStatus.ACTIVE, frozenset({CARD_NO}))


def test_a_frozen_card_is_reissued_frozen() -> None:
    frozen = CardFrozen(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="x")
    after = card(frozen, *domain.reissue(card(frozen), CARD_NO, NEW_NO, "lost", NOW))
    assert after is not None
    assert (after.card_no, after.status) == (NEW_NO, CardStatus.FROZEN)


@pytest.mark.parametrize(
    "given",
    [
        (CardRevoked(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="terminated"),),
        (
            CardReissued(
                member_id=MEMBER,
                old_card_no=CARD_NO,
                old_card_no_masked="",
                card_no=NEW_NO,
                card_no_masked="",
                org_id=ORG,
                reason="lost",
                reissued_at=NOW,
            ),
        ),
    ],
)
def test_a_revoked_or_replaced_number_cannot_be_reissued(given: tuple[DomainEvent, ...]) -> None:
    with pytest.raises(DomainError) as exc:
        domain.reissue(card(*given), CARD_NO, domain.new_card_number(), "lost", NOW)
    assert exc.value.code == "card_not_active"


# --- the catalogue ---


def hours(opens: str, closes: str, *days: str) -> OpeningHours:
    return OpeningHours(
        days=tuple(Weekday(d) for d in days or ("mon",)),
        opens=time.fromisoformat(opens),
        closes=time.fromisoformat(closes),
    )


def point(opening: Sequence[OpeningHours] = (), off_peak: Sequence[OpeningHours] = ()) -> ServicePoint:
    return ServicePoint(
        name="职工服务中心", address="浦东新区世纪大道1号", opening_hours=tuple(opening), off_peak_hours=tuple(off_peak)
    )


def publish(quota: int | None = 2, *points: ServicePoint) -> list[DomainEvent]:
    return domain.publish_item(
        domain.PublishItem(
            item_id=ITEM,
            name="体检",
            category=ServiceCategory.MEDICAL,
            provider="社区医院",
            standard="每年一次",
            quota_per_year=quota,
            service_points=points,
        )
    )


def test_an_item_with_regular_and_off_peak_hours_is_published() -> None:
    weekday = hours("09:00", "17:00", "mon", "tue", "wed", "thu", "fri")
    [event] = publish(2, point([weekday], [hours("18:00", "21:00", "mon", "wed"), hours("09:00", "12:00", "sat")]))
    assert isinstance(event, ServiceItemPublished)
    assert event.service_points[0].off_peak_hours[1].days == (Weekday.SAT,)


@pytest.mark.parametrize(
    ("points", "quota", "field", "reason"),
    [
        ([point([hours("17:00", "09:00")])], 1, "service_points.0.opening_hours.0.closes", "not after it opens"),
        ([point([hours("09:00", "17:00", "mon", "mon")])], 1, "service_points.0.opening_hours.0.days", "mon"),
        ([point()], 1, "service_points.0.opening_hours", "needs its opening hours"),
        (
            [point([hours("09:00", "17:00")]), point([hours("09:00", "12:00"), hours("11:00", "13:00")])],
            1,
            "service_points.1.opening_hours.1",
            "overlaps opening_hours.0 on mon",
        ),
        (
            [point([hours("09:00", "17:00", "mon", "tue")], [hours("16:00", "20:00", "tue")])],
            1,
            "service_points.0.off_peak_hours.0",
            "outside the regular opening hours",
        ),
        ([], 0, "quota_per_year", "at least 1"),
    ],
)
def test_invalid_items_name_the_field(points: list[ServicePoint], quota: int, field: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        publish(quota, *points)
    assert exc.value.field == field
    assert reason in exc.value.message


def test_back_to_back_windows_do_not_overlap() -> None:
    assert publish(None, point([hours("09:00", "12:00")], [hours("12:00", "14:00")]))


def test_a_withdrawn_item_cannot_be_withdrawn_again_or_redeemed() -> None:
    withdrawn = ServiceItemWithdrawn(item_id=ITEM, reason="provider left")
    assert names(domain.withdraw_item(item(), ITEM, "provider left")) == ["ServiceItemWithdrawn"]
    with pytest.raises(DomainError) as exc:
        domain.withdraw_item(item(withdrawn), ITEM, "again")
    assert exc.value.code == "item_withdrawn"
    with pytest.raises(DomainError) as exc:
        domain.redeem(card(), item(withdrawn), domain.Usage(), redeem_cmd(), NOW)
    assert exc.value.code == "item_withdrawn"
    with pytest.raises(NotFoundError):
        domain.withdraw_item(None, ITEM, "x")


# --- redemptions and quotas ---


def test_given_quota_left_when_redeemed_then_the_benefit_is_spent_for_this_year() -> None:
    [event] = domain.redeem(card(), item(quota=2), domain.fold_usage([redeemed()]), redeem_cmd(), NOW)
    assert isinstance(event, BenefitRedeemed)
    assert (event.member_id, event.org_id, event.category, event.year, event.units) == (
        MEMBER,
        ORG,
        "legal_aid",
        2025,
        1,
    )


@pytest.mark.parametrize(("used", "units"), [(1, 1), (0, 2), (3, 1)])
def test_given_the_quota_spent_when_redeemed_then_quota_exhausted(used: int, units: int) -> None:
    usage = domain.fold_usage([redeemed() for _ in range(used)])
    with pytest.raises(DomainError) as exc:
        domain.redeem(card(), item(quota=1), usage, redeem_cmd(units=units), NOW)
    assert exc.value.code == "quota_exhausted"


def test_an_item_without_a_quota_is_never_exhausted() -> None:
    usage = domain.fold_usage([redeemed(units=50)])
    assert domain.redeem(card(), item(quota=None), usage, redeem_cmd(units=100), NOW)


@pytest.mark.parametrize(
    ("given", "presented"),
    [
        ((CardFrozen(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="x"),), CARD_NO),
        ((CardRevoked(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="x"),), CARD_NO),
        (
            (
                CardReissued(
                    member_id=MEMBER,
                    old_card_no=CARD_NO,
                    old_card_no_masked="",
                    card_no=NEW_NO,
                    card_no_masked="",
                    org_id=ORG,
                    reason="lost",
                    reissued_at=NOW,
                ),
            ),
            CARD_NO,
        ),
    ],
)
def test_a_frozen_revoked_or_replaced_card_cannot_redeem(given: tuple[DomainEvent, ...], presented: str) -> None:
    with pytest.raises(DomainError) as exc:
        domain.redeem(card(*given), item(), domain.Usage(), redeem_cmd(presented), NOW)
    assert exc.value.code == "card_not_active"


def test_after_an_unfreeze_and_a_reissue_the_new_number_redeems() -> None:
    given = (
        CardFrozen(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="x"),
        CardUnfrozen(member_id=MEMBER, card_no=CARD_NO, card_no_masked="", reason="x"),
        *domain.reissue(card(), CARD_NO, NEW_NO, "lost", NOW),
    )
    [event] = domain.redeem(card(*given), item(), domain.Usage(), redeem_cmd(NEW_NO), NOW)
    assert isinstance(event, BenefitRedeemed)
    assert event.card_no == NEW_NO


def test_unknown_card_or_item_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        domain.redeem(None, item(), domain.Usage(), redeem_cmd(), NOW)
    with pytest.raises(NotFoundError):
        domain.redeem(card(), None, domain.Usage(), redeem_cmd(), NOW)


def test_given_a_redemption_when_reversed_then_the_quota_is_given_back_once() -> None:
    spent = redeemed()
    usage = domain.fold_usage([spent])
    with pytest.raises(DomainError):
        domain.redeem(card(), item(quota=1), usage, redeem_cmd(), NOW)
    [reversal] = domain.reverse(usage, spent.redemption_id, MEMBER, ITEM, 2025, "wrong member", NOW)
    assert isinstance(reversal, RedemptionReversed)
    assert reversal.units == 1
    after = domain.fold_usage([spent, reversal])
    assert after.used == 0
    assert domain.redeem(card(), item(quota=1), after, redeem_cmd(), NOW)
    with pytest.raises(DomainError) as exc:
        domain.reverse(after, spent.redemption_id, MEMBER, ITEM, 2025, "again", NOW)
    assert exc.value.code == "already_reversed"
    with pytest.raises(NotFoundError):
        domain.reverse(after, uuid.uuid4(), MEMBER, ITEM, 2025, "x", NOW)


@given(st.lists(st.tuples(st.integers(1, 3), st.booleans()), max_size=30), st.integers(1, 10))
def test_used_never_exceeds_the_quota_whatever_the_sequence(attempts: list[tuple[int, bool]], quota: int) -> None:
    """Redeem and reverse in any order: every accepted redemption keeps `used` within the quota."""
    events: list[DomainEvent] = []
    for units, reverse_last in attempts:
        usage = domain.fold_usage(events)
        live = [r for r, s in usage.redemptions.items() if not s.reversed]
        if reverse_last and live:
            events += domain.reverse(usage, live[-1], MEMBER, ITEM, 2025, "x", NOW)
            continue
        if usage.used + units > quota:
            with pytest.raises(DomainError, match="left this year"):
                domain.redeem(card(), item(quota=quota), usage, redeem_cmd(units=units), NOW)
        else:
            events += domain.redeem(card(), item(quota=quota), usage, redeem_cmd(units=units), NOW)
        assert domain.fold_usage(events).used <= quota


def test_the_quota_year_and_usage_month_are_china_standard_time() -> None:
    new_years_eve = datetime(2024, 12, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 January in Beijing
    assert domain.quota_year(new_years_eve) == 2025
    assert domain.usage_month(new_years_eve) == "2025-01"
    assert domain.remaining(3, 5) == 0
    assert domain.remaining(None, 5) is None
