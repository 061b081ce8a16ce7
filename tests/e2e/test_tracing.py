"""One trace from the HTTP request that approves a member to the card service's consumer, across processes."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devstack import procs
from devstack.platform import Platform
from tests.conftest import Stack
from tests.e2e.test_member_life import join, org
from tests.support import auth
from tests.support.waiting import eventually


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: what a collector would get, decoded."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", procs.free_port()), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        for resource_spans in request.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                self.server.spans.extend(
                    {"service": service, "name": s.name, "trace_id": s.trace_id.hex(), "kind": s.kind}
                    for s in scope.spans
                )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def traced(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Receiver]]:
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    prefix = f"o{os.urandom(4).hex()}."
    stack.provision(prefix)
    key = base64.b64encode(os.urandom(32)).decode()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "TOPIC_PREFIX": prefix,
        "DB_SCHEMA_PREFIX": prefix[:-1] + "_",
        "PII_MASTER_KEY": key,
        "BLIND_INDEX_KEY": key,
        "RELAY_POLL_INTERVAL": "0.05",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    services = {"membership": procs.free_port(), "servicecard": procs.free_port()}
    platform = Platform(
        env,
        dict.fromkeys(services, stack.dsn),
        Path(tmp_path_factory.mktemp("traced")),
        services,
        service_env=stack.service_env,
    )
    platform.start()
    try:
        yield platform, receiver
    finally:
        platform.stop()
        receiver.shutdown()
        receiver.server_close()


async def test_one_trace_from_the_http_request_to_the_card_services_consumer(
    traced: tuple[Platform, Receiver],
) -> None:
    platform, receiver = traced
    async with (
        httpx.AsyncClient(base_url=platform.url("membership"), timeout=30, headers=auth.bearer()) as m,
        httpx.AsyncClient(base_url=platform.url("servicecard"), timeout=30, headers=auth.bearer()) as c,
    ):
        county = await org(m, "county")
        member_id = (await join(m, await org(m, "township", county)))["member_id"]

        async def card() -> bool:
            return (await c.get(f"/members/{member_id}/card")).status_code == 200

        await eventually(card)

    def approve_trace() -> str | None:
        return next(
            (
                s["trace_id"]
                for s in list(receiver.spans)
                if s["service"] == "membership"
                and s["name"].startswith("POST /applications/{application_id}/approve")
                and s["kind"] == 2
            ),
            None,
        )  # SPAN_KIND_SERVER

    async def consumed_in_the_same_trace() -> list[dict[str, Any]]:
        trace_id = approve_trace()
        return [
            s
            for s in list(receiver.spans)
            if s["trace_id"] == trace_id
            and s["service"] == "servicecard"
            and s["name"].endswith("union.membership.v1 process")
        ]

    # the approval's two events (ApplicationApproved, MemberJoined) are both consumed in its trace
    consumer_spans = await eventually(consumed_in_the_same_trace, timeout=30)
    trace = [s for s in receiver.spans if s["trace_id"] == consumer_spans[0]["trace_id"]]
    assert {s["service"] for s in trace} == {"membership", "servicecard"}
    assert any(s["name"].endswith("union.membership.v1 publish") for s in trace)  # the relay, in between
