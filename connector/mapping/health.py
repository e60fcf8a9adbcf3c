"""Schema of mappings/health.yaml: scorecards of weighted components, their methods, bands, trend, explanation."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from connector.mapping.base import StrictModel, did_you_mean
from connector.mapping.expression import Node, parse_rule
from connector.mapping.features import FEATURES
from connector.mapping.loader import LocatedError

# The health stage adds these; a scorecard condition cannot read what it is about to compute.
HEALTH_OUTPUT_FEATURES = ("health_score", "health_band", "health_change", "health_trend")
# Names a scorecard condition or a component may read.
INPUT_KINDS: dict[str, str] = {name: kind for name, (kind, _) in FEATURES.items() if name not in HEALTH_OUTPUT_FEATURES}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("name", "raw", "score", "s", "age")  # {s}: "s" unless raw is 1; {age}: a day count, coarsely


def _check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(f'{what} "{value}" must be lower-case letters, digits and "_", starting with a letter')
    return value


def _check_feature(name: str, kinds: tuple[str, ...]) -> str:
    kind = INPUT_KINDS.get(name)
    if kind is None:
        raise ValueError(f'unknown feature "{name}"{did_you_mean(name, INPUT_KINDS)}')
    if kind not in kinds:
        raise ValueError(f'feature "{name}" is a {kind}; this method needs a {" or ".join(kinds)} feature')
    return name


# method -> (its parameters, the feature kinds it reads). One flat model rather than a union per method, so a
# misspelt parameter gets a did-you-mean and a wrong method points at its own line.
METHODS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "target_ratio": (("target",), ("number",)),  # min(100, 100 * v / target)
    "inverse": (("k",), ("number",)),  # max(0, 100 - k * v)
    "linear_decay": (("days",), ("number",)),  # 100 * max(0, 1 - v / days)
    "survey": (("scale",), ("number",)),  # nps v * 10, csat v, ces (v - 1) / 6 * 100
    "bool": (("if_true", "if_false"), ("bool",)),
    "percentile": (("peer", "min_peers", "higher_is_better"), ("number",)),
}
_REQUIRED = {"target", "k", "days", "scale", "if_true", "if_false"}


class Component(StrictModel):
    """One measure of a scorecard: a feature, how it becomes 0-100 (``method`` and its parameters), its weight."""

    name: str = Field(description="short label used in the explanation, e.g. usage")
    feature: str = Field(description="feature from connector/mapping/features.py")
    method: Literal["target_ratio", "inverse", "linear_decay", "survey", "bool", "percentile"]
    weight: float = Field(gt=0, le=999999, description="any positive number; weights are normalised")
    explain: str | None = Field(default=None, description="template with {name} {raw} {score} {s}")
    # method parameters (each method takes only its own; see METHODS)
    target: float | None = Field(default=None, gt=0, description="target_ratio: the value that scores 100")
    k: float | None = Field(default=None, gt=0, description="inverse: points lost per unit")
    days: float | None = Field(default=None, gt=0, description="linear_decay: the age at which it reaches 0")
    scale: Literal["nps", "csat", "ces"] | None = None
    if_true: float | None = Field(default=None, ge=0, le=100)
    if_false: float | None = Field(default=None, ge=0, le=100)
    peer: str | None = Field(default=None, description="percentile: feature whose value defines the peer group")
    min_peers: int | None = Field(default=None, ge=2, description="percentile: smaller groups rank among everyone")
    higher_is_better: bool | None = None

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        return _check_id(value, "component name")

    @field_validator("feature")
    @classmethod
    def _feature_known(cls, value: str) -> str:
        return _check_feature(value, ("number", "bool", "str", "date"))

    @field_validator("peer")
    @classmethod
    def _peer_known(cls, value: str | None) -> str | None:
        if value is not None:
            _check_feature(value, ("str", "number", "bool"))
        return value

    @field_validator("explain")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for match in _PLACEHOLDER.finditer(value):
            if match.group(1) not in PLACEHOLDERS:
                raise ValueError(f'unknown placeholder "{{{match.group(1)}}}" in explain'
                                 f'{did_you_mean(match.group(1), PLACEHOLDERS)}')
        return value

    @model_validator(mode="after")
    def _parameters_fit_method(self) -> "Component":
        own, kinds = METHODS[self.method]
        problems: list[LocatedError] = []
        kind = INPUT_KINDS[self.feature]
        if kind not in kinds:
            problems.append(LocatedError(f'feature "{self.feature}" is a {kind}; method {self.method} needs a '
                                         f'{" or ".join(kinds)} feature', ("feature",)))
        for name in sorted(_REQUIRED & set(own)):
            if getattr(self, name) is None:
                problems.append(LocatedError(f'method {self.method} needs "{name}"', ()))
        for name in METHODS_PARAMETERS:
            if name not in own and getattr(self, name) is not None:
                problems.append(LocatedError(f'"{name}" does not apply to method {self.method} '
                                             f'(it takes: {", ".join(own)})', (name,)))
        if problems:
            raise LocatedError.many(problems)
        return self

    def percentile_settings(self) -> tuple[str | None, int, bool]:
        """(peer, min_peers, higher_is_better) with their defaults."""
        return (self.peer, 5 if self.min_peers is None else self.min_peers,
                True if self.higher_is_better is None else self.higher_is_better)


METHODS_PARAMETERS = sorted({p for own, _ in METHODS.values() for p in own})


class Scorecard(StrictModel):
    """Components and the condition that selects this scorecard (first match wins; no condition = everyone)."""

    name: str
    when: str | None = Field(default=None, description="rule over features; see connector/mapping/expression.py")
    components: list[Component] = Field(min_length=1)

    _rule: Node | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        return _check_id(value, "scorecard name")

    @field_validator("when")
    @classmethod
    def _rule_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rule(value, INPUT_KINDS)  # raises ExpressionError (a ValueError) with the column
        return value

    @model_validator(mode="after")
    def _unique_components(self) -> "Scorecard":
        seen: set[str] = set()
        for component in self.components:
            if component.name in seen:
                raise ValueError(f'scorecard "{self.name}": component "{component.name}" appears twice')
            seen.add(component.name)
        self._rule = parse_rule(self.when, INPUT_KINDS) if self.when is not None else None
        return self

    @property
    def rule(self) -> Node | None:
        return self._rule


class Band(StrictModel):
    label: str
    min: int = Field(ge=0, le=100)
    max: int = Field(ge=0, le=100)

    @field_validator("label")
    @classmethod
    def _label_shape(cls, value: str) -> str:
        return _check_id(value, "band label")

    @model_validator(mode="after")
    def _ordered(self) -> "Band":
        if self.min > self.max:
            raise ValueError(f'band "{self.label}": min {self.min} is above max {self.max}')
        return self


class Trend(StrictModel):
    tolerance: float = Field(default=2, ge=0, description="|change| up to this many points is flat")


class Explanation(StrictModel):
    max_length: int = Field(default=100, ge=20, le=65536)
    components: int = Field(default=2, ge=1, le=10, description="how many weakest components to name")


def _span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


DEFAULT_BANDS = (Band(label="red", min=0, max=50), Band(label="yellow", min=51, max=75),
                 Band(label="green", min=76, max=100))


class HealthConfig(StrictModel):
    """mappings/health.yaml."""

    coverage_min: float = Field(default=0.5, gt=0, le=1, description="share of total weight that must be present")
    bands: list[Band] = Field(default_factory=lambda: list(DEFAULT_BANDS))
    band_margin: int = Field(default=0, ge=0, le=20, description="points a score may stray past its band's edge "
                             "before the band changes (0 = none)")
    trend: Trend = Field(default_factory=Trend)
    explanation: Explanation = Field(default_factory=Explanation)
    scorecards: list[Scorecard] = Field(min_length=1)

    @field_validator("bands")
    @classmethod
    def _bands_cover(cls, bands: list[Band]) -> list[Band]:
        labels = [b.label for b in bands]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"band labels must be unique: {', '.join(duplicates)} repeated")
        ordered = sorted(bands, key=lambda b: b.min)
        expected = 0
        for band in ordered:
            if band.min > expected:
                raise ValueError(f"bands leave a gap: no band covers {_span(expected, band.min - 1)}")
            if band.min < expected:
                raise ValueError(f'bands overlap: "{band.label}" starts at {band.min}, '
                                 f"already covered up to {expected - 1}")
            expected = band.max + 1
        if expected != 101:
            raise ValueError(f"bands must reach 100: no band covers {_span(expected, 100)}")
        return ordered

    @model_validator(mode="after")
    def _scorecards(self) -> "HealthConfig":
        names = [s.name for s in self.scorecards]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scorecard names must be unique: {', '.join(duplicates)} repeated")
        for index, card in enumerate(self.scorecards[:-1]):
            if card.when is None:
                later = ", ".join(s.name for s in self.scorecards[index + 1:])
                raise ValueError(f'scorecard "{card.name}" has no "when", so it matches everyone and {later} '
                                 "can never be used; give it a condition or move it last")
        return self

    def band_for(self, score: int | None) -> str | None:
        if score is None:
            return None
        for band in self.bands:
            if band.min <= score <= band.max:
                return band.label
        raise ValueError(f"score {score} outside 0-100")  # pragma: no cover - bands cover 0-100

    def sticky_band(self, score: int | None, previous_band: str | None) -> str | None:
        """The band, kept at last run's while the score is within ``band_margin`` points of that band's range."""
        band = self.band_for(score)
        if score is None or previous_band is None or band == previous_band or not self.band_margin:
            return band
        for candidate in self.bands:
            if candidate.label == previous_band:
                if candidate.min - self.band_margin <= score <= candidate.max + self.band_margin:
                    return previous_band
                break
        return band

    def band_labels(self) -> list[str]:
        return [b.label for b in self.bands]


def explain_template(component: Any) -> str:
    """The explain template of a component, with a default per method."""
    if component.explain:
        return component.explain
    return "{name} {score}/100"
