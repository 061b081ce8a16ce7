"""Valid test data: identity numbers, credit codes and phones that pass the real validators."""

from __future__ import annotations

import itertools
import random
import string
from datetime import date, timedelta
from pathlib import Path

from shared.validators import CREDIT_CODE_ALPHABET, credit_code_check_char, identity_number_check_char

_rng = random.Random()


_serial = itertools.count(_rng.randint(0, 10**7))


def identity_number(region: str = "310115", birth: str | None = None) -> str:
    """A valid number, never the same twice in one process (a benchmark imports 100,000 people)."""
    n = next(_serial)
    birth = birth or (date(1960, 1, 1) + timedelta(days=(n // 1000) % 16_000)).strftime("%Y%m%d")
    first17 = f"{region}{birth}{n % 1000:03d}"
    return first17 + identity_number_check_char(first17)


def credit_code() -> str:
    first17 = "91" + "310115" + "".join(_rng.choice(CREDIT_CODE_ALPHABET) for _ in range(9))
    return first17 + credit_code_check_char(first17)


def phone() -> str:
    return "1" + _rng.choice("3456789") + "".join(_rng.choice(string.digits) for _ in range(9))


def application(org_id: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "org_id": org_id,
        "name": _rng.choice(["张伟", "王芳", "李娜", "刘洋", "陈静", "𠮷田"]),
        "id_number": identity_number(),
        "phone": phone(),
        "employment_type": "regular",
        "household_type": "urban",
    }
    body.update(overrides)
    return body


# notice files for tests (a 2027 notice shaped like the State Council's, to load over a provisional 2027)
NOTICES = Path(__file__).parent.parent / "fixtures" / "notices"
