"""Read your writes across services, as a route dependency: `after=` position tokens (shared.consistency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request, Response

from shared.consistency import MAX_TOKENS_TEXT, Watermarks, not_caught_up
from shared.positions import POSITION_HEADER, TOKENS_PATTERN, parse_tokens


async def read_after(
    request: Request,
    response: Response,
    after: Annotated[
        str | None,
        Query(
            description="position tokens from earlier answers (`membership:1234`, comma-separated): the answer waits "
            "until this service has consumed through them, or is 409 `not_caught_up`",
            pattern=TOKENS_PATTERN,
            max_length=MAX_TOKENS_TEXT,
        ),
    ] = None,
    x_after_position: Annotated[
        str | None,
        Header(description="the same as `after`, as a header", pattern=TOKENS_PATTERN, max_length=MAX_TOKENS_TEXT),
    ] = None,
) -> None:
    """A route dependency: with position tokens, wait until they are consumed (bounded), then answer; the answer's
    `X-Position` names this service's latest public event, for reads in yet another service."""
    tokens = parse_tokens(after, "query.after") + parse_tokens(x_after_position, "header.x-after-position")
    if not tokens:
        return
    watermarks: Watermarks = request.app.state.watermarks
    missing = await watermarks.wait(tokens)
    if missing:
        raise not_caught_up(missing)
    response.headers[POSITION_HEADER] = str(await watermarks.head())
