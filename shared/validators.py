"""Check digits and formats of Chinese identity numbers, credit codes, mobile numbers; months, dates and
periods; person names in the scripts they are written in."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from datetime import date
from operator import mul

# Grouped by GB/T 2260 region: north, north-east, east, south-central, south-west, north-west, TW/HK/MO.
PROVINCE_CODES = frozenset(
    {"11", "12", "13", "14", "15"}
    | {"21", "22", "23"}
    | {"31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46"}
    | {"50", "51", "52", "53", "54"}
    | {"61", "62", "63", "64", "65"}
    | {"71", "81", "82"}
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_ZEROS = ord("0") * sum(_ID_WEIGHTS)

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUES = {char: index for index, char in enumerate(CREDIT_CODE_ALPHABET)}

_MOBILE_SECOND_DIGITS = frozenset("3456789")


def _is_digits(value: str) -> bool:
    # str.isdigit alone also accepts full-width and other Unicode digits, which int() would silently convert
    return value.isascii() and value.isdigit()


def _division_problem(code: str) -> str | None:
    if len(code) != 6 or not _is_digits(code):
        return "should be 6 digits"
    if code[:2] not in PROVINCE_CODES:
        return f"starts with {code[:2]}, which is not a province-level code"
    if code[2:4] == "00" and code[4:] != "00":
        return "has prefecture 00, so its county part should be 00 too"
    return None


def is_plausible_division_code(code: str) -> bool:
    return _division_problem(code) is None


def validate_division_code(value: str) -> str:
    code = value.strip()
    problem = _division_problem(code)
    if problem is not None:
        raise ValueError(f"division code {problem}")
    return code


def identity_number_check_char(first17: str) -> str:
    if len(first17) != 17 or not _is_digits(first17):
        raise ValueError("identity number should start with 17 digits")
    # over the ASCII codes, less what the 17 zeros ("0" is 48) add: a roster's 100,000 numbers checked quickly
    total = sum(map(mul, first17.encode(), _ID_WEIGHTS)) - _ID_ZEROS
    return _ID_CHECK_CHARS[total % 11]


def validate_identity_number(value: str) -> str:
    number = value.strip().upper()
    if len(number) != 18:
        raise ValueError(f"identity number should be 18 characters, not {len(number)}")
    if not _is_digits(number[:17]):
        raise ValueError("identity number should have digits in its first 17 places")
    if number[17] not in _ID_CHECK_CHARS:
        raise ValueError("identity number check character should be a digit or X")
    if not is_plausible_division_code(number[:6]):
        raise ValueError("identity number region code (first 6 digits) is not a valid division code")
    # The birth date is personal data, so the reason names the field but never echoes the digits.
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    try:
        born = date(year, month, day)
    except ValueError:
        raise ValueError("identity number birth date (digits 7-14) is not a real calendar date") from None
    if year < 1900:
        raise ValueError("identity number birth date (digits 7-14) is before 1900")
    if born > date.today():  # noqa: DTZ011 - a birth date is a calendar date in the holder's local time
        raise ValueError("identity number birth date (digits 7-14) is in the future")
    expected = identity_number_check_char(number[:17])
    if number[17] != expected:
        raise ValueError(f"identity number check character should be {expected}, not {number[17]}")
    return number


def credit_code_check_char(first17: str) -> str:
    if len(first17) != 17 or any(char not in _CREDIT_VALUES for char in first17):
        raise ValueError(f"credit code should start with 17 characters from {CREDIT_CODE_ALPHABET}")
    total = sum(_CREDIT_VALUES[char] * weight for char, weight in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 18:
        raise ValueError(f"credit code should be 18 characters, not {len(code)}")
    for position, char in enumerate(code, start=1):
        if char not in _CREDIT_VALUES:
            raise ValueError(
                f"credit code character {position} is {char!r}, which is not allowed "
                "(only digits and letters other than I, O, S, V and Z)"
            )
    expected = credit_code_check_char(code[:17])
    if code[17] != expected:
        raise ValueError(f"credit code check character should be {expected}, not {code[17]}")
    return code


def _normalise_mobile(value: str) -> str:
    number = "".join(value.split())
    for prefix in ("+86", "86"):
        rest = number.removeprefix(prefix)
        if rest != number and len(rest) == 11 and _is_digits(rest):
            return rest
    return number


def validate_mobile(value: str) -> str:
    number = _normalise_mobile(value)
    if len(number) != 11 or not _is_digits(number):
        raise ValueError("mobile number should be 11 digits, optionally after +86")
    if number[0] != "1" or number[1] not in _MOBILE_SECOND_DIGITS:
        raise ValueError("mobile number should start with 13 to 19")
    return number


def mask_identity_number(value: str) -> str:
    number = value.strip().upper()
    if len(number) != 18:
        raise ValueError(f"identity number to mask should be 18 characters, not {len(number)}")
    return f"{number[:6]}{'*' * 8}{number[14:]}"


def mask_mobile(value: str) -> str:
    number = _normalise_mobile(value)
    if len(number) != 11 or not _is_digits(number):
        raise ValueError("mobile number to mask should be 11 digits")
    return f"{number[:3]}****{number[7:]}"


# --- years, months, days and periods ---------------------------------------------------------------------
# One rule for every month, date and period a client sends. Years run from 1900 (the oldest record a roster
# carries) to 2199: year 0 or 9999 is a typo, and a date near either end of Python's range overflows once a
# month or a time zone is added to it. The patterns are what the OpenAPI documents publish: whatever matches
# them passes the parsers below (a day that does not exist, 2026-02-30, aside).

EARLIEST_YEAR = 1900
LATEST_YEAR = 2199
_YYYY = "(19[0-9]{2}|2[01][0-9]{2})"
_MM = "(0[1-9]|1[0-2])"
YEAR_PATTERN = f"^{_YYYY}$"
MONTH_PATTERN = f"^{_YYYY}-{_MM}$"
DAY_PATTERN = f"^{_YYYY}-{_MM}-(0[1-9]|[12][0-9]|3[01])$"
_MONTH_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})")
_DAY_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def year_problem(year: int) -> str | None:
    if EARLIEST_YEAR <= year <= LATEST_YEAR:
        return None
    return f"year {year:04d} is outside the years kept here ({EARLIEST_YEAR} to {LATEST_YEAR})"


def _year_and_month(year: str, month: str) -> tuple[int, int]:
    problem = year_problem(int(year))
    if problem is not None:
        raise ValueError(problem)
    if not 1 <= int(month) <= 12:
        raise ValueError(f"month {month} does not exist: months are 01 to 12")
    return int(year), int(month)


def parse_month(value: object) -> date:
    """`2026-03` as the first day of the month; the reason says which part is wrong."""
    match = _MONTH_SHAPE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("a month is written YYYY-MM, e.g. 2026-03")
    return date(*_year_and_month(match.group(1), match.group(2)), 1)


def parse_day(value: object) -> date:
    """`2026-03-31` as a date; the reason says which part is wrong."""
    match = _DAY_SHAPE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("a date is written YYYY-MM-DD, e.g. 2026-03-31")
    year, month = _year_and_month(match.group(1), match.group(2))
    try:
        return date(year, month, int(match.group(3)))
    except ValueError:
        raise ValueError(f"day {match.group(3)} does not exist in {year:04d}-{month:02d}") from None


def period_problem(first: date, last: date, longest_months: int) -> str | None:
    """Why months `first` through `last` are no period to answer for: reversed, or longer than `longest_months`."""
    if last < first:
        return f"the period ends ({last:%Y-%m}) before it begins ({first:%Y-%m})"
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > longest_months:
        return f"a period is at most {longest_months} months; {first:%Y-%m} to {last:%Y-%m} is {months}"
    return None


# --- person names ------------------------------------------------------------------------------------------
# A name is kept as written, in one script: Han (with the rare characters of Extensions A-I), the other scripts
# of China's nationalities (Tibetan, Uyghur Arabic, Mongolian, Korean Hangul, Yi), or Latin, Cyrillic, Greek.
# What is accepted, what is refused and why: docs/hostile-input.md.

NAME_MAX_LENGTH = 60
MIDDLE_DOT = "\u00b7"  # the separator of transliterated and minority names in Han: 阿沛·阿旺晋美
_MAX_MARKS = 4  # combining marks on one letter: a Tibetan stack like སྒྲོ needs 3, "zalgo" text far more

HAN, LATIN, CYRILLIC, GREEK = "Han", "Latin", "Cyrillic", "Greek"
TIBETAN, ARABIC, MONGOLIAN, HANGUL, YI = "Tibetan", "Arabic", "Mongolian", "Hangul", "Yi"
NAME_SCRIPTS = (HAN, TIBETAN, ARABIC, MONGOLIAN, HANGUL, YI, LATIN, CYRILLIC, GREEK)

# (first, last, script), sorted: a letter's script is the range it falls in (unicodedata knows no scripts)
_SCRIPT_RANGES = (
    (0x0041, 0x005A, LATIN),
    (0x0061, 0x007A, LATIN),
    (0x00C0, 0x02AF, LATIN),  # Latin-1 letters, Extended-A and -B, IPA (the ɛ and ɔ of African names)
    (0x0370, 0x03FF, GREEK),
    (0x0400, 0x052F, CYRILLIC),
    (0x0600, 0x06FF, ARABIC),
    (0x0750, 0x077F, ARABIC),
    (0x0870, 0x08FF, ARABIC),
    (0x0F00, 0x0FFF, TIBETAN),
    (0x1100, 0x11FF, HANGUL),
    (0x1800, 0x18AF, MONGOLIAN),
    (0x1C80, 0x1C8F, CYRILLIC),
    (0x1E00, 0x1EFF, LATIN),
    (0x1F00, 0x1FFF, GREEK),
    (0x2C60, 0x2C7F, LATIN),
    (0x2DE0, 0x2DFF, CYRILLIC),
    (0x3007, 0x3007, HAN),  # 〇: a Han character, although a number
    (0x3130, 0x318F, HANGUL),
    (0x3400, 0x4DBF, HAN),  # Extension A: 䶮
    (0x4E00, 0x9FFF, HAN),
    (0xA000, 0xA48F, YI),
    (0xA640, 0xA69F, CYRILLIC),
    (0xA720, 0xA7FF, LATIN),
    (0xA960, 0xA97F, HANGUL),
    (0xAB30, 0xAB6F, LATIN),
    (0xAC00, 0xD7FF, HANGUL),
    (0xF900, 0xFAFF, HAN),
    (0xFB50, 0xFDFF, ARABIC),  # presentation forms: legacy Uyghur systems still write them
    (0xFE70, 0xFEFE, ARABIC),
    (0x20000, 0x2A6DF, HAN),  # Extension B: 𠮷, 𪚥
    (0x2A700, 0x2EE5F, HAN),  # Extensions C, D, E, F, I
    (0x2F800, 0x2FA1F, HAN),
    (0x30000, 0x323AF, HAN),  # Extensions G, H
)
_RANGE_STARTS = [first for first, _, _ in _SCRIPT_RANGES]
# assigned in Unicode 15 and 15.1, later than this Python's unicodedata: a rare name must not wait for an upgrade
_HAN_NEWER_THAN_UNICODEDATA = ((0x2EBF0, 0x2EE5D), (0x31350, 0x323AF))
# accents any alphabet puts on its letters; every other mark belongs to the script whose range holds it
_GENERIC_MARKS = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0xFE20, 0xFE2F))
_SCRIPTS_WITH_MARKS = frozenset({LATIN, CYRILLIC, GREEK, TIBETAN, ARABIC, MONGOLIAN})
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))

# zero-width and blank characters, including the "letters" that render as nothing (Hangul fillers)
_INVISIBLE = frozenset("\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u2060\u3164\ufeff\uffa0")
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MONGOLIAN_VOWEL_SEPARATOR = "\u180e"  # invisible, yet part of Mongolian spelling: allowed inside a Mongolian word
_TATWEEL = "\u0640"
_TSHEG = frozenset("\u0f0b\u0f0c")
_ALPHABETS = frozenset({LATIN, CYRILLIC, GREEK})
_ALPHABET_PUNCTUATION = frozenset("-'.")  # Jean-Luc, O'Brien, J. R. R. Tolkien

# one separator typed many ways becomes the one we keep; full-width Latin letters become Latin letters
_FOLD = str.maketrans(
    {
        **dict.fromkeys(map(ord, "\u30fb\uff65\u2022\u2027\u2219\u22c5\u2e31"), MIDDLE_DOT),
        **dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\ufe63\uff0d"), "-"),
        **dict.fromkeys(map(ord, "\u2018\u2019\u02bc\uff07"), "'"),
        **{code: code - 0xFEE0 for code in [*range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]},
    }
)
_SPACES = re.compile(r"[^\S\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")  # Unicode spaces, not line or control breaks
_DOT_SPACING = re.compile(r" ?\u00b7 ?")
# Han characters of Unicode 1.1 (URO), unchanged by NFC and by the folds above: most names are written in them alone
_PLAIN_HAN = re.compile("[\u4e00-\u9fa5]+")


def _in(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(first <= code <= last for first, last in ranges)


def _category(char: str) -> str:
    category = unicodedata.category(char)
    return "Lo" if category == "Cn" and _in(ord(char), _HAN_NEWER_THAN_UNICODEDATA) else category


def _script(char: str) -> str | None:
    code = ord(char)
    at = bisect_right(_RANGE_STARTS, code) - 1
    return _SCRIPT_RANGES[at][2] if at >= 0 and code <= _SCRIPT_RANGES[at][1] else None


def _is_letter(char: str) -> bool:
    return char == "\u3007" or _category(char).startswith("L")


def _is_letter_or_mark(char: str) -> bool:
    return char != "" and (_is_letter(char) or _category(char)[0] == "M")


def _shown(char: str) -> str:
    """`'吉' (U+5409 CJK UNIFIED IDEOGRAPH-5409)`; only the code and name where showing it could mislead or fail."""
    described = f"U+{ord(char):04X} {unicodedata.name(char, '(no name)')}"
    if char.isprintable() and _category(char)[0] not in "MC" and char not in _INVISIBLE:
        return f"'{char}' ({described})"
    return described


# why a character of this category has no place in any name (the code point, or the character shown)
_FORBIDDEN_CATEGORIES: dict[str, Callable[[str], str]] = {
    "Cc": lambda c: f"contains a control character U+{ord(c):04X}",
    "Cf": lambda c: f"contains an invisible formatting character {_shown(c)}",
    "Cs": lambda c: f"contains a lone surrogate U+{ord(c):04X}, which is not a character",
    "Co": lambda c: (
        f"contains a private-use character U+{ord(c):04X}: a rare character must be sent as its own "
        "Unicode character (CJK Extensions A-I), not as a private-use stand-in"
    ),
    "Cn": lambda c: f"contains an unassigned code point U+{ord(c):04X}",
    "Zl": lambda c: f"contains a line break U+{ord(c):04X}",
    "Zp": lambda c: f"contains a line break U+{ord(c):04X}",
    "Me": lambda c: f"contains an enclosing mark {_shown(c)}",
}


def _forbidden(char: str) -> str | None:
    """Why this character has no place in any name; None if it may have one."""
    category = _category(char)
    reason: str | None = None
    if char == _MONGOLIAN_VOWEL_SEPARATOR:
        pass  # invisible, yet Mongolian spelling needs it: checked in place
    elif char in _INVISIBLE:
        reason = f"contains an invisible character {_shown(char)}"
    elif char in _BIDI_CONTROLS:
        reason = f"contains a bidirectional control character {_shown(char)}, which can reorder how the name is shown"
    elif category in _FORBIDDEN_CATEGORIES:
        reason = _FORBIDDEN_CATEGORIES[category](char)
    elif category[0] == "N" and char != "\u3007":
        reason = f"contains a digit or number {_shown(char)}: a name has no digits"
    elif category[0] == "S":
        reason = f"contains a symbol or emoji {_shown(char)}"
    elif _in(ord(char), _VARIATION_SELECTORS):
        reason = f"contains a variation selector {_shown(char)}: a name is stored as plain characters"
    elif char == _TATWEEL:
        reason = f"contains the Arabic tatweel {_shown(char)}, a stretching stroke that is not part of a name"
    elif category[0] == "L" and _script(char) is None:
        reason = f"contains {_shown(char)}, which is not a letter of the scripts names are written in"
    return reason


def _one_script(name: str) -> str:
    first: dict[str, str] = {}
    for char in name:
        script = _script(char)
        if script is not None and _is_letter(char):
            first.setdefault(script, char)
    if len(first) > 1:
        (one, a), (other, b) = list(first.items())[:2]
        why = "letters that look alike across these scripts forge names" if {one, other} <= _ALPHABETS else ""
        raise ValueError(
            f"name mixes {one} and {other} letters ({_shown(a)} and {_shown(b)}): a name is written in one script"
            + (f"; {why}" if why else "")
        )
    return next(iter(first), "")


def _mark_problem(char: str, base: str, script: str) -> str | None:
    if not _is_letter_or_mark(base):
        return f"has a combining mark {_shown(char)} that is not on a letter"
    if script not in _SCRIPTS_WITH_MARKS:
        return f"has a combining mark {_shown(char)} on a {script} character, which takes none"
    own = _script(char)
    if own != script and not (own is None and _in(ord(char), _GENERIC_MARKS)):
        return f"has a combining mark {_shown(char)} that {script} letters do not take"
    return None


def _punctuation_problem(char: str, before: str, after: str, script: str) -> str | None:
    between_letters = _is_letter_or_mark(before) and _is_letter_or_mark(after)
    if char == MIDDLE_DOT:
        return None if between_letters else f"has the middle dot {MIDDLE_DOT} where it separates no two parts"
    if char == _MONGOLIAN_VOWEL_SEPARATOR:
        inside = script == MONGOLIAN and _script(before) == MONGOLIAN and _script(after) == MONGOLIAN
        return None if inside and between_letters else f"contains an invisible character {_shown(char)}"
    if char in _TSHEG and script == TIBETAN:
        return None if _is_letter_or_mark(before) else f"has the tsheg {_shown(char)} where it ends no syllable"
    if char in _ALPHABET_PUNCTUATION and script in _ALPHABETS:
        fits = between_letters if char == "-" else _is_letter_or_mark(before)
        return None if fits else f"has {_shown(char)} where it joins or ends no part of the name"
    allowed = f"letters, spaces and the middle dot {MIDDLE_DOT}"
    extra = {TIBETAN: ", and the tsheg ་", LATIN: ", and - ' .", CYRILLIC: ", and - ' .", GREEK: ", and - ' ."}
    return f"contains {_shown(char)}: a {script or 'name'} name has only {allowed}{extra.get(script, '')}"


def _misplaced(name: str, script: str) -> str | None:
    if not _is_letter(name[0]):
        return f"should start with a letter, not {_shown(name[0])}"
    marks = 0
    for at, char in enumerate(name):
        before, after = name[at - 1] if at else "", name[at + 1 : at + 2]
        if _category(char)[0] == "M":
            marks += 1
            if marks > _MAX_MARKS:
                return f"stacks more than {_MAX_MARKS} combining marks on one letter"
            problem = _mark_problem(char, before, script)
        else:
            marks = 0
            problem = None if char == " " or _is_letter(char) else _punctuation_problem(char, before, after, script)
        if problem is not None:
            return problem
    return None


def validate_person_name(value: str, max_length: int = NAME_MAX_LENGTH) -> str:
    """A person's name as written, NFC-normalised and tidied; the ValueError says what is wrong with it."""
    if len(value) <= max_length and _PLAIN_HAN.fullmatch(value):
        return value  # the common case: every rule below holds for these characters (tests/unit/test_validators.py)
    if len(value) > 4 * max_length + 100:  # normalising can shorten a text, never by this much
        raise ValueError(f"name is longer than {max_length} characters")
    name = unicodedata.normalize("NFC", value.translate(_FOLD)).strip()
    name = _DOT_SPACING.sub(MIDDLE_DOT, _SPACES.sub(" ", name))
    if not name:
        raise ValueError("name must not be empty")
    if len(name) > max_length:
        raise ValueError(f"name is longer than {max_length} characters ({len(name)})")
    for char in name:
        problem = _forbidden(char)
        if problem is not None:
            raise ValueError(f"name {problem}")
    problem = _misplaced(name, _one_script(name))
    if problem is not None:
        raise ValueError(f"name {problem}")
    return name
