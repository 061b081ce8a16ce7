"""The platform's AsyncAPI document, from every service's event classes: `python -m unionctl.contracts`.

Writes `docs/asyncapi.yaml`; `--check` exits 1 when the checked-in file is stale (CI). It sits in the
tools package, outside the services, so it may import every registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.dues.events import registry as dues
from services.feedback.events import registry as feedback
from services.membership.events import registry as membership
from services.servicecard.events import registry as servicecard
from services.transfer.events import registry as transfer
from services.transfer.regional import TOPIC as REGIONAL_TOPIC
from services.transfer.regional import EmploymentChanged
from unionctl.asyncapi import build_document, render_yaml

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
REGISTRIES = [membership, transfer, servicecard, feedback, dues]


def document() -> dict[str, object]:
    return build_document(REGISTRIES, {REGIONAL_TOPIC: EmploymentChanged})


def render() -> str:
    return render_yaml(document())


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOCUMENT.exists() or DOCUMENT.read_text(encoding="utf-8") != text:
            print(f"{DOCUMENT} is stale: run `python -m unionctl.contracts`", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
