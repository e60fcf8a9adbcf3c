"""The write plan (pure): which record gets which value, diffed against the CRM's current values as a join."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, astuple, dataclass, field, is_dataclass
from typing import Any, Callable, NamedTuple

import polars as pl

from connector.mapping.writeback import OutputMapping, PropertyDef, WritebackConfig
from connector.model import Customer, Deal
from connector.writeback.desired import OutputColumns
from connector.writeback.format import same_value

CurrentValues = Mapping[tuple[str, str], Mapping[str, "str | None"]]
# Object type and property repeat on every row of a plan of millions: categoricals keep them one number a row.
CHANGE_SCHEMA = {"object_type": pl.Categorical, "record_id": pl.String, "property": pl.Categorical,
                 "before": pl.String, "after": pl.String}
REACH_SCHEMA = {"customer_id": pl.String, "record_id": pl.String, "priority": pl.Int8}


class Change(NamedTuple):
    """One property of one record to set; ``after`` "" clears it."""

    object_type: str
    record_id: str
    property: str
    before: str | None
    after: str


@dataclass(frozen=True)
class KeptEdit:
    """A value someone changed after our run wrote it: rollback leaves it alone."""

    object_type: str
    record_id: str
    property: str
    written: str | None
    current: str | None


class Rows:
    """Rows of a plan kept as a frame and read as ``row`` tuples only when asked (or given as rows, framed when
    asked): a plan of millions never becomes millions of objects unless something reads it row by row."""

    def __init__(self, row: type, schema: Mapping[str, pl.DataType], rows: Iterable[Any] = (), *,
                 frame: Callable[[], pl.DataFrame] | pl.DataFrame | None = None):
        self.row, self.schema = row, schema
        self._rows = None if frame is not None else tuple(rows)
        self._frame, self._make = (frame, None) if isinstance(frame, pl.DataFrame) or frame is None else (None, frame)

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            if self._make is not None:
                self._frame, self._make = self._make(), None
            else:
                self._frame = pl.DataFrame([astuple(r) if is_dataclass(r) else tuple(r) for r in self._rows or ()],
                                           schema=dict(self.schema), orient="row", strict=False)
        return self._frame

    @property
    def rows(self) -> tuple[Any, ...]:
        if self._rows is None:
            self._rows = tuple(self.row(*values) for values in self.frame.iter_rows())
        return self._rows

    @property
    def framed(self) -> bool:
        """Whether the frame exists (or only the rows, or only the recipe)."""
        return self._frame is not None

    def __len__(self) -> int:
        return self._frame.height if self._frame is not None or self._rows is None else len(self._rows)


class Plan:
    """A write plan: the changes in a stable order, and what planning noticed.

    A computed plan keeps its changes as columns, one (record_id, before, after) frame per (object type,
    property): a first sync plans every value of a million customers. The one frame of ``CHANGE_SCHEMA`` in plan
    order (``frame``) and the ``Change`` rows (``changes``) are made when first read (apply, the terminal).
    """

    def __init__(self, changes: Iterable[Change] = (), kept: Iterable[KeptEdit] = (), conflicts: int = 0, *,
                 parts: Mapping[tuple[str, str], pl.DataFrame] | None = None):
        self._parts = None if parts is None else {key: part for key, part in parts.items() if part.height}
        parts_now = self._parts
        self._rows = Rows(Change, CHANGE_SCHEMA, changes,
                          frame=None if parts_now is None else lambda: _in_plan_order(parts_now))
        self.kept = tuple(kept)
        self.conflicts = conflicts  # records two customers wanted different values for (the primary one won)

    @property
    def frame(self) -> pl.DataFrame:
        frame = self._rows.frame
        self._parts = None  # the ordered frame holds them now
        return frame

    @property
    def changes(self) -> tuple[Change, ...]:
        return self._rows.rows

    def __len__(self) -> int:
        if self._parts is not None:
            return sum(part.height for part in self._parts.values())
        return len(self._rows)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return (self.changes, self.kept, self.conflicts) == (other.changes, other.kept, other.conflicts)

    def __repr__(self) -> str:
        return f"Plan({len(self)} changes, {len(self.kept)} kept, {self.conflicts} conflicts)"

    def head(self, count: int) -> tuple[Change, ...]:
        """The first ``count`` changes (without reading all of them as rows)."""
        if not self._rows.framed and self._parts is None:
            return self.changes[:count]
        return tuple(Change(*row) for row in self.frame.head(count).iter_rows())

    def counts(self) -> dict[str, dict[str, int]]:
        """Changes per object type and property."""
        if self._parts is not None:
            found = ((obj, name, part.height) for (obj, name), part in self._parts.items())
        else:
            found = self.frame.group_by("object_type", "property").len().iter_rows()
        out: dict[str, dict[str, int]] = {}
        for object_type, name, count in sorted(found):
            out.setdefault(object_type, {})[name] = count
        return out

    def record_count(self) -> int:
        if self._parts is not None:
            kinds = {obj for obj, _ in self._parts}
            return sum(pl.concat([part["record_id"] for (obj, _), part in self._parts.items() if obj == kind]
                                 ).n_unique() for kind in kinds)
        return self.frame.select("object_type", "record_id").n_unique() if len(self) else 0

    def properties(self) -> frozenset[tuple[str, str]]:
        if self._parts is not None:
            return frozenset(self._parts)
        return frozenset(self.frame.select("object_type", "property").unique().iter_rows())

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c._asdict() for c in self.changes],
            "counts": self.counts(),
            "records": self.record_count(),
            "kept": [asdict(k) for k in self.kept],
            "conflicts": self.conflicts,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        return cls(
            changes=tuple(Change(**c) for c in data.get("changes", ())),
            kept=tuple(KeptEdit(**k) for k in data.get("kept", ())),
            conflicts=int(data.get("conflicts", 0)),
        )


# ---------------------------------------------------------------- the CRM's current values, as columns


@dataclass(frozen=True)
class CurrentFrames:
    """The CRM's current values: per object type a frame of ``id`` + one String column per property (null: no
    value). What ``StateStore.records_frame`` reads, or what a dict of fetched records becomes."""

    frames: Mapping[str, pl.DataFrame] = field(default_factory=dict)

    @classmethod
    def of(cls, current: "CurrentFrames | CurrentValues | None",
           names: Mapping[str, Sequence[str]]) -> "CurrentFrames":
        """From ``{(object_type, id): {property: value}}`` (only ``names`` per object type are kept)."""
        if isinstance(current, CurrentFrames):
            return current
        current = current or {}
        frames = {}
        for object_type, props in names.items():
            ids = [record_id for (kind, record_id) in current if kind == object_type]
            rows = [current[(object_type, record_id)] or {} for record_id in ids]
            frames[object_type] = pl.DataFrame(
                {"id": ids, **{name: [_text(row.get(name)) for row in rows] for name in props}},
                schema={"id": pl.String, **{name: pl.String for name in props}})
        return cls(frames)

    @classmethod
    def of_changes(cls, changes: pl.DataFrame) -> "CurrentFrames":
        """What the CRM holds once ``changes`` (a plan's frame) are written, on records that held nothing else."""
        frames = {}
        for (object_type,), part in changes.partition_by("object_type", as_dict=True).items():
            frames[object_type] = part.pivot("property", index="record_id", values="after").rename(
                {"record_id": "id"})
        return cls(frames)

    def ids(self, object_type: str) -> pl.Series:
        """The ids of the type's records that were read, in the frame's order."""
        frame = self.frames.get(object_type)
        return frame["id"] if frame is not None else pl.Series("id", [], dtype=pl.String)

    def column(self, object_type: str, name: str) -> pl.Series | None:
        """One property's values, aligned with ``ids``; None when it was not read."""
        frame = self.frames.get(object_type)
        return frame[name].cast(pl.String) if frame is not None and name in frame.columns else None

    def values(self, object_type: str, name: str) -> pl.DataFrame:
        """(record_id, before) of one property: every record of the type that was read."""
        frame = self.frames.get(object_type)
        if frame is None or name not in frame.columns:
            return pl.DataFrame(schema={"record_id": pl.String, "before": pl.String})
        return frame.select(pl.col("id").alias("record_id"), pl.col(name).cast(pl.String).alias("before"))

    def lookup(self, object_type: str, name: str, ids: Iterable[str]) -> dict[str, str | None]:
        """A few records' values as a dict (the e-mails of the contacts a workflow action names)."""
        wanted = pl.Series("record_id", list(ids), dtype=pl.String)
        found = self.values(object_type, name).filter(pl.col("record_id").is_in(wanted.implode()))
        return dict(found.iter_rows())


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


# ---------------------------------------------------------------- who is reached: customers and deals as columns


def customers_frame(customers: pl.DataFrame | Mapping[str, Customer] | Iterable[Customer]) -> pl.DataFrame:
    """id, object_type, contact_ids, primary_contact_id: the model's customers frame, or of Customer rows."""
    if isinstance(customers, pl.DataFrame):
        return customers.select("id", "object_type", "contact_ids", "primary_contact_id")
    rows = list(customers.values() if isinstance(customers, Mapping) else customers)
    return pl.DataFrame({"id": [c.id for c in rows], "object_type": [c.object_type for c in rows],
                         "contact_ids": [list(c.contact_ids) for c in rows],
                         "primary_contact_id": [c.primary_contact_id for c in rows]},
                        schema={"id": pl.String, "object_type": pl.String, "contact_ids": pl.List(pl.String),
                                "primary_contact_id": pl.String})


def deals_frame(deals: pl.DataFrame | Iterable[Deal]) -> pl.DataFrame:
    """id, customer_id, is_closed: the model's deals frame, or of Deal rows."""
    if isinstance(deals, pl.DataFrame):
        return deals.select("id", "customer_id", "is_closed")
    rows = list(deals)
    return pl.DataFrame({"id": [d.id for d in rows], "customer_id": [d.customer_id for d in rows],
                         "is_closed": [d.is_closed for d in rows]},
                        schema={"id": pl.String, "customer_id": pl.String, "is_closed": pl.Boolean})


def reach(customers: pl.DataFrame, deals: pl.DataFrame, object_type: str, contacts: str) -> pl.DataFrame:
    """(customer_id, record_id, priority) of every record an output or rule on ``object_type`` reaches, customers
    by id, each customer's records in the model's order (contacts as associated, deals as stored).

    A company reaches itself; a customer that is a contact reaches itself as its contact; a company reaches its
    primary contact (``contacts: primary``) or all its contacts, the primary first in priority (0, others 1);
    open deals go to their customer. A lower priority wins a record several customers reach.
    """
    kind = pl.col("object_type")
    if object_type == "companies":
        found = customers.filter(kind == "companies").select(
            pl.col("id").alias("customer_id"), pl.col("id").alias("record_id"), pl.lit(0, pl.Int8).alias("priority"))
    elif object_type == "deals":
        found = deals.filter(pl.col("customer_id").is_not_null() & ~pl.col("is_closed").fill_null(False)).select(
            "customer_id", pl.col("id").alias("record_id"), pl.lit(0, pl.Int8).alias("priority"))
    else:
        own = customers.filter(kind == "contacts").select(
            pl.col("id").alias("customer_id"), pl.col("id").alias("record_id"), pl.lit(0, pl.Int8).alias("priority"))
        companies = customers.filter(kind != "contacts")
        primary = pl.col("primary_contact_id")
        if contacts == "primary":
            linked = companies.filter(primary.is_not_null() & (primary != "")).select(
                pl.col("id").alias("customer_id"), primary.alias("record_id"), pl.lit(0, pl.Int8).alias("priority"))
        else:
            linked = companies.select("id", "primary_contact_id", "contact_ids").explode("contact_ids").filter(
                pl.col("contact_ids").is_not_null()).select(
                pl.col("id").alias("customer_id"), pl.col("contact_ids").alias("record_id"),
                (pl.col("contact_ids") != primary).fill_null(True).cast(pl.Int8).alias("priority"))
        found = pl.concat([own, linked])
    return found.cast(REACH_SCHEMA).sort("customer_id", maintain_order=True)


# ---------------------------------------------------------------- the plan


class Reaches:
    """``reach`` over one set of customers and deals, once per (object type, contacts) an output or rule names: the
    plan and the enrollments of a pass share them."""

    def __init__(self, customers: Any, deals: Any):
        self.customers, self.deals = customers_frame(customers), deals_frame(deals)
        self._cache: dict[tuple[str, str], pl.DataFrame] = {}

    @classmethod
    def of(cls, customers: "Reaches | pl.DataFrame | Iterable[Customer]", deals: Any = ()) -> "Reaches":
        return customers if isinstance(customers, Reaches) else cls(customers, deals)

    def __call__(self, object_type: str, contacts: str) -> pl.DataFrame:
        key = (object_type, contacts if object_type == "contacts" else "")
        if key not in self._cache:
            self._cache[key] = reach(self.customers, self.deals, object_type, contacts)
        return self._cache[key]


def plan_writeback(
    config: WritebackConfig,
    outputs: OutputColumns | pl.DataFrame | Mapping[str, Mapping[str, Any]],
    customers: pl.DataFrame | Mapping[str, Customer] | Iterable[Customer],
    current: CurrentFrames | CurrentValues,
    *,
    deals: pl.DataFrame | Iterable[Deal] = (),
) -> Plan:
    """The diff between computed ``outputs`` and the CRM's ``current`` values, output by output as columns.

    ``outputs``: a frame (``customer_id`` + a column per field) or ``{customer_id: {field: value}}``; a field a
    customer lacks is left alone, a null value clears the property. A record several customers reach (a contact of
    two companies) takes the value of the customer it is the primary contact of, else of the lowest customer id;
    each such disagreement counts as a conflict. The records each (object type, contacts) reaches are matched to
    the outputs' rows and to the current values' rows once; every output then only gathers its columns.
    """
    columns = OutputColumns.of(outputs)
    reaches = Reaches.of(customers, deals)
    current = CurrentFrames.of(current, output_properties(config))
    rows = pl.DataFrame({"customer_id": columns.ids}).with_row_index("row")
    found: dict[tuple[str, str], pl.DataFrame] = {}  # (object type, contacts) -> customer_id, record_id, priority, row
    shared: dict[tuple[str, str], _Targets] = {}  # the same for every field all customers have
    parts: dict[tuple[str, str], pl.DataFrame] = {}
    conflicts = 0
    for output in config.outputs:
        text = columns.text(output)
        if text is None:
            continue
        key = (output.object, output.contacts if output.object == "contacts" else "")
        if key not in found:
            found[key] = reaches(*key).join(rows, on="customer_id", how="inner")
        if output.field in columns.present:  # some customers lack the field: they reach nothing for it
            has = columns.present[output.field]
            targets = _targets(found[key].filter(has.gather(found[key]["row"])), current.ids(output.object))
        else:
            if key not in shared:
                shared[key] = _targets(found[key], current.ids(output.object))
            targets = shared[key]
        text = text.fill_null("")
        if targets.contested.height:
            disputed = targets.contested.with_columns(text.gather(targets.contested["row"]).alias("text"))
            conflicts += int(disputed.group_by("record_id").agg(pl.col("text").n_unique() > 1)["text"].sum())
        held = current.column(output.object, output.property.name)
        winners = targets.winners
        wanted = pl.DataFrame({
            "record_id": winners["record_id"],
            "before": held.gather(winners["held"]) if held is not None else pl.repeat(None, winners.height,
                                                                                       dtype=pl.String, eager=True),
            "after": text.gather(winners["row"]),
        })
        parts[(output.object, output.property.name)] = _diff(wanted, output)
    return Plan(parts=parts, conflicts=conflicts)


@dataclass(frozen=True)
class _Targets:
    """The records reached among the outputs' customers: per record the winning customer's row in the outputs and
    the record's row among the current values (null: not read); and every row of the records several customers
    reach (to count the disagreements)."""

    winners: pl.DataFrame  # record_id, row, held
    contested: pl.DataFrame  # record_id, row


def _targets(reached: pl.DataFrame, held_ids: pl.Series) -> _Targets:
    """One winner per record: the lowest (priority, customer id)."""
    shared = reached["record_id"].is_duplicated()
    if shared.any():
        contested = reached.filter(shared)  # few: the contacts of several companies
        first = contested.sort("priority", "customer_id").unique("record_id", keep="first", maintain_order=True)
        winners = pl.concat([reached.filter(~shared), first])
    else:
        contested, winners = reached.clear(), reached
    index = held_ids.alias("record_id").to_frame().with_row_index("held")
    winners = winners.select("record_id", "row").join(index, on="record_id", how="left", maintain_order="left")
    return _Targets(winners, contested.select("record_id", "row"))


def _in_plan_order(parts: Mapping[tuple[str, str], pl.DataFrame]) -> pl.DataFrame:
    """The changes of ``parts`` ((object type, property) -> record_id, before, after) as one ``CHANGE_SCHEMA`` frame:
    object types by name, then records by id as a number (shorter first), then properties by name, so that each
    record's properties sit side by side for its batch. Per object type, its properties' parts in name order
    sorted stably by record (two plain columns sort far faster than four keys with expressions)."""
    parts = dict(parts)
    ordered = []
    for object_type in sorted({kind for kind, _ in parts}):
        # each part is let go once copied: a first sync's plan holds every value of a million customers
        frame = pl.concat([parts.pop(key).select(
            pl.lit(object_type, pl.Categorical).alias("object_type"), "record_id",
            pl.lit(key[1], pl.Categorical).alias("property"), pl.col("before").cast(pl.String), "after")
            for key in sorted(parts) if key[0] == object_type], rechunk=True)
        ordered.append(frame.with_columns(pl.col("record_id").str.len_chars().alias("length"))
                       .sort("length", "record_id", maintain_order=True).drop("length"))
    return pl.concat(ordered) if ordered else pl.DataFrame(schema=CHANGE_SCHEMA)


def _diff(wanted: pl.DataFrame, output: OutputMapping) -> pl.DataFrame:
    """The rows of ``wanted`` (record_id, before, after) whose after differs from before in the property's format."""
    prop = output.property
    before, after = pl.col("before"), pl.col("after")
    before_empty = before.is_null() | (before == "")
    after_empty = after == ""
    # Equal strings and two empties are unchanged; one empty side is a change; two different texts are a change
    # unless the property's format makes them equal ("68.0" and "68"): those are asked per distinct pair.
    decided = (pl.when(before == after).then(pl.lit(False))
               .when(before_empty & after_empty).then(pl.lit(False))
               .when(before_empty | after_empty).then(pl.lit(True))
               .when(pl.lit(not _formats_may_match(prop))).then(pl.lit(True)))
    if prop.type == "number":
        # Two texts that read as different finite floats are different decimals (equal decimals round to one float)
        left, right = before.cast(pl.Float64, strict=False), after.cast(pl.Float64, strict=False)
        decided = decided.when(left.is_finite() & right.is_finite() & (left != right)).then(pl.lit(True))
    joined = wanted.with_columns(decided.alias("changed"))
    undecided = joined.filter(pl.col("changed").is_null())
    if undecided.height:
        pairs = undecided.select("before", "after").unique()
        same = [same_value(prop, b, a) for b, a in pairs.iter_rows()]
        pairs = pairs.with_columns(pl.Series("same", same, dtype=pl.Boolean))
        asked = undecided.join(pairs, on=["before", "after"], how="left").with_columns(
            (~pl.col("same")).alias("changed")).drop("same")
        joined = pl.concat([joined.filter(pl.col("changed").is_not_null()), asked])
    changed = joined.filter(pl.col("changed")).select("record_id", "before", "after")
    if changed["before"].null_count() == changed.height:  # nothing held yet (a first sync): no column of nulls
        changed = changed.with_columns(pl.lit(None).alias("before"))
    return changed


def _formats_may_match(prop: PropertyDef) -> bool:
    """Whether two different non-empty strings can hold the same value of ``prop`` (same_value's cases)."""
    return prop.type in ("number", "bool", "date", "datetime") or prop.multi


def format_plan(plan: Plan, sample: int = 5) -> str:
    """The plan for a terminal: totals, counts per object and property, and a few example changes."""
    if not plan:
        lines = ["Nothing to write: the CRM already holds every computed value."]
    else:
        lines = [f"{len(plan)} changes to {plan.record_count()} records"]
        for object_type, props in plan.counts().items():
            lines.append(f"  {object_type}:")
            for name, count in props.items():
                lines.append(f"    {name:<40} {count:>7}")
        if sample > 0:
            lines.append(f"  e.g. (first {min(sample, len(plan))}):")
            for change in plan.head(sample):
                before = "(empty)" if change.before in (None, "") else repr(change.before)
                after = "(empty)" if change.after == "" else repr(change.after)
                lines.append(f"    {change.object_type}/{change.record_id} {change.property}: {before} -> {after}")
    if plan.conflicts:
        lines.append(f"  {plan.conflicts} records were reached by several customers with different values "
                     "(the primary customer's value is written)")
    if plan.kept:
        lines.append(f"  {len(plan.kept)} values edited since the run are kept:")
        for kept in plan.kept[:sample]:
            lines.append(f"    {kept.object_type}/{kept.record_id} {kept.property}: "
                         f"we wrote {kept.written!r}, now {kept.current!r}")
    return "\n".join(lines)


def output_properties(config: WritebackConfig) -> dict[str, list[str]]:
    """Per object type, the properties the pull must read so the plan can diff against them."""
    out: dict[str, set[str]] = defaultdict(set)
    for output in config.outputs:
        out[output.object].add(output.property.name)
    if any(r.kind == "workflow" for r in config.enrollments):
        out["contacts"].add("email")  # v2 enrollment is by e-mail
    return {k: sorted(v) for k, v in sorted(out.items())}
