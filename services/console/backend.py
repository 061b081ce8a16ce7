"""The services, over HTTP, with the signed-in user's token: each answer is a status and a JSON body."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from services.console.settings import ConsoleSettings

MESSAGES = {
    401: "登录已失效，请重新登录。",
    403: "您无权查看或办理此事项。",
    404: "未找到：不存在，或不在您的组织范围内。",
    409: "无法办理：与当前状态冲突。",
    429: "操作过于频繁，请稍后再试。",
}


REASONS = (
    (re.compile(r"identity number check character should be (\w), not (\w)"), r"身份证号校验码应为 \1，而不是 \2"),
    (re.compile(r"credit code check character should be (\w), not (\w)"), r"统一社会信用代码校验码应为 \1，而不是 \2"),
    (re.compile(r"^Field required$"), "必填"),
)


def chinese(reason: str) -> str:
    """The services explain in English; the pages say the common reasons in Chinese, the rest as the service said."""
    for pattern, said in REASONS:
        if pattern.search(reason):
            return pattern.sub(said, reason)
    return reason


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def message(self) -> str:
        """What a person is told when the service refused."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        base = MESSAGES.get(self.status, "服务暂时无法处理此请求，请稍后再试。")
        return f"{base}（{self.status} {self.code or ''} {detail or ''}）".replace(" ）", "）")

    def field_errors(self) -> dict[str, str]:
        """A 422's reasons by field (the last part of its location), in Chinese where the reason is a known one."""
        errors = self.body.get("errors", []) if isinstance(self.body, dict) else []
        return {str(e.get("field", "")).split(".")[-1]: chinese(str(e.get("reason", ""))) for e in errors}


class ServiceRefusedError(Exception):
    """A service said no (4xx/5xx) where the page cannot go on: shown as a message, never a crash."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.message)
        self.reply = reply


class Services:
    def __init__(self, settings: ConsoleSettings, client: httpx.AsyncClient) -> None:
        self.client = client
        self.urls = {
            "membership": settings.membership_url,
            "transfer": settings.transfer_url,
            "servicecard": settings.servicecard_url,
            "feedback": settings.feedback_url,
        }

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            r = await self.client.request(method, self.urls[service] + path, json=json, params=params, headers=headers)
        except httpx.InvalidURL:  # what the visitor typed made no URL (a control character): their input, not an outage
            return Reply(400, {"code": "invalid_input", "detail": "the address holds a character no URL may"})
        except httpx.HTTPError as exc:
            return Reply(503, {"code": "unavailable", "detail": f"{service}: {type(exc).__name__}"})
        try:
            body = r.json()
        except ValueError:
            body = {"detail": r.text[:200]}
        return Reply(r.status_code, body)

    async def get(self, service: str, path: str, token: str | None, **params: Any) -> Any:
        """The body of a read that must succeed for the page to make sense."""
        reply = await self.call(service, "GET", path, token, params={k: v for k, v in params.items() if v is not None})
        if not reply.ok:
            raise ServiceRefusedError(reply)
        return reply.body
