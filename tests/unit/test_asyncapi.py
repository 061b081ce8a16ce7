"""The AsyncAPI document: fresh, valid for the AsyncAPI parser, complete, and free of private fields."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from services.transfer.regional import TOPIC as REGIONAL_TOPIC
from shared.events import PUBLIC, channel_topic
from unionctl.contracts import DOCUMENT, REGISTRIES, render

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "asyncapi"


def test_the_checked_in_document_is_fresh() -> None:
    assert DOCUMENT.exists(), "docs/asyncapi.yaml is missing: run `python -m unionctl.contracts`"
    assert DOCUMENT.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.yaml is stale: run `python -m unionctl.contracts` and commit the result"
    )


def test_rendering_is_deterministic() -> None:
    assert render() == render()


def test_the_asyncapi_parser_accepts_the_document() -> None:
    assert shutil.which("node"), "node is needed to run the AsyncAPI parser (`make test` installs its packages)"
    if not (TOOLS / "node_modules" / "@asyncapi" / "parser").exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(TOOLS), "--no-audit", "--no-fund"], check=True, capture_output=True
        )
    result = subprocess.run(
        ["node", str(TOOLS / "validate.mjs"), str(DOCUMENT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid AsyncAPI 3.0.0" in result.stdout


def test_every_published_event_is_a_message_without_its_private_fields() -> None:
    doc = yaml.safe_load(render())
    messages = doc["components"]["messages"]
    channels = {c["address"]: c for c in doc["channels"].values()}
    for registry in REGISTRIES:
        topic = f"union.{registry.service}.v1"
        assert f"{topic}.dlq" in channels
        for cls in registry.classes():
            name = cls.event_name()
            if not cls.published:
                assert name not in messages, f"{name} stays inside the service"
                continue
            assert name in channels[channel_topic(topic, cls.channel)]["messages"], f"{name} missing from its topic"
            message = messages[name]
            assert message["name"] == name
            assert message["contentType"] == "application/json"
            assert message["headers"]["properties"]["ce_type"]["const"] == registry.wire_type(cls)
            assert message["headers"]["properties"]["ce_source"]["const"] == registry.source
            properties = message["payload"]["properties"]
            assert set(properties) == set(cls.model_fields) - cls.private_fields
            assert not set(message["payload"].get("required", [])) & cls.private_fields
    assert channels[REGIONAL_TOPIC]["messages"] == {
        "EmploymentChanged": {"$ref": "#/components/messages/EmploymentChanged"}
    }
    receive = [op for op in doc["operations"].values() if op["action"] == "receive"]
    assert [op["channel"]["$ref"] for op in receive] == ["#/channels/regional-employment"]
    named = set(_property_names(doc))
    assert not named & {"id_number_enc", "name_enc", "phone_enc", "eligible_voters", "old_card_no"}


def test_the_blind_index_is_only_on_the_restricted_topic() -> None:
    doc = yaml.safe_load(render())
    messages = doc["components"]["messages"]
    carriers = {name for name, m in messages.items() if "id_blind_index" in _property_names(m["payload"])}
    assert carriers == {"MemberIdentityIndexed"}
    public = {f"union.{registry.service}.v1" for registry in REGISTRIES}
    for channel in doc["channels"].values():
        if channel["address"] in public:
            assert not set(channel["messages"]) & carriers, channel["address"]
    restricted = next(c for c in doc["channels"].values() if c["address"] == "union.membership.restricted.v1")
    assert set(restricted["messages"]) == {"MemberIdentityIndexed", "MemberIdentityIndexErased"}
    assert all(cls.channel == PUBLIC for r in REGISTRIES if r.service != "membership" for cls in r.classes())


def _property_names(node: object) -> list[str]:
    if isinstance(node, list):
        return [n for item in node for n in _property_names(item)]
    if not isinstance(node, dict):
        return []
    names = list(node["properties"]) if isinstance(node.get("properties"), dict) else []
    return names + [n for value in node.values() for n in _property_names(value)]
