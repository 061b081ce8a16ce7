"""Feedback's deciders: given events, when a command, then events (or an error). Pure: no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.feedback import domain
from services.feedback.events import (
    CampaignClosed,
    CampaignOpened,
    RatingGiven,
    RequestAnswered,
    RequestRaised,
    ResultsPublished,
)
from shared.errors import DomainError, InvalidInputError, NotFoundError
from shared.events import DomainEvent

NOW = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def code(exc: pytest.ExceptionInfo[DomainError]) -> str:
    return exc.value.code


# --- ratings ---


def redemption(member_id: uuid.UUID, **overrides: object) -> domain.Redemption:
    fields: dict[str, object] = {
        "redemption_id": uuid.uuid4(),
        "member_id": member_id,
        "item_id": uuid.uuid4(),
        "category": "legal_aid",
        "org_id": uuid.uuid4(),
        "redeemed_at": datetime(2025, 10, 31, 17, 0, tzinfo=UTC),
        **overrides,
    }
    return domain.Redemption(**fields)  # type: ignore[arg-type]


def test_a_member_rates_their_redemption_once() -> None:
    member = uuid.uuid4()
    given = redemption(member)
    cmd = domain.GiveRating(given.redemption_id, member, 4, "  耐心  ")
    [event] = domain.give_rating(cmd, given, already_rated=False)
    assert isinstance(event, RatingGiven)
    assert (event.score, event.comment, event.category, event.org_id) == (4, "耐心", "legal_aid", given.org_id)
    # 17:00 UTC on 31 October is 1 November in China Standard Time
    assert event.month == "2025-11"
    assert event.partition_key() == str(given.redemption_id)
    assert "comment" not in event.public_data()  # free text stays in the service
    with pytest.raises(DomainError) as exc:
        domain.give_rating(domain.GiveRating(given.redemption_id, member, 5), given, already_rated=True)
    assert code(exc) == "already_rated"


@pytest.mark.parametrize(
    ("change", "expected"),
    [("someone_else", "not_your_redemption"), ("reversed", "redemption_reversed"), ("unknown", "redemption_not_found")],
)
def test_what_cannot_be_rated(change: str, expected: str) -> None:
    member = uuid.uuid4()
    given: domain.Redemption | None = redemption(member, reversed=change == "reversed")
    cmd = domain.GiveRating(uuid.uuid4(), uuid.uuid4() if change == "someone_else" else member, 3)
    if change == "unknown":
        given = None
    with pytest.raises(DomainError) as exc:
        domain.give_rating(cmd, given, already_rated=False)
    assert code(exc) == expected
    assert isinstance(exc.value, NotFoundError) == (change == "unknown")


@pytest.mark.parametrize("score", [0, 6, -1])
def test_a_score_outside_one_to_five_is_invalid(score: int) -> None:
    member = uuid.uuid4()
    given = redemption(member)
    with pytest.raises(InvalidInputError) as exc:
        domain.give_rating(domain.GiveRating(given.redemption_id, member, score), given, already_rated=False)
    assert exc.value.field == "score"


# --- campaigns ---


def open_cmd(**overrides: object) -> domain.OpenCampaign:
    fields: dict[str, object] = {
        "campaign_id": uuid.uuid4(),
        "title": "2025 年度评议",
        "subject_type": domain.SubjectType.CADRE,
        "subject_id": uuid.uuid4(),
        "electorate_org_id": uuid.uuid4(),
        "electorate": domain.Electorate.MEMBERS,
        "opens_at": NOW - HOUR,
        "closes_at": NOW + 24 * HOUR,
        **overrides,
    }
    return domain.OpenCampaign(**fields)  # type: ignore[arg-type]


def opened(voters: int = 6, **overrides: object) -> tuple[CampaignOpened, list[uuid.UUID]]:
    electorate = [uuid.uuid4() for _ in range(voters)]
    [event] = domain.open_campaign(
        open_cmd(**overrides), NOW, electorate_org_known=True, subject_known=True, voters=electorate
    )
    assert isinstance(event, CampaignOpened)
    return event, electorate


def state(*events: DomainEvent) -> domain.Campaign:
    folded = domain.fold(list(events))
    assert isinstance(folded, domain.Campaign)
    return folded


def test_opening_fixes_the_electorate_sorted_and_keeps_it_off_the_topic() -> None:
    voters = [uuid.uuid4() for _ in range(6)]
    [event] = domain.open_campaign(
        open_cmd(), NOW, electorate_org_known=True, subject_known=False, voters=[*voters, voters[0]]
    )
    assert isinstance(event, CampaignOpened)
    assert event.eligible == 6
    assert list(event.eligible_voters) == sorted(voters)
    assert event.min_turnout == 5
    public = event.public_data()
    assert "eligible_voters" not in public
    assert public["eligible"] == 6
    assert event.partition_key() == str(event.campaign_id)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"closes_at": NOW - 2 * HOUR}, "closes_at"),  # before it opens
        ({"opens_at": NOW - 3 * HOUR, "closes_at": NOW - HOUR}, "closes_at"),  # already over
        ({"min_turnout": 2}, "min_turnout"),
        ({"subject_type": domain.SubjectType.ORGANIZATION}, "subject_id"),  # an organisation nobody knows
    ],
)
def test_invalid_campaigns(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        domain.open_campaign(
            open_cmd(**overrides),
            NOW,
            electorate_org_known=True,
            subject_known=False,
            voters=[uuid.uuid4() for _ in range(9)],
        )
    assert exc.value.field == field


def test_an_electorate_smaller_than_the_minimum_turnout_or_unknown_is_refused() -> None:
    with pytest.raises(DomainError) as exc:
        domain.open_campaign(
            open_cmd(min_turnout=5),
            NOW,
            electorate_org_known=True,
            subject_known=True,
            voters=[uuid.uuid4() for _ in range(4)],
        )
    assert code(exc) == "electorate_too_small"
    with pytest.raises(NotFoundError) as missing:
        domain.open_campaign(open_cmd(), NOW, electorate_org_known=False, subject_known=True, voters=[])
    assert missing.value.code == "organization_not_found"


def test_one_eligible_voter_one_ballot_and_the_ballot_names_no_voter() -> None:
    event, _ = opened()
    campaign = state(event)
    ballot = domain.cast_ballot(campaign, NOW, eligible=True, already_voted=False, score=4, comment=" 很好 ")
    assert ballot == domain.Ballot(4, "很好")
    assert set(vars(ballot)) == {"score", "comment"}  # nothing that could name or order the voter
    assert not isinstance(ballot, DomainEvent)
    for eligible, already, expected in [(False, False, "not_eligible"), (True, True, "already_voted")]:
        with pytest.raises(DomainError) as exc:
            domain.cast_ballot(campaign, NOW, eligible=eligible, already_voted=already, score=4, comment=None)
        assert code(exc) == expected


def test_no_ballot_before_the_opening_after_the_deadline_or_after_an_early_close() -> None:
    event, _ = opened(opens_at=NOW + HOUR, closes_at=NOW + 2 * HOUR)
    campaign = state(event)
    for when in (NOW, NOW + 2 * HOUR, NOW + 3 * HOUR):
        with pytest.raises(DomainError) as exc:
            domain.cast_ballot(campaign, when, eligible=True, already_voted=False, score=3, comment=None)
        assert code(exc) == "campaign_closed"
    assert domain.phase(campaign, NOW) is domain.Phase.UPCOMING
    assert domain.phase(campaign, NOW + HOUR) is domain.Phase.OPEN
    closed = state(event, *domain.close_campaign(campaign, NOW + HOUR, 0, None))
    with pytest.raises(DomainError) as exc:
        domain.cast_ballot(closed, NOW + HOUR, eligible=True, already_voted=False, score=3, comment=None)
    assert code(exc) == "campaign_closed"


def test_a_ballot_is_checked_like_any_input() -> None:
    campaign = state(opened()[0])
    with pytest.raises(InvalidInputError) as exc:
        domain.cast_ballot(campaign, NOW, eligible=True, already_voted=False, score=9, comment=None)
    assert exc.value.field == "score"
    with pytest.raises(InvalidInputError) as exc:
        domain.cast_ballot(campaign, NOW, eligible=True, already_voted=False, score=2, comment="长" * 501)
    assert exc.value.field == "comment"


def test_closing_early_with_enough_turnout_publishes_the_results() -> None:
    event, _ = opened()
    campaign = state(event)
    with pytest.raises(DomainError) as exc:
        domain.results(campaign, NOW)
    assert code(exc) == "campaign_open"
    events = domain.close_campaign(campaign, NOW, 5, domain.Tally({5: 3, 4: 1, 2: 1}))
    closed, published = events
    assert isinstance(closed, CampaignClosed)
    assert isinstance(published, ResultsPublished)
    assert (closed.reason, closed.closed_at, closed.turnout, closed.eligible, closed.results_shown) == (
        "early",
        NOW,
        5,
        6,
        True,
    )
    assert (published.turnout, published.average) == (5, 4.2)  # (3*5 + 4 + 2) / 5
    assert published.distribution == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 3}
    after = state(event, *events)
    assert domain.results(after, NOW) == published
    with pytest.raises(DomainError) as exc:
        domain.close_campaign(after, NOW, 0, None)
    assert code(exc) == "campaign_closed"


def test_below_the_minimum_turnout_nothing_is_published_ever() -> None:
    event, _ = opened()
    campaign = state(event)
    later = event.closes_at + HOUR
    assert domain.phase(campaign, later) is domain.Phase.CLOSED  # the deadline closes it, recorded or not
    with pytest.raises(DomainError) as exc:
        domain.results(campaign, later)  # nobody recorded the close yet
    assert code(exc) == "campaign_open"
    [closed] = domain.close_campaign(campaign, later, 4, None)  # the box is never opened
    assert isinstance(closed, CampaignClosed)
    assert (closed.reason, closed.closed_at, closed.turnout, closed.results_shown) == (
        "deadline",
        event.closes_at,
        4,
        False,
    )
    with pytest.raises(DomainError) as exc:
        domain.results(state(event, closed), later)
    assert code(exc) == "turnout_too_low"


def test_results_are_published_only_from_a_tally_that_matches_the_register() -> None:
    campaign = state(opened()[0])
    for tally in (None, domain.Tally({5: 4})):  # not opened, or one ballot short of the five who voted
        with pytest.raises(ValueError, match="register"):
            domain.close_campaign(campaign, NOW, 5, tally)
    with pytest.raises(InvalidInputError) as exc:
        domain.cast_ballot(campaign, NOW, eligible=True, already_voted=False, score=2, comment="\ud800")
    assert exc.value.field == "comment"


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=200))
def test_a_tally_adds_up(scores: list[int]) -> None:
    tally = domain.Tally({s: scores.count(s) for s in set(scores)})
    assert tally.turnout == len(scores) == sum(tally.distribution.values())
    assert tally.average == round(sum(scores) / len(scores), 2)
    assert 1 <= tally.average <= 5


# --- requests ---


def test_a_request_goes_to_the_members_organisation_and_is_answered_once() -> None:
    member = domain.MemberRef(uuid.uuid4(), uuid.uuid4(), domain.MemberStatus.SUSPENDED)
    cmd = domain.RaiseRequest(uuid.uuid4(), member.member_id, "wages", "拖欠工资三个月")
    [raised] = domain.raise_request(cmd, member)
    assert isinstance(raised, RequestRaised)
    assert (raised.org_id, raised.partition_key()) == (member.org_id, str(member.member_id))
    assert "text" not in raised.public_data()
    request = domain.fold([raised])
    assert isinstance(request, domain.Request)
    [answered] = domain.answer_request(request, "staff-7", "已协调企业补发")
    assert isinstance(answered, RequestAnswered)
    assert answered.org_id == member.org_id
    with pytest.raises(DomainError) as exc:
        domain.answer_request(domain.fold([raised, answered]), "staff-7", "again")  # type: ignore[arg-type]
    assert code(exc) == "request_answered"


def test_a_request_needs_a_known_member_whose_membership_has_not_ended() -> None:
    cmd = domain.RaiseRequest(uuid.uuid4(), uuid.uuid4(), "safety", "x")
    with pytest.raises(NotFoundError):
        domain.raise_request(cmd, None)
    ended = domain.MemberRef(cmd.member_id, uuid.uuid4(), domain.MemberStatus.TERMINATED)
    with pytest.raises(DomainError) as exc:
        domain.raise_request(cmd, ended)
    assert code(exc) == "member_terminated"
