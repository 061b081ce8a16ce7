"""Where the services are, and how people sign in."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    membership_url: str = "http://127.0.0.1:8001"
    transfer_url: str = "http://127.0.0.1:8002"
    servicecard_url: str = "http://127.0.0.1:8003"
    feedback_url: str = "http://127.0.0.1:8004"
    # the development issuer's folder (.run/auth, as `make token` uses): when set, the sign-in page signs tokens
    # for a chosen role; unset (production), people sign in with the bearer token their identity provider issues
    console_dev_issuer: Path | None = None
    # the key for CSRF tokens; a random one per process when empty (forms then expire on a restart)
    console_secret: str = ""
    # behind HTTPS the cookies are marked Secure
    console_cookie_secure: bool = False
    service_timeout: float = 15
