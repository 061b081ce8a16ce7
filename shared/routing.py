"""Which union takes a worker: the employer's own union, else the nearest one covering the place of work (属地就近)
or the employer's industry (行业就近). Pure: no I/O. One rule for transfer (a regional employment change) and
membership (where a worker may join)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Candidate:
    """An organisation that might take a worker whose employment changed."""

    org_id: UUID
    type: str
    region_code: str
    subtype: str | None = None
    credit_code: str | None = None
    industry: str | None = None
    accepts_members: bool = True
    active: bool = True


def region_levels(region_code: str) -> list[str]:
    """The division and the divisions above it: county 310115, prefecture 310100, province 310000."""
    levels = [region_code, region_code[:4] + "00", region_code[:2] + "0000"]
    return list(dict.fromkeys(levels))


def choose_target(
    employer_credit_code: str, region_code: str, industry: str | None, candidates: Sequence[Candidate]
) -> UUID | None:
    """The employer's own union; else the nearest federation or joint union covering the place (属地就近),
    an industry federation of the employer's industry before a regional one (行业就近) at each level."""
    usable = sorted((c for c in candidates if c.active and c.accepts_members), key=lambda c: str(c.org_id))
    for c in usable:
        if c.type == "enterprise" and c.credit_code == employer_credit_code:
            return c.org_id
    wanted_industry = industry.strip().casefold() if industry else None

    def rank(c: Candidate) -> int | None:
        if c.type == "federation" and c.subtype == "industry":
            matches = wanted_industry is not None and (c.industry or "").strip().casefold() == wanted_industry
            return 0 if matches else None
        if c.type == "federation" and c.subtype == "regional":
            return 1
        if c.type == "joint":
            return 2
        return None

    for level in region_levels(region_code):
        ranked = [(r, c) for c in usable if c.region_code == level and (r := rank(c)) is not None]
        if ranked:
            return min(ranked, key=lambda rc: rc[0])[1].org_id
    return None
