"""Small shared helper of the metrics: a function's value per distinct input, computed on first sight."""

from __future__ import annotations

from typing import Any, Callable


class Once(dict):
    """``value -> function(value)``, each distinct value computed once, on first sight: ``map(once.__getitem__,
    values)`` stays in C for every value seen before (a column holds a handful of statuses, types or groups)."""

    def __init__(self, function: Callable[[Any], Any]):
        super().__init__()
        self.function = function

    def __missing__(self, value: Any) -> Any:
        result = self[value] = self.function(value)
        return result
