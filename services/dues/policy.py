"""Dues policies as dated data: which rules were in force for a month, and what a month's dues come to.

Every number is a policy value with an effective date; the defaults cite where they come from. A policy only
takes effect from a month that has not begun when it is set, so no month already assessed, or open for
assessment, is ever re-read under other rules (the past is never rewritten)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from shared.errors import DomainError, InvalidInputError


class Rounding(StrEnum):
    FEN = "fen_half_up"  # to 0.01 yuan
    JIAO = "jiao_half_up"  # to 0.1 yuan
    YUAN = "yuan_half_up"  # to 1 yuan


_UNIT = {Rounding.FEN: Decimal("0.01"), Rounding.JIAO: Decimal("0.1"), Rounding.YUAN: Decimal(1)}


@dataclass(frozen=True)
class Policy:
    effective_from: date  # the first day of a month
    # 0.5% of the monthly wage: 全总 1978 notice on collecting dues (工发[1978]101号) 一,
    # under 中国工会章程 第四条(六)
    # (members pay dues monthly, 按月交纳会费)
    rate: Decimal = Decimal("0.005")
    # 工发[1978]101号 一: 工资尾数不足十元的不计交会费 (the wage's remainder under 10 yuan is not counted)
    base_step: Decimal = Decimal(10)
    rounding: Rounding = Rounding.FEN  # not set by the texts; a local choice, hence a policy value
    # 中国工会章程, 第一章 会员 (the withdrawal article): 没有正当理由连续六个月不交纳会费、不参加工会组织生活，经教育
    # 拒不改正，应当视为自动退会
    unpaid_months: int = 6
    # how long after the education contact a refusal stands: the texts name no period, so it is the union's policy
    grace_days: int = 30
    citation: str = "中国工会章程 第四条(六), 第一章退会条款; 工发[1978]101号 一"
    recorded_at: datetime | None = None  # when it was set (None: the built-in default)


# in force since the 1978 notice (dated 1978-11-13; new rates from the first collection month after 1978-10-21)
DEFAULT = Policy(effective_from=date(1978, 11, 1))


def month_of(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months(first: date, last: date) -> list[date]:
    """Every month from `first` through `last` (first days)."""
    out, month = [], month_of(first)
    while month <= last:
        out.append(month)
        month = add_months(month, 1)
    return out


def in_force(policies: Sequence[Policy], month: date) -> Policy:
    """The policy for `month`: the latest effective on or before it (of two for the same month, the later set)."""
    best = DEFAULT
    for policy in policies:
        if policy.effective_from <= month and (
            policy.effective_from > best.effective_from
            or (policy.effective_from == best.effective_from and policy.recorded_at is not None)
        ):
            best = policy
    return best


def dues_for(policy: Policy, wage_base: Decimal) -> Decimal:
    """A month's dues on a wage base: the base less its remainder under `base_step`, times the rate, rounded."""
    counted = (wage_base // policy.base_step) * policy.base_step
    return (counted * policy.rate).quantize(_UNIT[policy.rounding], rounding=ROUND_HALF_UP)


def validate(policy: Policy, today: date) -> None:
    """A policy begins on the first of a month that has not begun: it never re-reads a month already open."""
    if policy.effective_from.day != 1:
        raise InvalidInputError("effective_from", "a dues policy takes effect on the first day of a month")
    if policy.effective_from <= month_of(today):
        raise DomainError(
            "policy_retroactive",
            f"a policy set on {today} takes effect from {add_months(month_of(today), 1)} at the earliest: "
            "months already begun keep the rules they began under",
        )
    if not Decimal(0) < policy.rate < Decimal(1):
        raise InvalidInputError("rate", "the rate is a fraction of the wage base, between 0 and 1")
    if policy.base_step <= 0:
        raise InvalidInputError("base_step", "the base step is a positive amount of yuan")
    if policy.unpaid_months < 1:
        raise InvalidInputError("unpaid_months", "at least one month")
    if policy.grace_days < 0:
        raise InvalidInputError("grace_days", "not negative")
