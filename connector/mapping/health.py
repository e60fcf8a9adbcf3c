"""Schema of mappings/health.yaml: scorecards of weighted components, normalisation methods, bands, trend, explanation."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, PrivateAttr, field_validator, model_validator

from connector.mapping.base import StrictModel, did_you_mean
from connector.mapping.expression import Node, parse_rule
from connector.mapping.features import FEATURES

# The health stage adds these; a scorecard condition cannot read what it is about to compute.
HEALTH_OUTPUT_FEATURES = ("health_score", "health_band", "health_change", "health_trend")
# Names a scorecard condition or a component may read.
INPUT_KINDS: dict[str, str] = {name: kind for name, (kind, _) in FEATURES.items() if name not in HEALTH_OUTPUT_FEATURES}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("name", "raw", "score", "s")  # {s}: "s" unless raw is 1, for plurals


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


class _Component(StrictModel):
    """Fields every component has; ``method`` picks the normalisation to 0-100."""

    name: str = Field(description="short label used in the explanation, e.g. usage")
    feature: str = Field(description="feature from connector/mapping/features.py")
    weight: float = Field(gt=0, le=999999, description="any positive number; weights are normalised")
    explain: str | None = Field(default=None, description="template with {name} {raw} {score} {s}")

    feature_kinds: ClassVar[tuple[str, ...]] = ("number",)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        return _check_id(value, "component name")

    @field_validator("feature")
    @classmethod
    def _feature_known(cls, value: str) -> str:
        return _check_feature(value, cls.feature_kinds)

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


class TargetRatio(_Component):
    """min(100, 100 * v / target): more is better up to the target (logins, seats in use)."""

    method: Literal["target_ratio"]
    target: float = Field(gt=0)


class Inverse(_Component):
    """max(0, 100 - k * v): each unit costs k points (open tickets, days past due)."""

    method: Literal["inverse"]
    k: float = Field(gt=0)


class LinearDecay(_Component):
    """100 * max(0, 1 - days / D): freshness of the last touch or login."""

    method: Literal["linear_decay"]
    days: float = Field(gt=0, description="D: the age at which the component reaches 0")


class Survey(_Component):
    """nps: rating * 10; csat: percentage as is; ces: (x - 1) / 6 * 100 on the 1-7 scale."""

    method: Literal["survey"]
    scale: Literal["nps", "csat", "ces"]


class BoolMap(_Component):
    """A yes/no feature mapped to two scores (payment_overdue: true -> 0, false -> 100)."""

    method: Literal["bool"]
    if_true: float = Field(ge=0, le=100)
    if_false: float = Field(ge=0, le=100)

    feature_kinds: ClassVar[tuple[str, ...]] = ("bool",)


class Percentile(_Component):
    """Rank among peers sharing a feature value (industry, seat band): lowest 0, highest 100, ties share the midrank."""

    method: Literal["percentile"]
    peer: str | None = Field(default=None, description="feature whose value defines the peer group; none = everyone")
    min_peers: int = Field(default=5, ge=2, description="smaller peer groups are ranked among all customers")
    higher_is_better: bool = True

    @field_validator("peer")
    @classmethod
    def _peer_known(cls, value: str | None) -> str | None:
        if value is not None:
            _check_feature(value, ("str", "number", "bool"))
        return value


Component = Annotated[
    Union[TargetRatio, Inverse, LinearDecay, Survey, BoolMap, Percentile], Field(discriminator="method")
]
METHODS = ("target_ratio", "inverse", "linear_decay", "survey", "bool", "percentile")


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
                raise ValueError(f'bands overlap: "{band.label}" starts at {band.min}, already covered up to {expected - 1}')
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

    def band_labels(self) -> list[str]:
        return [b.label for b in self.bands]


def explain_template(component: Any) -> str:
    """The explain template of a component, with a default per method."""
    if component.explain:
        return component.explain
    return "{name} {score}/100"
