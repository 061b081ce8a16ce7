"""Check digits and formats of Chinese identity numbers, credit codes, mobile numbers and service card numbers."""

from __future__ import annotations

import unicodedata
from datetime import date

_DIGITS = frozenset("0123456789")

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

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUES = {char: index for index, char in enumerate(CREDIT_CODE_ALPHABET)}

_MOBILE_SECOND_DIGITS = frozenset("3456789")


def _is_digits(value: str) -> bool:
    # str.isdigit also accepts full-width and other Unicode digits, which int() would silently convert.
    return bool(value) and all(char in _DIGITS for char in value)


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
    total = sum(int(char) * weight for char, weight in zip(first17, _ID_WEIGHTS, strict=True))
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


def _luhn_sum(digits: str, *, double_last: bool) -> int:
    total = 0
    for offset, char in enumerate(reversed(digits)):
        digit = int(char)
        if (offset % 2 == 0) == double_last:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total


def luhn_check_digit(digits: str) -> str:
    if not _is_digits(digits):
        raise ValueError("Luhn check digit needs a non-empty string of digits")
    return str((10 - _luhn_sum(digits, double_last=True) % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    if len(number) < 2 or not _is_digits(number):
        return False
    return _luhn_sum(number, double_last=False) % 10 == 0


def validate_card_number(value: str) -> str:
    number = "".join(value.split())
    if len(number) != 19 or not _is_digits(number):
        raise ValueError("card number should be 19 digits")
    if not is_luhn_valid(number):
        raise ValueError(f"card number check digit should be {luhn_check_digit(number[:18])}, not {number[18]}")
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


_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}


def validate_person_name(value: str, max_length: int = 60) -> str:
    """A person's name as written (Chinese with rare characters, other scripts), NFC-normalised and trimmed."""
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise ValueError("name must not be empty")
    if len(name) > max_length:
        raise ValueError(f"name is longer than {max_length} characters")
    for ch in name:
        if ch in _INVISIBLE:
            raise ValueError(f"name contains an invisible character (U+{ord(ch):04X})")
        # private-use characters stay: legacy systems write some rare name characters with them
        if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Cn"}:
            raise ValueError(f"name contains a control or unassigned character (U+{ord(ch):04X})")
    return name
