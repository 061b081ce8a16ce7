"""Schemathesis against a service running in this process, with a fixed example budget per operation.

The service's lifespan (its asyncpg pool, relay and consumers) lives on the test's event loop, so the
requests must be sent there too. Hypothesis draws the cases synchronously in a worker thread
(`asyncio.to_thread`); each case is prepared exactly as schemathesis' own requests transport would send
it, then handed back to the loop and sent through the test's in-process client. The schema's checks
then judge the response.
"""

from __future__ import annotations

import time
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
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

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
    succeeded: set[str] = field(default_factory=set)  # operations that answered 2xx at least once
    stateful_calls: int = 0  # of `examples`, those sent by the stateful phase

    def line(self) -> str:
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return (
            f"{self.service}: {len(self.tested)}/{self.operations} operations tested, "
            f"{self.examples} examples sent ({self.stateful_calls} following links), {ok} answered 2xx, "
            f"{len(self.succeeded)} operations reached a 2xx, "
            f"{len(self.failures)} failures (answers {answers})"
        )


def count_operations(document: Mapping[str, Any]) -> int:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)


def _prepare(case: Case, base_url: str, headers: dict[str, str]) -> requests.PreparedRequest:
    """The request schemathesis' requests transport would send for this case."""
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    allowed = {"method", "url", "headers", "files", "data", "params", "auth", "cookies", "json"}
    return requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()


# by path parameter, query parameter or body property name: a value, or a function that makes a fresh one
Known = Mapping[str, object]

SLOWEST_ANSWER = 5.0  # seconds: a slower answer is a failure, like a 5xx

# what a stateful step skips: what the link gave it, and what a request never carries by a known name
_CONTAINERS = ("path_parameters", "query", "body")


def _known(value: object) -> object:
    return value() if callable(value) else value


def _patch(case: Case, known: Known, containers: tuple[str, ...], keep: set[tuple[str, str]]) -> None:
    """Known values in place of the generated ones, but not where `keep` says a link put the value."""
    for container in containers:
        current = getattr(case, container)
        if isinstance(current, dict) and any(name in known for name in current):
            patched = {
                name: value
                if name not in known or {(container, name), (container, "*")} & keep
                else _known(known[name])
                for name, value in current.items()
            }
            setattr(case, container, patched)


def _with_known(strategy: SearchStrategy[Case], known: Known, *, body: bool) -> SearchStrategy[Case]:
    """Half of the cases get values that pass the rules behind the schema (ids that exist, valid check digits),
    so that the hostile rest of the input reaches the handlers and the database, not just a 404 or a 422."""

    def patched(case: Case) -> Case:
        _patch(case, known, _CONTAINERS if body else ("path_parameters",), set())
        return case

    return st.one_of(strategy, strategy.map(patched))


@dataclass
class Exchange:
    """Sends a case as schemathesis' requests transport would, counts the answer, and judges it."""

    figures: Figures
    send: Send
    base_url: str
    headers: dict[str, str]
    run_checks: list[CheckFunction] = field(default_factory=checks)

    def __call__(self, case: Case) -> tuple[httpx.Response, dict[str, str]]:
        label = f"{case.operation.method.upper()} {case.operation.path}"
        prepared = _prepare(case, self.base_url, self.headers)
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        assert body is None or isinstance(body, bytes), "a body is bytes"
        request_headers = {
            k: v if isinstance(v, str) else v.decode("latin-1")
            for k, v in prepared.headers.items()
            if k.lower() != "content-length"
        }
        self.figures.examples += 1
        self.figures.tested.add(label)
        assert prepared.method is not None
        assert prepared.url is not None
        started = time.monotonic()
        try:
            response = self.send(prepared.method, prepared.url, request_headers, body)
        except Exception as exc:  # the app raised instead of answering: a 500 for the client
            exc.add_note(f"Reproduce with: {case.as_curl_command(headers=request_headers)}")
            raise
        elapsed = time.monotonic() - started
        self.figures.statuses[response.status_code] += 1
        if response.is_success:
            self.figures.succeeded.add(label)
        assert elapsed < SLOWEST_ANSWER, (
            f"answered {response.status_code} in {elapsed:.1f} s, more than {SLOWEST_ANSWER:.0f} s: "
            f"{case.as_curl_command(headers=request_headers)}"
        )
        return response, request_headers

    def judge(self, case: Case, response: httpx.Response | Response, headers: dict[str, str]) -> None:
        case.validate_response(response, checks=self.run_checks, headers=headers)


def _budget(**kwargs: Any) -> settings:
    return settings(
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        **kwargs,
    )


def fuzz(
    service: str,
    document: dict[str, Any],
    send: Send,
    *,
    base_url: str,
    headers: Mapping[str, str],
    known: Known,
    max_examples: int,
    scenarios: int = 0,
    steps: int = 6,
) -> Figures:
    """Every operation, positive and (where it has inputs) negative cases, `max_examples` each; half of them with
    `known` values in place. Then `scenarios` sequences of up to `steps` calls that follow the document's links,
    known values filling what no link gave. Synchronous: run it in a worker thread."""
    figures = Figures(service, count_operations(document))
    exchange = Exchange(figures, send, base_url, dict(headers))
    _per_operation(document, exchange, known, max_examples)
    if scenarios > 0:
        _stateful(document, exchange, known, scenarios, steps)
    return figures


def _per_operation(document: dict[str, Any], exchange: Exchange, known: Known, max_examples: int) -> None:
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
    figures = exchange.figures
    budget = _budget(max_examples=max_examples, phases=[Phase.explicit, Phase.generate, Phase.shrink])
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
                response, request_headers = exchange(case)
                exchange.judge(case, response, request_headers)

            try:
                one()
            except BaseException as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                figures.failures.append(f"{label} ({mode.value}): {describe(exc)}"[:6000])


def _stateful(document: dict[str, Any], exchange: Exchange, known: Known, scenarios: int, steps: int) -> None:
    """Schemathesis' stateful phase: each scenario starts from an operation and follows the links of its answers
    (a created thing's id into the operations that take it), so operations behind an id get real ids."""
    config = schemathesis.Config.from_dict({"generation": {"mode": "positive"}})
    schema = schemathesis.openapi.from_dict(document, config=config)
    figures = exchange.figures
    transitions = sum(
        len(a.get("links", {}))
        for i in document["paths"].values()
        for o in i.values()
        if isinstance(o, dict)
        for a in o.get("responses", {}).values()
    )
    if transitions == 0:
        return

    class Scenario(schema.as_state_machine()):  # type: ignore[misc]
        def step(self, input: StepInput) -> StepOutput:  # noqa: A002 - schemathesis' name
            linked = {(location.container_name, name or "*") for location, name in input.applied_parameters}
            _patch(input.case, known, _CONTAINERS, linked)
            return super().step(input)

        def call(self, case: Case, **_: Any) -> Response:
            response, self._sent_headers = exchange(case)
            return Response.from_any(response)

        def validate_response(self, response: Response, case: Case, *_: Any, **__: Any) -> None:
            exchange.judge(case, response, self._sent_headers)

    budget = _budget(max_examples=scenarios, stateful_step_count=steps, phases=[Phase.generate])
    sent_before = figures.examples
    try:
        Scenario.run(settings=budget)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        figures.failures.append(f"stateful: {describe(exc)}"[:6000])
    figures.stateful_calls = figures.examples - sent_before


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
