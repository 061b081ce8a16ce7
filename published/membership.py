"""Membership's vocabulary for its consumers: a member's status and what each of membership's events does to it.

The rule every consumer follows (the directory, membership's own read models, dues, the card service, feedback's
requests): a status event sets the status its name says, and an ended membership (terminated, or lapsed: 视为自动退会)
stays ended whatever arrives after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

SOURCE = "/union/membership"
TOPIC = "union.membership.v1"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETAINED = "retained"  # 保留会籍: retired, unemployed, unit closed: still a member, paying no dues
    LAPSED = "lapsed"  # 视为自动退会, after a staff decision on the dues service's six-month case
    TERMINATED = "terminated"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset({MemberStatus.TERMINATED, MemberStatus.LAPSED})

# membership's event -> the status it leaves the member in
STATUS_AFTER: Mapping[str, MemberStatus] = {
    "MemberJoined": MemberStatus.ACTIVE,
    "MemberSuspended": MemberStatus.SUSPENDED,
    "MemberReinstated": MemberStatus.ACTIVE,
    "MemberTerminated": MemberStatus.TERMINATED,
    "MembershipRetained": MemberStatus.RETAINED,
    "MembershipRestored": MemberStatus.ACTIVE,
    "MembershipLapsed": MemberStatus.LAPSED,
}

# the events that change a member's status after joining (joining is the member's first event)
STATUS_CHANGES: Mapping[str, MemberStatus] = {name: s for name, s in STATUS_AFTER.items() if name != "MemberJoined"}

# a member's move to another organisation (a transfer completed, or retained membership held elsewhere)
MOVED = "MemberOrganizationChanged"

# every event about a member that a consumer following members needs: the status events and the move
MEMBER_EVENTS = frozenset({*STATUS_AFTER, MOVED})


def next_status(current: MemberStatus | None, event_name: str) -> MemberStatus | None:
    """The member's status after `event_name` (None before they joined); an ended membership stays ended."""
    if current is not None and current.ended:
        return current
    return STATUS_AFTER.get(event_name, current)
