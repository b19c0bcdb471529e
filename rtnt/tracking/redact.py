"""Credentials never leave the process in clear: every URI that rtnt logs, prints or stores goes
through these functions first. Pass credentials through the environment where the libraries read
them (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, an Optuna storage URL taken from an
environment variable with `${oc.env:...}`) and they are not written even in redacted form."""

from __future__ import annotations

import re
from pathlib import Path

# scheme://user:password@ -> scheme://user:***@ (RFC 3986 userinfo; the password may hold any
# character but '@', '/' and whitespace)
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):[^@/\s]*@")


def redact_text(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (log lines, YAML, error messages)."""
    return _USERINFO.sub(r"\1:***@", text)


def redact_files(paths: list[Path]) -> None:
    """Rewrite text files (Hydra's .hydra/*.yaml, multirun.yaml) in place with their URLs redacted."""
    for path in paths:
        text = path.read_text(encoding="utf-8")
        clean = redact_text(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")
