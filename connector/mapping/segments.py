"""Schema of mappings/segments.yaml: lifecycle stages, RFM grid, playbook and custom tag rules with hysteresis."""

from __future__ import annotations

import re
from pydantic import Field, PrivateAttr, field_validator, model_validator

from connector.mapping.base import StrictModel, did_you_mean
from connector.mapping.expression import Compare, Literal, Membership, Name, Node, BoolOp, Not, parse_rule
from connector.mapping.features import FEATURES
from connector.mapping.loader import LocatedError

NPS_GROUPS = ("promoter", "passive", "detractor")
TRENDS = ("up", "down", "flat")

# What a lifecycle rule may read: every feature (the health stage has added health_*) plus last run's stage.
LIFECYCLE_KINDS: dict[str, str] = {
    **{name: kind for name, (kind, _) in FEATURES.items()},
    "previous_lifecycle": "str",  # last run's stage, null on the first run
    "previous_lifecycle_days": "number",  # days the customer has been in previous_lifecycle as of this run
    "rfm_r": "number",
    "rfm_f": "number",
    "rfm_m": "number",
    "rfm_code": "str",  # e.g. "455"
    "rfm_segment": "str",  # grid segment name, e.g. "champions"
}
# Tag rules also see this run's lifecycle stage.
TAG_KINDS: dict[str, str] = {**LIFECYCLE_KINDS, "lifecycle": "str"}

_ID = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


def _check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(f'{what} "{value}" must be lower-case letters, digits and "_", starting with a letter')
    return value


class Stage(StrictModel):
    """One lifecycle stage; stages are tried in order and the first whose rule holds wins."""

    name: str
    when: str | None = Field(default=None, description="rule; the last stage has none and catches everyone else")
    min_runs: int = Field(default=1, ge=1, le=100,
                          description="runs in a row this must be the outcome before moving in")
    description: str = ""

    _rule: Node | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        return _check_id(value, "stage name")

    @field_validator("when")
    @classmethod
    def _rule_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rule(value, LIFECYCLE_KINDS)
        return value

    @model_validator(mode="after")
    def _compile(self) -> "Stage":
        self._rule = parse_rule(self.when, LIFECYCLE_KINDS) if self.when is not None else None
        return self

    @property
    def rule(self) -> Node | None:
        return self._rule


class Lifecycle(StrictModel):
    stages: list[Stage] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _fallback_last(cls, stages: list[Stage]) -> list[Stage]:
        names = [s.name for s in stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stage names must be unique: {', '.join(duplicates)} repeated")
        for index, stage in enumerate(stages[:-1]):
            if stage.when is None:
                later = ", ".join(s.name for s in stages[index + 1:])
                raise ValueError(f'stage "{stage.name}" has no "when", so {later} can never be reached; '
                                 "only the last stage may go without a rule")
        if stages[-1].when is not None:
            raise ValueError(f'the last stage ("{stages[-1].name}") must have no "when" so that every customer '
                             "gets exactly one stage")
        return stages

    def names(self) -> list[str]:
        return [s.name for s in self.stages]


class GridCell(StrictModel):
    """A block of the recency x frequency grid: R scores r[0]..r[1], F scores f[0]..f[1] (inclusive)."""

    name: str
    label: str
    r: tuple[int, int]
    f: tuple[int, int]

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        return _check_id(value, "RFM segment name")

    @field_validator("r", "f")
    @classmethod
    def _range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if low < 1 or high < low:
            raise ValueError(f"range {list(value)} must be [low, high] with 1 <= low <= high")
        return value


class Rfm(StrictModel):
    bins: int = Field(default=5, ge=2, le=10, description="quantile bins per score (5 = quintiles)")
    min_customers: int = Field(default=10, ge=2, description="fewer customers with purchases: no RFM scores")
    grid: list[GridCell] = Field(min_length=1)

    @model_validator(mode="after")
    def _grid_exhaustive(self) -> "Rfm":
        owner: dict[tuple[int, int], str] = {}
        names = [c.name for c in self.grid]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"RFM segment names must be unique: {', '.join(duplicates)} repeated")
        for cell in self.grid:
            if cell.r[1] > self.bins or cell.f[1] > self.bins:
                raise ValueError(f'RFM segment "{cell.name}": scores go up to {self.bins} (bins)')
            for r in range(cell.r[0], cell.r[1] + 1):
                for f in range(cell.f[0], cell.f[1] + 1):
                    if (r, f) in owner:
                        raise ValueError(f'RFM grid overlap: R{r} F{f} is in both "{owner[(r, f)]}" and "{cell.name}"')
                    owner[(r, f)] = cell.name
        missing = [f"R{r} F{f}" for r in range(1, self.bins + 1) for f in range(1, self.bins + 1)
                   if (r, f) not in owner]
        if missing:
            raise ValueError(f"RFM grid has gaps: {', '.join(missing)} belong to no segment")
        return self

    def cell(self, r: int, f: int) -> GridCell:
        for cell in self.grid:
            if cell.r[0] <= r <= cell.r[1] and cell.f[0] <= f <= cell.f[1]:
                return cell
        raise KeyError((r, f))  # pragma: no cover - the grid is validated exhaustive


