"""Start the project's processes for tests, with the settings a test chose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from shared.settings import KernelSettings

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: KernelSettings, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, value in settings.model_dump().items():
        if value is None:  # unset: the process's default, not the text "None"
            continue
        env[name.upper()] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    env.update(extra)
    return env


def start_module(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
