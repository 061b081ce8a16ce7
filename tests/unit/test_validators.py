"""Identity numbers, credit codes, mobile and card numbers: known examples and check-character properties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.validators import (
    CREDIT_CODE_ALPHABET,
    PROVINCE_CODES,
    credit_code_check_char,
    identity_number_check_char,
    is_luhn_valid,
    is_plausible_division_code,
    luhn_check_digit,
    mask_identity_number,
    mask_mobile,
    validate_card_number,
    validate_credit_code,
    validate_division_code,
    validate_identity_number,
    validate_mobile,
)

ID_CHECK_CHARS = "0123456789X"
DIGITS = "0123456789"

# Written out here rather than imported so that a wrong constant in the module fails the tests.
PROVINCES = sorted(
    {"11", "12", "13", "14", "15"}
    | {"21", "22", "23"}
    | {"31", "32", "33", "34", "35", "36", "37"}
    | {"41", "42", "43", "44", "45", "46"}
    | {"50", "51", "52", "53", "54"}
    | {"61", "62", "63", "64", "65"}
    | {"71", "81", "82"}
)
NOT_PROVINCES = sorted(f"{n:02d}" for n in range(100) if f"{n:02d}" not in PROVINCES)

two_digits = st.integers(1, 99).map(lambda n: f"{n:02d}")
division_codes = st.one_of(
    st.sampled_from(PROVINCES).map(lambda p: p + "0000"),
    st.builds(lambda p, c: p + c + "00", st.sampled_from(PROVINCES), two_digits),
    st.builds(lambda p, c, d: p + c + d, st.sampled_from(PROVINCES), two_digits, two_digits),
)
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date.today())  # noqa: DTZ011
sequences = st.text(DIGITS, min_size=3, max_size=3)
credit_bodies = st.text(CREDIT_CODE_ALPHABET, min_size=17, max_size=17)


def reason(exc: pytest.ExceptionInfo[ValueError]) -> str:
    return str(exc.value)


def id_with_check(first17: str) -> str:
    return first17 + identity_number_check_char(first17)


# --- division codes ---------------------------------------------------------------------------------------


def test_the_module_lists_exactly_the_34_province_level_codes():
    assert sorted(PROVINCE_CODES) == PROVINCES


@pytest.mark.parametrize("code", ["310000", "310100", "310115", "110105", "469001", "500101", "820000"])
def test_plausible_division_codes(code):
    assert is_plausible_division_code(code)
    assert validate_division_code(f" {code} ") == code


@pytest.mark.parametrize(
    "code",
    ["990101", "31A115", "31011", "3101150", "", "000000", "100000", "310015", "３１０１１５", "310115\n"],
)
def test_implausible_division_codes(code):
    assert not is_plausible_division_code(code)


@given(division_codes)
def test_generated_division_codes_are_plausible(code):
    assert is_plausible_division_code(code)


@given(st.sampled_from(NOT_PROVINCES), st.text(DIGITS, min_size=4, max_size=4))
def test_unknown_province_is_never_plausible(province, rest):
    assert not is_plausible_division_code(province + rest)
    with pytest.raises(ValueError, match="province") as exc:
        validate_division_code(province + rest)
    assert province in reason(exc)


def test_division_code_reasons():
    with pytest.raises(ValueError, match="6 digits"):
        validate_division_code("31A115")
    with pytest.raises(ValueError, match="prefecture 00"):
        validate_division_code("310015")


# --- identity numbers -------------------------------------------------------------------------------------


def test_known_identity_number_is_valid_and_lowercase_x_is_normalised():
    assert validate_identity_number("11010519491231002X") == "11010519491231002X"
    assert validate_identity_number("11010519491231002x") == "11010519491231002X"
    assert validate_identity_number(" 110101199003074477 ") == "110101199003074477"
    assert identity_number_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("first17", "check"),
    [
        ("0" * 17, "1"),
        ("1" + "0" * 16, "5"),
        ("01" + "0" * 15, "3"),
        ("001" + "0" * 14, "2"),
        ("0001" + "0" * 13, "7"),
        ("00001" + "0" * 12, "4"),
        ("000001" + "0" * 11, "8"),
        ("0000001" + "0" * 10, "X"),
        ("00000001" + "0" * 9, "0"),
        ("000000001" + "0" * 8, "6"),
        ("0000000001" + "0" * 7, "9"),
    ],
)
def test_identity_check_char_for_every_remainder(first17, check):
    # A single 1 at each of the first ten places sums to that place's weight, covering remainders 0 to 10.
    assert identity_number_check_char(first17) == check


def test_known_identity_number_with_wrong_check_character():
    with pytest.raises(ValueError) as exc:
        validate_identity_number("110105194912310023")
    assert reason(exc) == "identity number check character should be X, not 3"


@given(division_codes, birth_dates, sequences)
def test_computed_check_char_makes_a_valid_identity_number(region, born, sequence):
    number = id_with_check(region + born.strftime("%Y%m%d") + sequence)
    assert validate_identity_number(number) == number
    assert validate_identity_number(number.lower()) == number


@given(division_codes, birth_dates, sequences, st.data())
def test_any_other_check_char_is_rejected(region, born, sequence, data):
    first17 = region + born.strftime("%Y%m%d") + sequence
    right = identity_number_check_char(first17)
    wrong = data.draw(st.sampled_from([c for c in ID_CHECK_CHARS if c != right]))
    with pytest.raises(ValueError, match="check character") as exc:
        validate_identity_number(first17 + wrong)
    assert f"should be {right}, not {wrong}" in reason(exc)


@given(division_codes, birth_dates, sequences, st.integers(0, 16), st.data())
def test_any_single_digit_change_in_the_body_is_rejected(region, born, sequence, position, data):
    number = id_with_check(region + born.strftime("%Y%m%d") + sequence)
    digit = data.draw(st.sampled_from([d for d in DIGITS if d != number[position]]))
    changed = number[:position] + digit + number[position + 1 :]
    # The weights are all non-zero mod 11, so a single substitution always breaks the check character.
    assert identity_number_check_char(changed[:17]) != changed[17]
    with pytest.raises(ValueError):
        validate_identity_number(changed)


@pytest.mark.parametrize(
    "birth",
    ["19491331", "19490230", "19490000", "19490132", "19000229", "20230229", "18991231"],
)
def test_impossible_birth_dates_are_rejected(birth):
    number = id_with_check("110105" + birth + "002")
    with pytest.raises(ValueError, match="birth date"):
        validate_identity_number(number)


def test_leap_day_birth_date_is_accepted():
    number = id_with_check("110105" + "20000229" + "002")
    assert validate_identity_number(number) == number


def test_known_pre_1900_example_is_rejected_for_its_birth_date():
    with pytest.raises(ValueError, match="before 1900"):
        validate_identity_number("440524188001010014")


@pytest.mark.parametrize("days_ahead", [2, 400, 365 * 50])
def test_future_birth_date_is_rejected(days_ahead):
    born = date.today() + timedelta(days=days_ahead)  # noqa: DTZ011
    number = id_with_check("310115" + born.strftime("%Y%m%d") + "123")
    with pytest.raises(ValueError, match=r"birth date.*future"):
        validate_identity_number(number)


def test_birth_date_reason_does_not_echo_the_digits():
    with pytest.raises(ValueError) as exc:
        validate_identity_number(id_with_check("110105" + "19491331" + "002"))
    assert "19491331" not in reason(exc)


@given(st.sampled_from(NOT_PROVINCES), st.text(DIGITS, min_size=4, max_size=4), birth_dates, sequences)
def test_implausible_region_is_rejected(province, rest, born, sequence):
    number = id_with_check(province + rest + born.strftime("%Y%m%d") + sequence)
    with pytest.raises(ValueError, match="region code"):
        validate_identity_number(number)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "18 characters, not 0"),
        ("11010519491231002", "18 characters, not 17"),
        ("11010519491231002X0", "18 characters, not 19"),
        ("1101051949123100XX", "first 17"),
        ("A1010519491231002X", "first 17"),
        ("１1010519491231002X", "first 17"),
        ("\u06f11010519491231002X", "first 17"),
        ("11010519491231002Y", "digit or X"),
        ("11010519491231002-", "digit or X"),
    ],
)
def test_wrong_length_or_characters_are_rejected(value, fragment):
    with pytest.raises(ValueError, match="identity number") as exc:
        validate_identity_number(value)
    assert fragment in reason(exc)


@pytest.mark.parametrize("first17", ["1101051949123100", "110105194912310021", "1101051949123100A"])
def test_identity_check_char_helper_needs_17_digits(first17):
    with pytest.raises(ValueError):
        identity_number_check_char(first17)


# --- credit codes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["91350100M000100Y43", "914403001922038216", "91330100716105852F", "9144030071526726XG"],
)
def test_known_credit_codes_are_valid(code):
    assert validate_credit_code(code) == code
    assert validate_credit_code(f" {code.lower()} ") == code


def test_known_credit_code_with_wrong_check_character():
    with pytest.raises(ValueError) as exc:
        validate_credit_code("91350100M000100Y44")
    assert reason(exc) == "credit code check character should be 3, not 4"


@given(credit_bodies)
def test_computed_check_char_makes_a_valid_credit_code(body):
    code = body + credit_code_check_char(body)
    assert validate_credit_code(code) == code
    assert validate_credit_code(code.lower()) == code


@given(credit_bodies, st.integers(0, 16), st.data())
def test_every_single_substitution_in_the_body_is_detected(body, position, data):
    code = body + credit_code_check_char(body)
    char = data.draw(st.sampled_from([c for c in CREDIT_CODE_ALPHABET if c != code[position]]))
    changed = code[:position] + char + code[position + 1 :]
    with pytest.raises(ValueError, match="check character"):
        validate_credit_code(changed)


def test_every_single_substitution_of_a_known_code_is_detected_exhaustively():
    code = "91350100M000100Y43"
    for position in range(17):
        for char in CREDIT_CODE_ALPHABET.replace(code[position], ""):
            changed = code[:position] + char + code[position + 1 :]
            with pytest.raises(ValueError, match="check character"):
                validate_credit_code(changed)


@given(credit_bodies, st.data())
def test_any_other_credit_check_char_is_rejected(body, data):
    right = credit_code_check_char(body)
    wrong = data.draw(st.sampled_from(CREDIT_CODE_ALPHABET.replace(right, "")))
    with pytest.raises(ValueError, match="check character") as exc:
        validate_credit_code(body + wrong)
    assert f"should be {right}, not {wrong}" in reason(exc)


@given(credit_bodies, st.integers(0, 17), st.sampled_from("IOZSV"))
def test_excluded_letters_are_rejected_anywhere(body, position, letter):
    code = body + credit_code_check_char(body)
    changed = code[:position] + letter + code[position + 1 :]
    with pytest.raises(ValueError, match="not allowed") as exc:
        validate_credit_code(changed)
    assert f"character {position + 1} is '{letter}'" in reason(exc)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("91350100M000100Y4", "18 characters, not 17"),
        ("91350100M000100Y433", "18 characters, not 19"),
        ("91350100M000100Y-3", "not allowed"),
        ("91350100M000100Ｙ43", "not allowed"),
    ],
)
def test_malformed_credit_codes_are_rejected(value, fragment):
    with pytest.raises(ValueError, match="credit code") as exc:
        validate_credit_code(value)
    assert fragment in reason(exc)


# --- mobile numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["13812345678", "19912345678", "+8613812345678", "8613812345678", "+86 138 1234 5678", " 138 1234 5678 "],
)
def test_valid_mobile_numbers(value):
    assert validate_mobile(value)[1:] in {"3812345678", "9912345678"}
    assert len(validate_mobile(value)) == 11


def test_mobile_is_normalised_to_11_digits():
    assert validate_mobile("+86 138 1234 5678") == "13812345678"
    assert validate_mobile("8619912345678") == "19912345678"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "12812345678",
        "10812345678",
        "23812345678",
        "1381234567",
        "138123456789",
        "1381234567a",
        "１3812345678",
        "+8513812345678",
        "+861381234567",
        "86138123456",
        "008613812345678",
        "138-1234-5678",
    ],
)
def test_invalid_mobile_numbers(value):
    with pytest.raises(ValueError, match="mobile number"):
        validate_mobile(value)


@given(st.sampled_from("3456789"), st.text(DIGITS, min_size=9, max_size=9))
def test_any_mobile_from_13_to_19_is_valid(second, rest):
    assert validate_mobile("1" + second + rest) == "1" + second + rest
    assert validate_mobile("+86" + "1" + second + rest) == "1" + second + rest


@given(st.sampled_from("012"), st.text(DIGITS, min_size=9, max_size=9))
def test_mobile_from_10_to_12_is_invalid(second, rest):
    with pytest.raises(ValueError, match="start with 13 to 19"):
        validate_mobile("1" + second + rest)


# --- Luhn and card numbers --------------------------------------------------------------------------------


def test_known_luhn_examples():
    assert is_luhn_valid("79927398713")
    assert luhn_check_digit("7992739871") == "3"
    assert is_luhn_valid("4111111111111111")
    assert not is_luhn_valid("79927398710")
    assert not is_luhn_valid("4111111111111112")
    assert validate_card_number("6222021234567890128") == "6222021234567890128"
    assert validate_card_number("6222 0212 3456 7890 128") == "6222021234567890128"


@pytest.mark.parametrize("number", ["", "0", "12a4", "７９９２７３９８７１３"])
def test_luhn_rejects_non_numbers(number):
    assert not is_luhn_valid(number)


@pytest.mark.parametrize("digits", ["", "12a4", "７"])
def test_luhn_check_digit_needs_digits(digits):
    with pytest.raises(ValueError):
        luhn_check_digit(digits)


@given(st.text(DIGITS, min_size=1, max_size=30))
def test_computed_luhn_digit_makes_a_valid_number(payload):
    assert is_luhn_valid(payload + luhn_check_digit(payload))


@given(st.text(DIGITS, min_size=1, max_size=30), st.data())
def test_any_single_digit_change_breaks_luhn(payload, data):
    number = payload + luhn_check_digit(payload)
    position = data.draw(st.integers(0, len(number) - 1))
    digit = data.draw(st.sampled_from(DIGITS.replace(number[position], "")))
    assert not is_luhn_valid(number[:position] + digit + number[position + 1 :])


@given(st.text(DIGITS, min_size=18, max_size=18))
def test_generated_19_digit_card_numbers_are_valid(payload):
    number = payload + luhn_check_digit(payload)
    assert validate_card_number(number) == number


@given(st.text(DIGITS, min_size=18, max_size=18), st.data())
def test_card_number_with_wrong_check_digit_is_rejected(payload, data):
    right = luhn_check_digit(payload)
    wrong = data.draw(st.sampled_from(DIGITS.replace(right, "")))
    with pytest.raises(ValueError, match=f"check digit should be {right}, not {wrong}"):
        validate_card_number(payload + wrong)


@pytest.mark.parametrize("value", ["79927398713", "62220212345678901280", "622202123456789012X", ""])
def test_card_number_must_be_19_digits(value):
    with pytest.raises(ValueError, match="19 digits"):
        validate_card_number(value)


# --- masks ------------------------------------------------------------------------------------------------


def test_masks():
    assert mask_identity_number("11010519491231002X") == "110105********002X"
    assert mask_identity_number("11010519491231002x") == "110105********002X"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_mobile("+86 138 1234 5678") == "138****5678"


@given(division_codes, birth_dates, sequences)
def test_identity_mask_hides_the_birth_date(region, born, sequence):
    number = id_with_check(region + born.strftime("%Y%m%d") + sequence)
    masked = mask_identity_number(number)
    assert len(masked) == 18
    assert masked[:6] == region
    assert masked[6:14] == "*" * 8
    assert masked[14:] == number[14:]


@pytest.mark.parametrize("value", ["", "11010519491231002", "11010519491231002X0"])
def test_identity_mask_needs_18_characters(value):
    with pytest.raises(ValueError):
        mask_identity_number(value)


@pytest.mark.parametrize("value", ["", "1381234567", "138123456789", "138-1234-56"])
def test_mobile_mask_needs_11_digits(value):
    with pytest.raises(ValueError):
        mask_mobile(value)