class TagRule(StrictModel):
    """A tag: on while ``when`` holds (or, with ``exit_when``, until that holds), with anti-flapping settings."""

    name: str
    description: str = ""
    when: str = Field(description="rule that puts the tag on")
    exit_when: str | None = Field(default=None, description="rule that takes it off again; default: not when")
    min_runs: int = Field(default=1, ge=1, le=100,
                          description="runs in a row the outcome must differ before it changes")
    cooldown_days: int = Field(default=0, ge=0, description="days after the tag was last put on before it may be again")

    _rule: Node | None = PrivateAttr(default=None)
    _exit_rule: Node | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        return _check_id(value, "tag name")

    @field_validator("when", "exit_when")
    @classmethod
    def _rule_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rule(value, TAG_KINDS)
        return value

    @model_validator(mode="after")
    def _compile(self) -> "TagRule":
        self._rule = parse_rule(self.when, TAG_KINDS)
        self._exit_rule = parse_rule(self.exit_when, TAG_KINDS) if self.exit_when is not None else None
        return self

    @property
    def rule(self) -> Node:
        assert self._rule is not None
        return self._rule

    @property
    def exit_rule(self) -> Node | None:
        return self._exit_rule


def _literal_checks(node: Node) -> list[tuple[str, Literal]]:
    """(name, literal) pairs where a rule compares a name with a string literal."""
    found: list[tuple[str, Literal]] = []
    if isinstance(node, Compare):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if isinstance(a, Name) and isinstance(b, Literal) and isinstance(b.value, str):
                found.append((a.name, b))
        found += _literal_checks(node.left) + _literal_checks(node.right)
    elif isinstance(node, Membership):
        if isinstance(node.item, Name):
            found += [(node.item.name, c) for c in node.choices if isinstance(c.value, str)]
        found += _literal_checks(node.item)
    elif isinstance(node, Not):
        found += _literal_checks(node.operand)
    elif isinstance(node, BoolOp):
        for operand in node.operands:
            found += _literal_checks(operand)
    return found


