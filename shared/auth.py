"""Who is asking, and whether they may: bearer tokens verified with the issuer's public keys, and each
service's table of who may do what, checked in one place.

A token is a JWT signed by the platform's identity provider (in development, `make token`). Every service
verifies the signature with the issuer's public keys (a JWKS file or URL), the issuer, the audience and the
expiry; the algorithm comes from the key, never from the token. Its claims give the principal:

    role       admin | staff | member | system
    org_id     staff: the organisation they work for (they act on it and its whole subtree)
    member_id  member: themselves
    scope      system: space-separated grants, e.g. "members:read stats:read"

There is no setting that turns the checks off: a service without AUTH_JWKS does not start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import cachetools
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.directory import covers
from shared.errors import DomainError, NotFoundError

log = logging.getLogger("shared.auth")

# asymmetric algorithms only: a service holds public keys and can never mint a token
ACCEPTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    MEMBER = "member"
    SYSTEM = "system"


class Principal(BaseModel):
    """The authenticated caller, from a verified token's claims."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: str = Field(alias="sub", min_length=1, max_length=200)
    role: Role
    org_id: UUID | None = None
    member_id: UUID | None = None
    name: str | None = Field(None, max_length=200)
    scopes: frozenset[str] = Field(frozenset(), alias="scope")

    @field_validator("scopes", mode="before")
    @classmethod
    def _split_scope(cls, value: object) -> object:
        return frozenset(value.split()) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _role_claims(self) -> Principal:
        if self.role is Role.STAFF and self.org_id is None:
            raise ValueError("a staff token names its organisation (org_id)")
        if self.role is Role.MEMBER and self.member_id is None:
            raise ValueError("a member token names the member (member_id)")
        return self

    @property
    def actor(self) -> str:
        """How events' metadata and the audit log name this caller."""
        return f"{self.role}:{self.subject}"

    @property
    def display_name(self) -> str:
        return self.name or self.subject


class UnauthenticatedError(DomainError):
    status_code = 401

    def __init__(self, code: str, message: str) -> None:
        error = "invalid_request" if code == "unauthenticated" else "invalid_token"
        super().__init__(code, message, headers={"WWW-Authenticate": f'Bearer error="{error}"'})


class ForbiddenError(DomainError):
    status_code = 403


# --- verifying tokens -------------------------------------------------------------------------------------


class KeySet:
    """The issuer's public keys: a JWKS document from a file or an https URL, kept fresh both ways.

    A file is looked at again at most every `recheck` seconds and re-read when it changed, so a key added
    is used and a key removed stops verifying within that time. A URL's document is cached for `recheck`
    seconds (no key outlives it) and fetched again at once for an unknown `kid` (PyJWT allows one such
    fetch every 30 s). Plain http is refused except on the loopback address (tests, a local issuer)."""

    def __init__(self, source: str, recheck: float = 300) -> None:
        self.source = source
        self.recheck = recheck
        self._client: jwt.PyJWKClient | None = None
        if "://" in source:
            url = urlsplit(source)
            if url.scheme != "https" and not (
                url.scheme == "http" and url.hostname in {"127.0.0.1", "::1", "localhost"}
            ):
                raise ValueError(f"AUTH_JWKS must be an https URL (or a file): {source}")
            self._client = jwt.PyJWKClient(source, cache_keys=False, cache_jwk_set=True, lifespan=recheck)
        self._mtime = -1.0
        self._checked = 0.0
        self._keys: dict[str | None, jwt.PyJWK] = {}
        if self._client is None:
            self._load_file()

    def _load_file(self) -> None:
        path = Path(self.source)
        self._checked = time.monotonic()
        mtime = path.stat().st_mtime
        if mtime == self._mtime:
            return
        document = json.loads(path.read_text())
        keys = [jwt.PyJWK(k) for k in document.get("keys", [])]
        if not keys:
            raise ValueError(f"{self.source} holds no keys")
        self._keys = {k.key_id: k for k in keys}
        if len(keys) == 1:
            self._keys.setdefault(None, keys[0])
        self._mtime = mtime

    async def get(self, kid: str | None) -> jwt.PyJWK | None:
        if self._client is not None:
            client = self._client
            try:
                if kid is None:
                    keys = await asyncio.to_thread(client.get_signing_keys)
                    return keys[0] if len(keys) == 1 else None
                return await asyncio.to_thread(client.get_signing_key, kid)
            except jwt.PyJWKClientError as exc:
                log.warning("token key %s not found at the JWKS URL: %s", kid, exc)
                return None
        if kid not in self._keys or time.monotonic() - self._checked > self.recheck:
            try:
                self._load_file()  # a key added or removed since the file was read
            except (OSError, ValueError) as exc:  # mid-rotation or broken: keep the keys we had
                log.warning("cannot re-read the token keys from %s: %s", self.source, exc)
        return self._keys.get(kid)


