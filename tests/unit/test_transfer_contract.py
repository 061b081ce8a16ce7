"""The regional topic's contract: the checked-in JSON Schema is the one the model generates, and it bites."""

from __future__ import annotations

import json

import pytest

from services.transfer.regional import (
    SCHEMA_PATH,
    EmploymentChanged,
    InvalidEmploymentChangeError,
    employment_changed_schema,
    parse_employment_changed,
    render_schema,
)
from tests.support import data


def test_the_checked_in_schema_is_fresh() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "docs/contracts/employment-changed.schema.json is stale: run `python -m services.transfer.regional`"
    )


def test_the_schema_names_every_field_of_the_model() -> None:
    schema = employment_changed_schema()
    assert set(schema["properties"]) == set(EmploymentChanged.model_fields)
    assert schema["x-cloudevents-type"] == "union.regional.EmploymentChanged.v1"
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["required"] == schema["required"]


def valid(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id_number": data.identity_number(),
        "employer_credit_code": data.credit_code(),
        "employer_name": "顺丰速运",
        "region_code": "310115",
        "effective_date": "2025-03-01",
    }
    body.update(overrides)
    return body


def test_a_valid_change_parses_and_unknown_fields_are_tolerated() -> None:
    change = parse_employment_changed(valid(industry="物流", extra="ignored"))
    assert (change.region_code, change.industry) == ("310115", "物流")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id_number", "110105194912310021"),
        ("employer_credit_code", "91350100M000100Y44"),
        ("region_code", "990101"),
        ("effective_date", "tomorrow"),
        ("employer_name", ""),
    ],
)
def test_an_invalid_change_names_the_field_and_never_echoes_the_value(field: str, value: str) -> None:
    with pytest.raises(InvalidEmploymentChangeError) as caught:
        parse_employment_changed(valid(**{field: value}))
    assert field in str(caught.value)
    if value:
        assert value not in str(caught.value)
