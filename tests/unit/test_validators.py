"""Identity numbers, credit codes, mobile and card numbers: known examples and check-character properties.
Person names: what is accepted as written, what is tidied, and what is refused with which reason."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.validators import (  # the rules the plain-Han fast path skips
    _FOLD,
    CREDIT_CODE_ALPHABET,
    HAN,
    NAME_MAX_LENGTH,
    PROVINCE_CODES,
    _forbidden,
    _is_letter,
    _script,
    credit_code_check_char,
    identity_number_check_char,
    is_plausible_division_code,
    mask_identity_number,
    mask_mobile,
    validate_credit_code,
    validate_division_code,
    validate_identity_number,
    validate_mobile,
    validate_person_name,
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


# --- person names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "张伟",
        "欧阳娜娜",
        "𠮷田 春",  # U+20BB7, Extension B
        "张𪚥",  # U+2A6A5, Extension B
        "刘䶮",  # U+4DAE, Extension A
        "王𰻞",  # U+30EDE, Extension G
        "李\U00031350",  # Extension H: newer than this Python's unicodedata, accepted all the same
        "阿沛·阿旺晋美",  # the middle dot of minority and transliterated names
        "爱新觉罗·溥仪",
        "伊丽莎白·亚历山德拉·玛丽·温莎",
        "བཀྲ་ཤིས་བདེ་ལེགས",  # Tibetan, tsheg between syllables
        "བསྟན་འཛིན་རྒྱ་མཚོ",  # stacked consonants: several combining marks on one letter
        "ئابدۇرېھىم",  # Uyghur in Arabic script
        "ᠴᠢᠩᠭᠢᠰ",  # Mongolian script
        "ᠬᠠ\u180eᠭ",  # the Mongolian vowel separator inside a Mongolian word
        "김민준",  # Korean (朝鲜族)
        "ꆈꌠ",  # Yi
        "O'Brien",
        "Jean-Luc Picard",
        "José María García-Márquez",
        "J. R. R. Tolkien",
        "Nguyễn Thị Minh Khai",
        "Ngũgĩ wa Thiong'o",
        "Иван Петров",
        "Νίκος Καζαντζάκης",
    ],
)
def test_names_as_people_write_them_are_accepted_unchanged(name):
    assert validate_person_name(name) == name


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("  张伟\n", "张伟"),  # trimmed
        ("张\u3000伟", "张 伟"),  # any Unicode space becomes one ASCII space
        ("Mary  \u00a0Jane", "Mary Jane"),
        ("阿沛 · 阿旺晋美", "阿沛·阿旺晋美"),  # no spaces around the middle dot
        ("阿沛・阿旺晋美", "阿沛·阿旺晋美"),  # U+30FB katakana middle dot, as Chinese input methods type it
        ("阿沛•阿旺晋美", "阿沛·阿旺晋美"),  # U+2022 bullet
        ("阿沛‧阿旺晋美", "阿沛·阿旺晋美"),  # U+2027 hyphenation point (Big5)
        ("阿沛･阿旺晋美", "阿沛·阿旺晋美"),  # U+FF65 half-width katakana middle dot
        ("阿沛\u0387阿旺晋美", "阿沛·阿旺晋美"),  # Greek ano teleia: NFC makes it U+00B7
        ("O\u2019Brien", "O'Brien"),  # typographic apostrophe
        ("Mary\u2013Jane", "Mary-Jane"),  # en dash from a word processor
        ("ＪＯＨＮ ＳＭＩＴＨ", "JOHN SMITH"),  # full-width Latin from a Chinese input method
        ("Jose\u0301", "José"),  # NFC
        ("\u1100\u1161\u11a8", "각"),  # Hangul jamo compose under NFC
    ],
)
def test_names_are_tidied(written, kept):
    assert validate_person_name(written) == kept


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "name must not be empty"),
        (" \u3000 ", "name must not be empty"),
        ("张" * 61, "name is longer than 60 characters (61)"),
        ("张" * 10_000, "name is longer than 60 characters"),
        ("张\u200b伟", "contains an invisible character U+200B ZERO WIDTH SPACE"),
        ("张\u200c伟", "contains an invisible character U+200C"),
        ("张\u200d伟", "contains an invisible character U+200D"),
        ("张\u2060伟", "contains an invisible character U+2060"),
        ("张\ufeff伟", "contains an invisible character U+FEFF"),
        ("张\u00ad伟", "contains an invisible character U+00AD"),
        ("张\u3164伟", "contains an invisible character U+3164 HANGUL FILLER"),  # a blank "letter"
        ("张\u034f伟", "contains an invisible character U+034F"),
        ("张\u180e伟", "contains an invisible character U+180E"),  # outside a Mongolian word
        ("张伟\u202e", "contains a bidirectional control character U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("\u202a张伟", "contains a bidirectional control character U+202A"),
        ("张\u2066伟\u2069", "contains a bidirectional control character U+2066"),
        ("张\u200f伟", "contains a bidirectional control character U+200F"),
        ("张\u0000伟", "contains a control character U+0000"),
        ("张\t伟", "contains a control character U+0009"),
        ("张\n伟", "contains a control character U+000A"),
        ("张\u2028伟", "contains a line break U+2028"),
        ("张\U000e0041伟", "contains an invisible formatting character U+E0041 TAG LATIN CAPITAL LETTER A"),
        ("张\ud800伟", "contains a lone surrogate U+D800"),
        ("张\ue000伟", "contains a private-use character U+E000"),
        ("张\U000f0000", "contains a private-use character U+F0000"),
        ("张\u0378", "contains an unassigned code point U+0378"),
        ("张\U0003ffff", "contains an unassigned code point U+3FFFF"),
        ("张伟1", "contains a digit or number '1' (U+0031 DIGIT ONE): a name has no digits"),
        ("张伟３", "contains a digit or number '３' (U+FF13 FULLWIDTH DIGIT THREE)"),
        ("张伟Ⅲ", "contains a digit or number 'Ⅲ' (U+2162 ROMAN NUMERAL THREE)"),
        ("张伟😀", "contains a symbol or emoji '😀' (U+1F600 GRINNING FACE)"),
        ("张伟❤", "contains a symbol or emoji '❤'"),
        ("张伟\u2764\ufe0f", "contains a symbol or emoji '❤'"),
        ("张伟$", "contains a symbol or emoji '$'"),
        ("⼈张", "contains a symbol or emoji '⼈' (U+2F08 KANGXI RADICAL MAN)"),  # looks like 人
        ("张伟\U0001f3fb", "contains a symbol or emoji"),  # a skin-tone modifier
        ("张\ufe00", "contains a variation selector U+FE00"),
        ("张\U000e0100", "contains a variation selector U+E0100"),
        ("محمـد", "contains the Arabic tatweel"),
        ("a\u20dd", "contains an enclosing mark U+20DD"),
        ("山田はなこ", "contains 'は' (U+306F HIRAGANA LETTER HA), which is not a letter of the scripts names are"),
        ("ʻIolani", "contains 'ʻ' (U+02BB MODIFIER LETTER TURNED COMMA), which is not a letter"),
        ("Zhang伟", "name mixes Latin and Han letters"),
        ("张Wei", "name mixes Han and Latin letters"),
        ("Pаvel", "name mixes Latin and Cyrillic letters ('P' (U+0050 LATIN CAPITAL LETTER P) and 'а' (U+0430"),
        ("Ivan Петров", "letters that look alike across these scripts forge names"),
        ("Αlex", "name mixes Greek and Latin letters"),  # a Greek capital alpha
        ("张김", "name mixes Han and Hangul letters"),
        ("·张伟", "should start with a letter, not '·' (U+00B7 MIDDLE DOT)"),
        ("-Jean", "should start with a letter"),
        ("\u0301a", "should start with a letter"),
        ("张伟·", "has the middle dot · where it separates no two parts"),
        ("阿沛··阿旺", "has the middle dot · where it separates no two parts"),
        ("张-伟", "contains '-' (U+002D HYPHEN-MINUS): a Han name has only letters, spaces and the middle dot ·"),
        ("张.伟", "a Han name has only letters, spaces and the middle dot ·"),
        ("张伟。", "contains '。' (U+3002 IDEOGRAPHIC FULL STOP)"),
        ("Jean-", "has '-' (U+002D HYPHEN-MINUS) where it joins or ends no part of the name"),
        ("Jean--Luc", "has '-'"),
        ("J..", "has '.' (U+002E FULL STOP) where it joins or ends no part of the name"),
        ("Mary, Jane", "contains ',' (U+002C COMMA): a Latin name has only letters, spaces and the middle dot"),
        ("Jean (Luc)", "contains '('"),
        ('张"伟', "contains '\"'"),
        ("张<b>", "contains a symbol or emoji '<'"),
        ("བཀྲ་ཤིས།", "contains '།' (U+0F0D TIBETAN MARK SHAD)"),
        ("张\u0f0b伟", "contains '་' (U+0F0B TIBETAN MARK INTERSYLLABIC TSHEG): a Han name has only"),
        ("张\u0301", "has a combining mark U+0301 COMBINING ACUTE ACCENT on a Han character, which takes none"),
        ("a\u0f71", "has a combining mark U+0F71 TIBETAN VOWEL SIGN AA that Latin letters do not take"),
        ("Jose \u0301", "has a combining mark U+0301 COMBINING ACUTE ACCENT that is not on a letter"),
        ("Ze\u0301\u0302\u0303\u0304\u0306\u0307", "stacks more than 4 combining marks on one letter"),
        ("Z" + "\u0489" * 30, "contains an enclosing mark"),
    ],
)
def test_refused_names_say_what_is_wrong(name, reason):
    with pytest.raises(ValueError) as exc:
        validate_person_name(name)
    assert reason in str(exc.value)
    assert str(exc.value).startswith("name ")


@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\ud800", "\ue000", "\u0000", "\u3164", "\u180e"])
def test_a_reason_never_shows_an_invisible_character_itself(char):
    with pytest.raises(ValueError) as exc:
        validate_person_name(f"张{char}伟")
    assert char not in str(exc.value)
    str(exc.value).encode()  # a lone surrogate in the reason would break the 422's JSON


def test_a_longer_limit_can_be_asked_for():
    assert validate_person_name("张" * 80, max_length=80) == "张" * 80


@given(st.text(st.characters(exclude_categories=()), max_size=80))
def test_no_text_makes_the_name_validator_fail_other_than_with_a_value_error(text):
    try:
        name = validate_person_name(text)
    except ValueError as exc:
        str(exc).encode()
    else:
        assert validate_person_name(name) == name  # tidying twice changes nothing
        assert unicodedata.is_normalized("NFC", name)
        assert 1 <= len(name) <= 60


names_in_one_script = st.one_of(
    st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=20),
    st.text(st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF, categories=["Lo"]), min_size=1, max_size=20),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzéèüñçåø"), min_size=1, max_size=20),
)


@given(names_in_one_script)
def test_letters_of_one_script_are_kept_as_they_are(name):
    assert validate_person_name(name) == name


@given(names_in_one_script, st.sampled_from(["\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066"]), st.data())
def test_an_invisible_character_anywhere_is_refused(name, invisible, data):
    at = data.draw(st.integers(0, len(name)))
    with pytest.raises(ValueError, match=r"invisible|bidirectional"):
        validate_person_name(name[:at] + invisible + name[at:])


def test_every_character_of_the_plain_han_fast_path_passes_every_rule_of_the_full_check() -> None:
    # names of these characters alone skip the full check: each one must be what the full check lets through as is
    for code in range(0x4E00, 0x9FA6):
        char = chr(code)
        assert _forbidden(char) is None, f"U+{code:04X}"
        assert _is_letter(char), f"U+{code:04X}"
        assert _script(char) == HAN, f"U+{code:04X}"
        assert unicodedata.normalize("NFC", char.translate(_FOLD)) == char, f"U+{code:04X}"


def test_a_plain_han_name_longer_than_the_limit_is_still_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        validate_person_name("张" * (NAME_MAX_LENGTH + 1))