_TOKEN_ERRORS: dict[type[Exception], tuple[str, str]] = {
    jwt.ExpiredSignatureError: ("token_expired", "the token has expired"),
    jwt.InvalidAudienceError: ("invalid_token", "the token is not for this audience"),
    jwt.InvalidIssuerError: ("invalid_token", "the token is from another issuer"),
    jwt.InvalidSignatureError: ("invalid_token", "the token's signature does not verify"),
    jwt.ImmatureSignatureError: ("invalid_token", "the token is not valid yet"),
}


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    kid: str | None
    key: jwt.PyJWK
    expires: float  # the token's `exp` plus the leeway, in seconds since the epoch


class TokenVerifier:
    """Verifies bearer tokens. A token verified once is remembered (by its whole text, so by its signature):
    a client sends the same token with every request, and checking its signature again cost a sixth of a
    redemption's CPU. A remembered token is still refused once it expires, and as soon as the key that signed it
    is no longer the issuer's key under its `kid` (a rotation or removal, seen as before within `recheck`)."""

    def __init__(self, keys: KeySet, issuer: str, audience: str, leeway: float = 30, remembered: int = 10_000) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._verified: cachetools.LRUCache[str, _Verified] = cachetools.LRUCache(maxsize=remembered)

    @classmethod
    def from_settings(cls, settings: Any) -> TokenVerifier:
        source = getattr(settings, "auth_jwks", None)
        if not source:
            raise ValueError("AUTH_JWKS is required: the token issuer's public keys (a JWKS file path or URL)")
        return cls(KeySet(source, settings.auth_keys_recheck), settings.auth_issuer, settings.auth_audience)

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            code, reason = _TOKEN_ERRORS.get(type(exc), ("invalid_token", f"the token is not valid: {exc}"))
            raise UnauthenticatedError(code, reason) from exc
        return claims

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if time.time() <= known.expires:
                key = await self.keys.get(known.kid)
                if key is not None and (key is known.key or key.key == known.key.key):
                    return known.principal
            self._verified.pop(token, None)  # expired or its key gone: verified again below, refused with the reason
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError("invalid_token", f"the token cannot be read: {exc}") from exc
        alg = header.get("alg")
        if alg not in ACCEPTED_ALGORITHMS:
            raise UnauthenticatedError("invalid_token", f"tokens signed with {alg!r} are not accepted")
        key = await self.keys.get(header.get("kid"))
        if key is None:
            raise UnauthenticatedError("invalid_token", "the token is signed by a key this service does not know")
        if key.algorithm_name != alg:
            raise UnauthenticatedError("invalid_token", f"the key is for {key.algorithm_name}, the token says {alg}")
        claims = self._decode(token, key)
        try:
            principal = Principal.model_validate(claims)
        except ValidationError as exc:
            reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise UnauthenticatedError("invalid_token", f"the token's claims are not usable: {reason}") from exc
        self._verified[token] = _Verified(principal, header.get("kid"), key, float(claims["exp"]) + self.leeway)
        return principal


