"""The inbound contract of regional systems: EmploymentChanged on `union.regional.employment.v1`.

A regional labour or HR system publishes it as a CloudEvent in Kafka binary mode: `ce_type`
`union.regional.EmploymentChanged.v1`, `ce_source` `/regional/<system>`, a JSON value holding the fields
below. The JSON Schema in `docs/contracts/` is generated from this model; a test keeps the file fresh.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shared.validators import validate_credit_code, validate_division_code, validate_identity_number

EVENT_TYPE = "union.regional.EmploymentChanged.v1"
TOPIC = "union.regional.employment.v1"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "employment-changed.schema.json"

IdNumber = Annotated[
    str, Field(min_length=18, max_length=18, pattern=r"^[0-9]{17}[0-9Xx]$"), AfterValidator(validate_identity_number)
]
CreditCode = Annotated[
    str,
    Field(min_length=18, max_length=18, pattern=r"^[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{18}$"),
    AfterValidator(validate_credit_code),
]
DivisionCode = Annotated[
    str, Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$"), AfterValidator(validate_division_code)
]


class EmploymentChanged(BaseModel):
    """A worker's labour relationship moved to a new employer (the data of the CloudEvent)."""

    # a tolerant reader: a producer may add fields without breaking us
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True, title="EmploymentChanged")

    id_number: IdNumber = Field(description="the worker's 18-character resident identity number (GB 11643-1999)")
    employer_credit_code: CreditCode = Field(
        description="the new employer's unified social credit code (GB 32100-2015)"
    )
    employer_name: str = Field(min_length=1, max_length=200, description="the new employer's registered name")
    region_code: DivisionCode = Field(description="GB/T 2260 division code of the place of work, e.g. 310115")
    industry: str | None = Field(
        None, max_length=100, description="the employer's industry, matched against industry federations"
    )
    effective_date: date = Field(description="the day the new labour relationship starts")


class InvalidEmploymentChangeError(ValueError):
    """The message breaks the contract; the reason names the fields and never repeats their values."""


def parse_employment_changed(data: dict[str, Any]) -> EmploymentChanged:
    try:
        return EmploymentChanged.model_validate(data)
    except ValidationError as exc:
        # pydantic's own text echoes the input, and an identity number must not reach a log or header
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors())
        raise InvalidEmploymentChangeError(f"invalid EmploymentChanged: {problems}") from None


def employment_changed_schema() -> dict[str, Any]:
    schema = EmploymentChanged.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:union:contracts:regional:employment-changed:v1",
        **schema,
        "description": (
            "The data of the CloudEvent that regional systems publish on topic "
            f"`{TOPIC}` (Kafka binary mode: ce_specversion 1.0, ce_type `{EVENT_TYPE}`, "
            "ce_source `/regional/<system>`, ce_id unique per message, content-type application/json)."
        ),
        "x-cloudevents-type": EVENT_TYPE,
        "x-topic": TOPIC,
    }


def render_schema() -> str:
    return json.dumps(employment_changed_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema(), encoding="utf-8")
    return path


if __name__ == "__main__":
    write_schema()