class SegmentsConfig(StrictModel):
    """mappings/segments.yaml."""

    lifecycle: Lifecycle
    rfm: Rfm
    playbook: list[TagRule] = Field(default_factory=list)
    custom: list[TagRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> "SegmentsConfig":
        names = [t.name for t in self.tags()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LocatedError(f"tag names must be unique across playbook and custom: {', '.join(duplicates)} repeated",
                               ("custom",) if self.custom else ("playbook",))
        # A typo in a compared value ("at_rsk") would silently never match: check values we know.
        known = {
            "lifecycle": self.lifecycle.names(),
            "previous_lifecycle": self.lifecycle.names(),
            "nps_group": list(NPS_GROUPS),
            "health_trend": list(TRENDS),
            "rfm_segment": [c.name for c in self.rfm.grid],
        }
        problems = self._unknown_values(known)
        if problems:
            raise LocatedError.many(problems)
        return self

    def _rules(self) -> list[tuple[tuple[object, ...], str, Node]]:
        rules: list[tuple[tuple[object, ...], str, Node]] = []
        for index, stage in enumerate(self.lifecycle.stages):
            if stage.rule is not None:
                rules.append((("lifecycle", "stages", index, "when"), stage.when or "", stage.rule))
        for section in ("playbook", "custom"):
            for index, tag in enumerate(getattr(self, section)):
                rules.append(((section, index, "when"), tag.when, tag.rule))
                if tag.exit_rule is not None:
                    rules.append(((section, index, "exit_when"), tag.exit_when or "", tag.exit_rule))
        return rules

    def _unknown_values(self, known: dict[str, list[str]]) -> list[LocatedError]:
        problems: list[LocatedError] = []
        for at, text, rule in self._rules():
            for name, literal in _literal_checks(rule):
                choices = known.get(name)
                if choices is not None and literal.value not in choices:
                    problems.append(LocatedError(
                        f'column {literal.column}: "{literal.value}" is not a {name} value'
                        f"{did_you_mean(literal.value, choices)} in rule `{text}`", at))
        return problems

    def check_health(self, band_labels: list[str]) -> list[tuple[tuple[object, ...], str]]:
        """(key path, reason) for every rule comparing health_band with a label health.yaml does not define.

        A cross-file check for the pack loader (``pack.error("segments.yaml", path, reason)``)."""
        return [(p.problems[0][0], f"{'.'.join(str(k) for k in p.problems[0][0])}: {p.problems[0][1]}")
                for p in self._unknown_values({"health_band": list(band_labels)})]

    @classmethod
    def raw_problems(cls, data: dict) -> list[LocatedError]:
        """The compared-value check on the raw file, so the loader reports it with other problems in one pass."""

        def items(value: object) -> list:
            return value if isinstance(value, list) else []

        def names(value: object) -> list[str]:
            return [str(item["name"]) for item in items(value) if isinstance(item, dict) and "name" in item]

        lifecycle = data.get("lifecycle") if isinstance(data.get("lifecycle"), dict) else {}
        rfm = data.get("rfm") if isinstance(data.get("rfm"), dict) else {}
        stages = names(lifecycle.get("stages"))
        known = {"lifecycle": stages, "previous_lifecycle": stages, "nps_group": list(NPS_GROUPS),
                 "health_trend": list(TRENDS), "rfm_segment": names(rfm.get("grid"))}
        rules: list[tuple[tuple[object, ...], str, dict[str, str]]] = []
        for index, stage in enumerate(items(lifecycle.get("stages"))):
            if isinstance(stage, dict) and isinstance(stage.get("when"), str):
                rules.append((("lifecycle", "stages", index, "when"), stage["when"], LIFECYCLE_KINDS))
        for section in ("playbook", "custom"):
            for index, tag in enumerate(items(data.get(section))):
                for key in ("when", "exit_when"):
                    if isinstance(tag, dict) and isinstance(tag.get(key), str):
                        rules.append(((section, index, key), tag[key], TAG_KINDS))
        problems: list[LocatedError] = []
        for at, text, kinds in rules:
            try:
                rule = parse_rule(text, kinds)
            except ValueError:
                continue  # reported by the field's own validator
            for name, literal in _literal_checks(rule):
                choices = known.get(name)
                if choices and literal.value not in choices:
                    problems.append(LocatedError(
                        f'column {literal.column}: "{literal.value}" is not a {name} value'
                        f"{did_you_mean(literal.value, choices)} in rule `{text}`", at))
        return problems

    def tags(self) -> list[TagRule]:
        return [*self.playbook, *self.custom]

    def option_values(self) -> dict[str, list[dict[str, str]]]:
        """Enumeration options for the write-back: lifecycle stages, NPS groups, RFM segments, tags."""
        return {
            "lifecycle": [{"value": s.name, "description": s.description} for s in self.lifecycle.stages],
            "nps_group": [{"value": g, "description": ""} for g in NPS_GROUPS],
            "rfm_segment": [{"value": c.name, "label": c.label, "description": ""} for c in self.rfm.grid],
            "tags": [{"value": t.name, "description": t.description} for t in self.tags()],
        }

