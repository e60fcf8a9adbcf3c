"""Secrets and personal data out of text meant for logs, errors and the ledger: defined once."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# private-app tokens and Service Keys (pat-…), bearer headers, OAuth access tokens (CJ…)
_TOKEN = re.compile(r"(pat-[\w-]+|Bearer\s+\S+|CJ[\w-]{20,})")


def redact(text: str) -> str:
    """Drop e-mail addresses and anything token-shaped from ``text``."""
    return _TOKEN.sub("<token>", _EMAIL.sub("<email>", text))
