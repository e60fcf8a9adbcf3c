"""Fault injection: 429s, 5xx, 423, connection resets and slow answers, by probability or scripted sequence.

Spec grammar (comma-separated items):
  ``503:0.05``            answer 503 with probability 0.05 (codes 429, 423, 500, 502, 503, 504)
  ``reset:0.01``          close the connection without an answer
  ``slow:0.02@2s``        delay the (normal) answer by 2 s (``@500ms`` also accepted)
  ``seq:200,429,503,200`` the next requests get exactly these outcomes in order, then no faults; items of a
                          sequence are codes, ``200`` (no fault), ``reset`` or ``slow@1s``
  ``path=/crm/v3/objects/contacts``  only requests whose path starts with this prefix are affected
Probabilistic draws come from ``random.Random(seed)``, so the same requests in the same order meet the same faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

FAULT_CODES = frozenset({429, 423, 500, 502, 503, 504})


@dataclass(frozen=True)
class Fault:
    kind: str  # "status" | "reset" | "slow"
    status: int = 0
    delay_s: float = 0.0


def _parse_delay(text: str) -> float:
    text = text.strip().lower()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    return float(text)


def _parse_outcome(token: str) -> Fault | None:
    token = token.strip().lower()
    if token == "200":
        return None
    if token == "reset":
        return Fault("reset")
    if token.startswith("slow"):
        _, _, delay = token.partition("@")
        return Fault("slow", delay_s=_parse_delay(delay or "2s"))
    code = int(token)
    if code not in FAULT_CODES:
        raise ValueError(f"fault code {code} is not one of {sorted(FAULT_CODES)} (or 200, reset, slow@Ns)")
    return Fault("status", status=code)


@dataclass(frozen=True)
class FaultSpec:
    rules: tuple[tuple[Fault, float], ...] = ()  # (fault, probability), checked in order
    sequence: tuple[Fault | None, ...] = ()
    path_prefix: str = ""

    @property
    def empty(self) -> bool:
        return not self.rules and not self.sequence


def parse_faults(spec: str | None) -> FaultSpec:
    """Parse a ``--faults`` spec (see the module docstring); raise ValueError naming the bad item."""
    if not spec or not spec.strip():
        return FaultSpec()
    rules: list[tuple[Fault, float]] = []
    sequence: list[Fault | None] = []
    prefix = ""
    in_sequence = False
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            if item.startswith("path="):
                prefix, in_sequence = item[5:], False
            elif item.startswith("seq:"):
                in_sequence = True
                sequence.append(_parse_outcome(item[4:]))
            elif ":" in item:
                in_sequence = False
                kind, _, rest = item.partition(":")
                prob_text, _, delay = rest.partition("@")
                prob = float(prob_text)
                if not 0.0 <= prob <= 1.0:
                    raise ValueError("probability must be between 0 and 1")
                fault = _parse_outcome(f"slow@{delay or '2s'}" if kind.lower() == "slow" else kind)
                if fault is None:
                    raise ValueError("200 is not a fault")
                rules.append((fault, prob))
            elif in_sequence:
                sequence.append(_parse_outcome(item))
            else:
                raise ValueError("expected CODE:P, reset:P, slow:P@Ns, seq:… or path=PREFIX")
        except ValueError as exc:
            raise ValueError(f"bad fault item {item!r}: {exc}") from None
    return FaultSpec(tuple(rules), tuple(sequence), prefix)


class FaultPlan:
    """Decides, request by request, which fault (if any) to inject. Thread-safe; ``replace`` swaps the spec live."""

    def __init__(self, spec: FaultSpec | str | None = None, seed: int = 0):
        self._lock = threading.Lock()
        self._seed = seed
        self.injected: list[tuple[str, Fault]] = []  # (path, fault) of every injected fault, for assertions
        self.replace(spec)

    def replace(self, spec: FaultSpec | str | None) -> None:
        parsed = spec if isinstance(spec, FaultSpec) else parse_faults(spec)
        with self._lock:
            self.spec = parsed
            self._random = random.Random(self._seed)
            self._position = 0

    def decide(self, path: str) -> Fault | None:
        spec = self.spec
        if spec.empty or not path.startswith(spec.path_prefix):
            return None
        with self._lock:
            fault: Fault | None = None
            if self._position < len(spec.sequence):
                fault = spec.sequence[self._position]
                self._position += 1
            elif spec.rules:
                draw = self._random.random()
                for candidate, prob in spec.rules:  # one draw, rules take consecutive slices of [0, 1)
                    if draw < prob:
                        fault = candidate
                        break
                    draw -= prob
            if fault is not None:
                self.injected.append((path, fault))
            return fault
