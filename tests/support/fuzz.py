"""Schemathesis against a service running in this process, with a fixed example budget per operation.

The service's lifespan (its asyncpg pool, relay and consumers) lives on the test's event loop, so the
requests must be sent there too. Hypothesis draws the cases synchronously in a worker thread
(`asyncio.to_thread`); each case is prepared exactly as schemathesis' own requests transport would send
it, then handed back to the loop and sent through the test's in-process client. The schema's checks
then judge the response.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import Case as AnyCase
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, load_all_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

Case = AnyCase[Any]

# never a 5xx, every declared response body and content type as the schema says;
# status_code_conformance stays off: FastAPI's schemas do not declare 401/403/404/409/413
CHECK_NAMES = ("not_a_server_error", "response_schema_conformance", "content_type_conformance")

Send = Callable[[str, str, dict[str, str], bytes | None], httpx.Response]


def checks() -> list[CheckFunction]:
    load_all_checks()
    return [getattr(schemathesis.checks, name) for name in CHECK_NAMES]


@dataclass
class Figures:
    service: str
    operations: int  # declared in the schema
    tested: set[str] = field(default_factory=set)
    examples: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def line(self) -> str:
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return (
            f"{self.service}: {len(self.tested)}/{self.operations} operations tested, "
            f"{self.examples} examples sent, {len(self.failures)} failures (answers {answers})"
        )


def count_operations(document: Mapping[str, Any]) -> int:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)


def _prepare(case: Case, base_url: str, headers: dict[str, str]) -> requests.PreparedRequest:
    """The request schemathesis' requests transport would send for this case."""
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    allowed = {"method", "url", "headers", "files", "data", "params", "auth", "cookies", "json"}
    return requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()


# by path parameter, query parameter or body property name: a value, or a strategy of values
Known = Mapping[str, object]


def _with_known(strategy: SearchStrategy[Case], known: Known, *, body: bool) -> SearchStrategy[Case]:
    """Half of the cases get values that pass the rules behind the schema (ids that exist, valid check digits),
    so that the hostile rest of the input reaches the handlers and the database, not just a 404 or a 422."""

    @st.composite
    def patched(draw: st.DrawFn) -> Case:
        case = draw(strategy)
        for container in ("path_parameters", "query", "body") if body else ("path_parameters",):
            current = getattr(case, container)
            if isinstance(current, dict) and any(name in known for name in current):
                setattr(case, container, {name: _draw(draw, known.get(name, v)) for name, v in current.items()})
        return case

    return st.one_of(strategy, patched())


def _draw(draw: st.DrawFn, value: object) -> object:
    return draw(value) if isinstance(value, SearchStrategy) else value


def fuzz(
    service: str,
    document: dict[str, Any],
    send: Send,
    *,
    base_url: str,
    headers: Mapping[str, str],
    known: Known,
    max_examples: int,
) -> Figures:
    """Every operation, positive and (where it has inputs) negative cases, `max_examples` each; half of them with
    `known` values in place. Synchronous: run it in a worker thread."""
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
    figures = Figures(service, count_operations(document))
    sent_headers = dict(headers)
    run_checks = checks()
    budget = settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read is a failure, not a skip
            figures.failures.append(f"unreadable operation: {describe(result.err())}")
            continue
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        inputs = [*operation.path_parameters, *operation.query, *operation.headers]
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if inputs or operation.body else [])
        for mode in modes:
            # negative cases keep their broken body and query: only their path may name something that exists
            strategy = _with_known(
                operation.as_strategy(generation_mode=mode), known, body=mode is GenerationMode.POSITIVE
            )

            @budget
            @given(case=strategy)
            def one(case: Case) -> None:
                prepared = _prepare(case, base_url, sent_headers)
                body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
                assert body is None or isinstance(body, bytes), "a JSON API's body is bytes"
                request_headers = {
                    k: v if isinstance(v, str) else v.decode("latin-1")
                    for k, v in prepared.headers.items()
                    if k.lower() != "content-length"
                }
                figures.examples += 1
                assert prepared.method is not None
                assert prepared.url is not None
                try:
                    response = send(prepared.method, prepared.url, request_headers, body)
                except Exception as exc:  # the app raised instead of answering: a 500 for the client
                    exc.add_note(f"Reproduce with: {case.as_curl_command(headers=request_headers)}")
                    raise
                figures.statuses[response.status_code] += 1
                case.validate_response(response, checks=run_checks, headers=request_headers)

            sent_before = figures.examples
            try:
                one()
            except BaseException as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                figures.failures.append(f"{label} ({mode.value}): {describe(exc)}"[:6000])
            if figures.examples > sent_before:  # an operation no case reached is not tested
                figures.tested.add(label)
    return figures


def describe(exc: BaseException) -> str:
    """What failed, down to the leaves of exception groups (Hypothesis' flaky reports hide the cause there);
    an exception the app raised keeps the last frames of its traceback."""
    if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, FailureGroup):
        return "\n".join([f"{type(exc).__name__}: {exc.message}", *(describe(e) for e in exc.exceptions)])
    if isinstance(exc, AssertionError | BaseExceptionGroup):
        return f"{type(exc).__name__}: {exc}"
    return "".join(traceback.format_exception(exc, limit=-6))


class FuzzReport:
    """Adds the figures of every schemathesis run to pytest's terminal summary (shown by `make test`)."""

    name = "schemathesis-figures"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.write_sep("=", "schemathesis: hostile input against each service's OpenAPI")
            for line in self.lines:
                terminalreporter.write_line(line)

    @classmethod
    def of(cls, config: pytest.Config) -> FuzzReport:
        plugin = config.pluginmanager.get_plugin(cls.name)
        if not isinstance(plugin, FuzzReport):
            plugin = cls()
            config.pluginmanager.register(plugin, cls.name)
        return plugin
