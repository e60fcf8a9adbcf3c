"""Shared pieces of the mapping schema: the strict base model and did-you-mean."""

from __future__ import annotations

import difflib
from typing import Iterable

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Every mapping model forbids unknown keys so a typo fails with file:line (mapping loader adds it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for a near miss, else the list of valid choices."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f' (did you mean "{close[0]}"?)'
    if len(choices) <= 30:
        return f" (valid: {', '.join(choices)})"
    return ""