# --- deciding -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Who may take an action. Admins may, unless `admin=False` (a member speaks for themselves: ratings, ballots,
    requests)."""

    staff: bool = False  # staff of the target's organisation or of any organisation above it
    member: bool = False  # the member the target is about
    scope: str | None = None  # system principals granted this scope
    anyone: bool = False  # every authenticated person (admin, staff, member); system tokens still need `scope`
    admin: bool = True
    audit: bool = False  # an allowed call is written to the audit log (reads of a person's data)
    anonymous: bool = False  # never written to the audit log, even when refused (ballots)


@dataclass(frozen=True)
class Target:
    """What an action touches: organisations (staff must cover one, or all with `all_orgs`) and a member."""

    orgs: tuple[UUID, ...] = ()
    member_id: UUID | None = None
    label: str = ""
    all_orgs: bool = False
    complete: bool = True  # False: part of what it touches is unknown here, so only admins may act


def organization(org_id: UUID | None) -> Target:
    """An organisation itself (none: the whole federation, which only admins act on)."""
    return Target(orgs=(org_id,) if org_id else (), label=f"organization:{org_id}")


async def target_of(pool: asyncpg.Pool, sql: str, key: object, what: str, label: str) -> Target:
    """What a row of this service's read model touches: its `org_id`, and its `member_id` when it has one.

    `sql` selects that one row by `key` ($1); no row is 404 `<what>_not_found`."""
    row = await pool.fetchrow(sql, key)
    if row is None:
        raise NotFoundError(what, key)
    org_id, member_id = row["org_id"], row.get("member_id")
    return Target(orgs=(org_id,) if org_id else (), member_id=member_id, label=label)


class Guard:
    """A service's rules by action name, and the one check every route calls."""

    def __init__(self, rules: Mapping[str, Rule]) -> None:
        self.rules = dict(rules)

    async def check(
        self, pool: asyncpg.Pool, principal: Principal, action: str, target: Target = Target()
    ) -> Principal:
        rule = self.rules[action]
        refusal = await self._refusal(pool, principal, rule, target)
        if not rule.anonymous and (refusal is not None or rule.audit):
            await record_access(pool, principal, action, target, refusal)
        if refusal is not None:
            code, message = refusal
            raise ForbiddenError(code, message)
        return principal

    async def _refusal(  # noqa: PLR0911 - one answer per role
        self, pool: asyncpg.Pool, principal: Principal, rule: Rule, target: Target
    ) -> tuple[str, str] | None:
        role = principal.role
        if (rule.anyone and role is not Role.SYSTEM) or (role is Role.ADMIN and rule.admin):
            return None
        if role is Role.STAFF and rule.staff:
            assert principal.org_id is not None
            covered = await covers(pool, principal.org_id, target.orgs) if target.orgs else []
            if target.complete and covered and (all(covered) if target.all_orgs else any(covered)):
                return None
            return "outside_organization", "this belongs to an organisation outside the one your token names"
        if role is Role.MEMBER and rule.member:
            if target.member_id is not None and target.member_id == principal.member_id:
                return None
            return "not_own_record", "a member may act only for themselves"
        if role is Role.SYSTEM and rule.scope is not None:
            if rule.scope in principal.scopes:
                return None
            return "scope_missing", f"this needs the scope {rule.scope}"
        return "role_not_permitted", f"a {role} token may not do this"


async def record_access(
    pool: asyncpg.Pool, principal: Principal, action: str, target: Target, refusal: tuple[str, str] | None
) -> None:
    """One audit row: who, what, on what, allowed or refused (with the code). Outside any command's transaction."""
    await pool.execute(
        "INSERT INTO audit_log (actor, role, action, target, outcome) VALUES ($1, $2, $3, $4, $5)",
        principal.actor,
        principal.role.value,
        action,
        target.label or ",".join(str(o) for o in target.orgs),
        "allowed" if refusal is None else f"refused:{refusal[0]}",
    )


async def record_reads(pool: asyncpg.Pool, principal: Principal, action: str, targets: list[str]) -> None:
    """One audit row per person a read showed (a roster page lists many)."""
    await pool.execute(
        "INSERT INTO audit_log (actor, role, action, target, outcome)"
        " SELECT $1, $2, $3, target, 'allowed' FROM unnest($4::text[]) AS target",
        principal.actor,
        principal.role.value,
        action,
        targets,
    )
