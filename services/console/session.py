"""Who is signed in: the token in an HttpOnly, SameSite=Strict cookie, and a CSRF token bound to the session.

The console reads the token's claims only to choose what to show; every call to a service carries the token, and
the services verify it and decide. A POST form carries `csrf`, an HMAC of the session cookie's random id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from fastapi import Request, Response

TOKEN_COOKIE = "console_token"  # noqa: S105 - the cookie's name, not a secret
SESSION_COOKIE = "console_sid"
ROLE_NAMES = {"staff": "工作人员", "member": "会员", "admin": "管理员", "system": "系统"}


@dataclass(frozen=True)
class User:
    token: str
    role: str
    subject: str
    name: str | None
    org_id: str | None
    member_id: str | None

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)

    @property
    def display_name(self) -> str:
        return self.name or self.subject


def read_claims(token: str) -> dict[str, Any] | None:
    """The token's claims, unverified (the services verify it): None when it is malformed or has expired."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or datetime.fromtimestamp(exp, UTC) <= datetime.now(UTC):
        return None
    if claims.get("role") not in ROLE_NAMES:
        return None
    return claims


def current_user(request: Request) -> User | None:
    token = request.cookies.get(TOKEN_COOKIE)
    claims = read_claims(token) if token else None
    if token is None or claims is None:
        return None
    return User(
        token=token,
        role=str(claims["role"]),
        subject=str(claims.get("sub", "")),
        name=claims.get("name"),
        org_id=claims.get("org_id"),
        member_id=claims.get("member_id"),
    )


class Sessions:
    def __init__(self, secret: str, secure: bool) -> None:
        self.secret = (secret or secrets.token_hex(32)).encode()
        self.secure = secure

    def session_id(self, request: Request) -> str | None:
        return request.cookies.get(SESSION_COOKIE)

    def csrf(self, session_id: str) -> str:
        return hmac.new(self.secret, session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, request: Request, submitted: str | None) -> bool:
        session_id = self.session_id(request)
        if not session_id or not submitted:
            return False
        # as bytes: compare_digest refuses a str with non-ASCII characters, which anyone can post
        return hmac.compare_digest(self.csrf(session_id).encode(), submitted.encode())

    def _cookie(self, response: Response, name: str, value: str) -> None:
        response.set_cookie(name, value, httponly=True, samesite="strict", secure=self.secure, path="/")

    def ensure(self, request: Request, response: Response) -> str:
        """The session id, given to the browser on its first visit."""
        session_id = self.session_id(request)
        if session_id is None:
            session_id = secrets.token_urlsafe(24)
            self._cookie(response, SESSION_COOKIE, session_id)
            request.state.new_session = session_id
        return session_id

    def sign_in(self, response: Response, token: str) -> None:
        self._cookie(response, TOKEN_COOKIE, token)
        self._cookie(response, SESSION_COOKIE, secrets.token_urlsafe(24))  # a new session: old forms are void

    def sign_out(self, response: Response) -> None:
        response.delete_cookie(TOKEN_COOKIE, path="/")
        self._cookie(response, SESSION_COOKIE, secrets.token_urlsafe(24))
