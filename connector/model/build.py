"""build_portfolio: stored records (as polars frames) through the mapping pack → the model's frames.

Reads, per mapped HubSpot object type, one frame of its live records' raw property strings and one long frame of
their property histories, and the associations per pair (``Source``: the state store satisfies it). Each mapped
field is one expression (``fields``); each link a join on the pair's associations, a primary association first,
then the lowest id. No object per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import polars as pl

from connector.mapping.sources import CANONICAL_FIELDS, TIMELINES
from connector.model.fields import EXTRA_KINDS, Field, compile_field
from connector.model.frames import HISTORIES, MONEY, SCHEMAS, TIME, Frames, empty, empty_history
from connector.model.portfolio import Portfolio
from connector.model.rows import DataIssue
from connector.vocabulary import MONTHLY_FRACTION

# The time a record's own creation stands in for when the mapped property is empty.
_CREATED_FIELD = {"subscriptions": "created_at", "deals": "created_at", "feedback": "submitted_at",
                  "companies": "created_at", "contacts": "created_at"}
_ENTITY_FRAME = {"companies": "customers", "contacts": "customers", "subscriptions": "subscriptions",
                 "deals": "deals", "line_items": "line_items", "feedback": "feedback", "usage": "usage"}
_ISSUE_SCHEMA = {"object_type": pl.String, "record_id": pl.String, "property": pl.String, "raw_value": pl.String,
                 "reason": pl.String, "_type": pl.Int64, "_row": pl.UInt32, "_position": pl.Int64, "_part": pl.Int64}


class Source(Protocol):
    """What the builder reads (``connector.state.StateStore`` satisfies it; ``records.RecordSource`` for tests)."""

    def records_frame(self, object_type: str, properties: Sequence[str]) -> pl.DataFrame:
        """Live records: id, created_at, updated_at, archived and one String column per property."""

    def history_frame(self, object_type: str, properties: Sequence[str]) -> pl.DataFrame:
        """Their properties' pasts: id, property, value, timestamp, source."""

    def associations_frame(self, from_type: str, to_type: str) -> pl.DataFrame:
        """Stored associations of one pair in the direction stored: from_id, to_id, type_id."""


def id_order(column: str) -> list[pl.Expr]:
    """Sort keys giving HubSpot's id order: ids of HubSpot's decimal form by number, any other id after them."""
    number = pl.when(pl.col(column).str.contains(r"^(0|[1-9][0-9]{0,17})$")).then(
        pl.col(column).cast(pl.Int64, strict=False))
    return [number, pl.col(column)]


def sort_by_id(frame: pl.DataFrame, *first: Any, column: str = "id") -> pl.DataFrame:
    """``frame`` sorted by ``first`` (expressions or names), then by ``column`` in HubSpot's id order."""
    keys = [*first, *id_order(column)]
    return frame.sort(keys, nulls_last=True, maintain_order=True)


@dataclass
class _Entity:
    """One entity of sources.yaml read: its frame (id + canonical columns) and the pasts of its historical fields."""

    frame: pl.DataFrame
    histories: dict[str, pl.DataFrame]


class _Builder:
    def __init__(self, source: Source, pack: Any):
        self.source, self.pack = source, pack
        self.entities = dict(pack.sources.entities())
        self.object_of = {entity: spec.object for entity, spec in self.entities.items()}
        customer = pack.portal.customer
        self.customer_entity = customer.object
        self.customer_type = self.object_of.get(customer.object, customer.object)
        self.contacts_type = self.object_of.get("contacts")
        self.by_company = self.customer_entity == "companies"
        self.primary_ids = list(customer.primary_association_type_ids)
        self.types = list(pack.pull_plan())
        self.records: dict[str, pl.DataFrame] = {}
        self.history: dict[str, pl.DataFrame] = {}
        self.issues: list[pl.DataFrame] = []
        self.links: dict[tuple[str, str], pl.DataFrame] = {}

    # ------------------------------------------------------------ reading

    def _fields(self, entity: str) -> list[Field]:
        spec = self.entities[entity]
        catalog = CANONICAL_FIELDS[entity]
        out = [compile_field(name, field, catalog[name], self.pack) for name, field in spec.fields.items()]
        out += [compile_field(f"extra:{name}", field, EXTRA_KINDS.get(field.transform, "text"), self.pack)
                for name, field in spec.extra.items()]
        return out

    def _raw(self, object_type: str) -> pl.DataFrame:
        frame = self.records.get(object_type)
        if frame is None:
            plan = self.pack.pull_plan()[object_type]
            frame = self.source.records_frame(object_type, list(plan.properties)).with_row_index("_row")
            self.records[object_type] = frame
        return frame

    def _past(self, object_type: str) -> pl.DataFrame:
        frame = self.history.get(object_type)
        if frame is None:
            plan = self.pack.pull_plan()[object_type]
            frame = self.source.history_frame(object_type, list(plan.historical)) if plan.historical else \
                pl.DataFrame(schema={"id": pl.String, "property": pl.String, "value": pl.String, "timestamp": TIME})
            self.history[object_type] = frame
        return frame

    def read(self, entity: str, *, part: int = 0, rows: pl.Expr | None = None, skip: tuple[str, ...] = (),
             only: tuple[str, ...] | None = None) -> _Entity:
        """The entity's records read through its fields. ``rows``: which records' issues are reported (all by
        default); ``only`` / ``skip``: the fields read (a field's issues are ordered by its position among them).
        ``part`` orders the issues of entities read from the same records."""
        object_type = self.object_of[entity]
        raw = self._raw(object_type)
        fields = [f for f in self._fields(entity) if f.name not in skip and (only is None or f.name in only)]
        frame = raw.select("id", "_row", pl.col("created_at").alias("_created"), *[f.value.alias(f.name) for f in fields])
        type_index = self.types.index(object_type)
        for position, f in enumerate(fields):
            if not f.checked:
                continue
            found = raw.filter(f.problem.is_not_null() if rows is None else (f.problem.is_not_null() & rows))
            if found.height:
                self.issues.append(found.select(
                    pl.lit(object_type).alias("object_type"), pl.col("id").alias("record_id"),
                    f.source.alias("property"), f.raw.alias("raw_value"), f.problem.alias("reason"),
                    pl.lit(type_index).alias("_type"), "_row", pl.lit(position).alias("_position"),
                    pl.lit(part).alias("_part")))
        histories = {}
        spec = self.entities[entity]
        timelines = TIMELINES.get(entity, {})
        if only is None:
            for k, (name, field) in enumerate(
                    (n, f) for n, f in spec.fields.items() if f.historical and n in timelines and n not in skip):
                histories[timelines[name]] = self._timeline(entity, name, field, len(fields) + k, part, rows)
        return _Entity(frame, histories)

    def _timeline(self, entity: str, name: str, spec: Any, position: int, part: int, rows: pl.Expr | None
                  ) -> pl.DataFrame:
        """A historical field's past, ascending; bad entries dropped, each record's newest bad one reported."""
        object_type = self.object_of[entity]
        kind = CANONICAL_FIELDS[entity][name]
        prop = spec.properties[0]
        value_spec = spec.model_copy(update={"property": "value"})  # the same transform, over the history values
        field = compile_field(name, value_spec, kind, self.pack)
        past = self._past(object_type).filter(pl.col("property") == prop).select("id", "value", "timestamp")
        raw = self._raw(object_type)
        if spec.transform == "money" and spec.currency_property:  # the record's currency converts its past too
            past = past.join(raw.select("id", spec.currency_property), on="id", how="left")
        present = pl.col("value").is_not_null() & (pl.col("value") != "")
        reason = (pl.when(pl.col("timestamp").is_null()).then(pl.lit("not a valid date-time"))
                  .otherwise(field.problem))
        if not spec.allow_empty:
            reason = pl.when(~present & pl.col("timestamp").is_not_null()).then(
                pl.lit("empty value (allow_empty: false)")).otherwise(reason)
        past = past.with_columns(field.value.alias("_value"), reason.alias("_reason"))
        bad = past.filter(pl.col("_reason").is_not_null())
        if bad.height:
            newest = bad.sort("timestamp", descending=True, nulls_last=True).group_by("id", maintain_order=True).first()
            newest = newest.join(raw.select("id", "_row", *([] if rows is None else [rows.alias("_report")])),
                                 on="id")
            if rows is not None:
                newest = newest.filter(pl.col("_report"))
            self.issues.append(newest.select(
                pl.lit(object_type).alias("object_type"), pl.col("id").alias("record_id"),
                pl.lit(prop).alias("property"), pl.col("value").alias("raw_value"),
                pl.concat_str(pl.lit("history: "), pl.col("_reason")).alias("reason"),
                pl.lit(self.types.index(object_type)).alias("_type"), "_row", pl.lit(position).alias("_position"),
                pl.lit(part).alias("_part")))
        history = TIMELINES[entity][name]
        kept = past.filter(pl.col("_reason").is_null())
        return kept.select(pl.col("id").alias("owner"), pl.col("timestamp").alias("at"),
                           pl.col("_value").cast(HISTORIES[history][2]).alias("value")).sort(
            ["owner", "at"], maintain_order=True)

    # ------------------------------------------------------------ links

    def _pair(self, a: str | None, b: str | None) -> pl.DataFrame:
        """The associations between types a and b, from a's side: from, to, primary."""
        empty_links = pl.DataFrame(schema={"from": pl.String, "to": pl.String, "primary": pl.Boolean})
        if not a or not b or a == b:
            return empty_links
        links = self.links.get((a, b))
        if links is None:
            parts = []
            for x, y, flip in ((a, b, False), (b, a, True)):
                frame = self.source.associations_frame(x, y)
                if frame.height:
                    parts.append(frame.select(
                        pl.col("to_id" if flip else "from_id").alias("from"),
                        pl.col("from_id" if flip else "to_id").alias("to"),
                        pl.col("type_id").is_in(self.primary_ids).fill_null(False).alias("primary")))
            links = pl.concat(parts) if parts else empty_links
            self.links[(a, b)] = links
        return links

    def pick(self, a: str | None, b: str | None, among: pl.Series) -> pl.DataFrame:
        """Per record of type a with one: the associated record of type b to use (among ``among``): from, to."""
        links = self._pair(a, b).filter(pl.col("to").is_in(among.implode()))
        return (sort_by_id(links, "from", pl.col("primary").not_(), column="to")
                .group_by("from", maintain_order=True).first().select("from", "to"))

    # ------------------------------------------------------------ assembling

    def customers_of(self, frame: pl.DataFrame, entity: str, customer_ids: pl.Series, contacts: pl.DataFrame
                     ) -> pl.DataFrame:
        """frame + customer_id and contact_id (the contact it is tied to); ``contacts``: contact id → company
        (customer_id, null without one) and loose (may become a customer)."""
        direct = self.pick(self.object_of.get(entity), self.customer_type, customer_ids)
        via = self.pick(self.object_of.get(entity), self.contacts_type, contacts["contact_id"]) if \
            self.contacts_type else pl.DataFrame(schema={"from": pl.String, "to": pl.String})
        out = (frame.join(direct.rename({"to": "_direct"}), left_on="id", right_on="from", how="left")
               .join(via.rename({"to": "contact_id"}), left_on="id", right_on="from", how="left"))
        if not self.by_company:
            return out.with_columns(customer_id=pl.coalesce("_direct", "contact_id")).drop("_direct")
        out = out.join(contacts.rename({"customer_id": "_company"}), on="contact_id", how="left")
        promote = pl.col("_direct").is_null() & pl.col("_company").is_null() & pl.col("_loose").fill_null(False)
        return out.with_columns(
            customer_id=pl.coalesce("_direct", "_company", pl.when(promote).then(pl.col("contact_id"))),
            _promotes=promote,
        ).drop("_direct", "_company", "_loose")

    def build(self) -> Portfolio:
        customers = self.read(self.customer_entity) if self.customer_entity in self.entities else None
        if customers is None:
            raise ValueError(f"customers are {self.customer_entity} but sources.yaml does not map them")
        ccols = _with_created(customers.frame, "created_at")
        company_ids = ccols["id"]
        fallback = self.pack.portal.customer.contacts_without_company
        contact_entity = None
        if self.by_company and "contacts" in self.entities:
            contacts_type = self.contacts_type
            raw = self._raw(contacts_type)
            any_company = self._pair(contacts_type, self.customer_type)["from"]
            alone = ~pl.col("id").is_in(any_company.implode())
            contact_entity = self.read("contacts", part=0, rows=alone, skip=("birthday",))
            birthday = self.read("contacts", part=-1, only=("birthday",)) if "birthday" in \
                self.entities["contacts"].fields else None
            company_of = self.pick(contacts_type, self.customer_type, company_ids)
            contacts = raw.select(pl.col("id").alias("contact_id")).join(
                company_of.rename({"from": "contact_id", "to": "customer_id"}), on="contact_id", how="left")
            contacts = contacts.with_columns(
                _loose=pl.col("customer_id").is_null() & pl.lit(fallback != "never"))
            contact_birthdays = (birthday.frame.select(pl.col("id").alias("contact_id"), "birthday") if birthday
                                 else contacts.select("contact_id", pl.lit(None, dtype=pl.Date).alias("birthday")))
        else:
            contacts = ccols.select(pl.col("id").alias("contact_id"), pl.col("id").alias("customer_id"),
                                    pl.lit(False).alias("_loose"))
            contact_birthdays = None

        parts: dict[str, _Entity] = {}
        for entity in ("subscriptions", "deals", "feedback", "line_items", "usage"):
            if entity in self.entities:
                parts[entity] = self.read(entity)
        linked = {}
        for entity in ("subscriptions", "deals", "feedback"):
            if entity in parts:
                linked[entity] = self.customers_of(parts[entity].frame, entity, company_ids, contacts)

        promoted_ids = pl.Series("id", [], dtype=pl.String)
        if self.by_company and contact_entity is not None:
            wanted = [f["contact_id"].filter(f["_promotes"]) for f in linked.values() if "_promotes" in f.columns]
            if fallback == "always":
                wanted.append(contacts.filter(pl.col("_loose"))["contact_id"])
            if wanted:
                promoted_ids = pl.concat(wanted).unique()
            promoted_ids = sort_by_id(pl.DataFrame({"id": promoted_ids}))["id"]

        frames = self._assemble(ccols, customers, contacts, contact_entity, contact_birthdays, promoted_ids, parts,
                                linked)
        issues = self._issues()
        return Portfolio(reporting_currency=self.pack.portal.currency.reporting, issues=issues, frames=frames)

    def _assemble(self, ccols: pl.DataFrame, customers: _Entity, contacts: pl.DataFrame,
                  contact_entity: _Entity | None, contact_birthdays: pl.DataFrame | None, promoted_ids: pl.Series,
                  parts: dict[str, _Entity], linked: dict[str, pl.DataFrame]) -> Frames:
        o = self.object_of
        extras = [c for c in ccols.columns if c.startswith("extra:")]
        own = ccols.with_columns(object_type=pl.lit(self.customer_entity))
        if self.by_company:
            members = contacts.filter(pl.col("customer_id").is_not_null())
            primary = self._pair(self.contacts_type, self.customer_type).filter("primary").select(
                pl.col("from").alias("contact_id"), pl.col("to").alias("customer_id"), pl.lit(True).alias("_p"))
            members = members.join(primary.unique(), on=["contact_id", "customer_id"], how="left").with_columns(
                pl.col("_p").fill_null(False))
            ordered = sort_by_id(members, "customer_id", column="contact_id")
            grouped = ordered.group_by("customer_id", maintain_order=True).agg(
                pl.col("contact_id").alias("contact_ids"))
            first = sort_by_id(members, "customer_id", pl.col("_p").not_(), column="contact_id").group_by(
                "customer_id", maintain_order=True).first().select(
                "customer_id", pl.col("contact_id").alias("primary_contact_id"))
            own = (own.join(grouped, left_on="id", right_on="customer_id", how="left", maintain_order="left")
                   .join(first, left_on="id", right_on="customer_id", how="left", maintain_order="left"))
            if "birthday" not in own.columns:
                own = own.with_columns(birthday=pl.lit(None, dtype=pl.Date))
            if contact_birthdays is not None:
                own = own.join(contact_birthdays.rename({"birthday": "_lent"}), left_on="primary_contact_id",
                               right_on="contact_id", how="left", maintain_order="left").with_columns(
                    birthday=pl.coalesce("birthday", "_lent")).drop("_lent")
            own = own.with_columns(pl.col("contact_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))))
            if promoted_ids.len() and contact_entity is not None:
                loose = _with_created(contact_entity.frame, "created_at").filter(
                    pl.col("id").is_in(promoted_ids.implode()))
                if contact_birthdays is not None:
                    loose = loose.join(contact_birthdays, left_on="id", right_on="contact_id", how="left")
                loose = pl.DataFrame({"id": promoted_ids}).join(loose, on="id", how="left", maintain_order="left")
                loose = loose.with_columns(object_type=pl.lit("contacts"), contact_ids=pl.concat_list("id"),
                                           primary_contact_id=pl.col("id"))
                own = pl.concat([own, loose], how="diagonal_relaxed")
        else:
            own = own.with_columns(contact_ids=pl.concat_list("id"), primary_contact_id=pl.col("id"))

        subs = linked.get("subscriptions")
        if subs is not None and "start_date" in subs.columns:
            first_start = subs.filter(pl.col("customer_id").is_not_null()).group_by("customer_id").agg(
                pl.col("start_date").min().alias("_first"))
            if "customer_since" not in own.columns:
                own = own.with_columns(customer_since=pl.lit(None, dtype=pl.Date))
            own = own.join(first_start, left_on="id", right_on="customer_id", how="left",
                           maintain_order="left").with_columns(
                customer_since=pl.coalesce("customer_since", "_first")).drop("_first")
        customers_frame = _conform(own, "customers")
        extras_frame = own.select(pl.col("id").alias("customer_id"),
                                  *[pl.col(c).alias(c.removeprefix("extra:")) for c in extras])

        histories = {name: empty_history(name) for name in HISTORIES}
        out: dict[str, pl.DataFrame] = {"customers": customers_frame}
        if subs is not None:
            grace = self.pack.portal.active_customer.past_due_grace_days
            live = sorted(self.pack.portal.active_customer.live_statuses)
            subs = _with_created(subs, "created_at").with_columns(
                live_statuses=pl.lit(live, dtype=pl.List(pl.String)),
                past_due_grace_days=pl.lit(grace, dtype=pl.Int64))
            out["subscriptions"] = _conform(subs, "subscriptions")
            histories.update(parts["subscriptions"].histories)
        deals = linked.get("deals")
        items = parts.get("line_items")
        if items is not None:
            frame = items.frame
            deal_ids = deals["id"] if deals is not None else pl.Series([], dtype=pl.String)
            sub_ids = subs["id"] if subs is not None else pl.Series([], dtype=pl.String)
            frame = (frame.join(self.pick(o["line_items"], o.get("deals"), deal_ids).rename({"to": "deal_id"}),
                                left_on="id", right_on="from", how="left", maintain_order="left")
                     .join(self.pick(o["line_items"], o.get("subscriptions"), sub_ids).rename(
                         {"to": "subscription_id"}), left_on="id", right_on="from", how="left",
                         maintain_order="left"))
            frame = frame.with_columns(mrr=_monthly(frame))
            out["line_items"] = _conform(frame, "line_items")
            if deals is not None:
                grouped = sort_by_id(frame.filter(pl.col("deal_id").is_not_null()), "deal_id").group_by(
                    "deal_id", maintain_order=True).agg(pl.col("id").alias("line_item_ids"))
                deals = deals.join(grouped, left_on="id", right_on="deal_id", how="left", maintain_order="left")
        if deals is not None:
            deals = _with_created(deals, "created_at")
            if "line_item_ids" in deals.columns:
                deals = deals.with_columns(pl.col("line_item_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))))
            out["deals"] = _conform(deals, "deals")
        answers = linked.get("feedback")
        if answers is not None:
            answers = _with_created(answers, "submitted_at").with_columns(
                survey_type=pl.col("survey_type").str.to_uppercase().fill_null("OTHER")
                if "survey_type" in answers.columns else pl.lit("OTHER"))
            out["feedback"] = _conform(answers, "feedback")
        usage = parts.get("usage")
        if usage is not None:
            usage_type = o["usage"]
            if usage_type == self.customer_type:
                keep = customers_frame.filter(pl.col("object_type") == self.customer_entity)["id"]
            elif usage_type == self.contacts_type:
                keep = promoted_ids
            else:
                keep = pl.Series([], dtype=pl.String)
            frame = usage.frame.filter(pl.col("id").is_in(keep.implode())).with_columns(customer_id=pl.col("id"))
            if "onboarding_milestones_done" in frame.columns:
                frame = frame.with_columns(pl.col("onboarding_milestones_done").fill_null(
                    pl.lit([], dtype=pl.List(pl.String))))
            out["usage"] = _conform(frame, "usage")
            for name, past in usage.histories.items():
                histories[name] = past.filter(pl.col("owner").is_in(keep.implode()))
        for name in SCHEMAS:
            out.setdefault(name, empty(name))
        return Frames(**out, histories=histories, extras=extras_frame)

    def _issues(self) -> list[DataIssue]:
        if not self.issues:
            return []
        found = pl.concat(self.issues, how="vertical_relaxed").sort(["_type", "_row", "_position", "_part"],
                                                                     maintain_order=True)
        columns = ("object_type", "record_id", "property", "raw_value", "reason")
        return [DataIssue(*row) for row in found.select(columns).iter_rows()]


def _with_created(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """The time column ``name`` with its empty values filled from the records' own creation times."""
    if name not in frame.columns:
        return frame.with_columns(pl.col("_created").alias(name))
    return frame.with_columns(pl.coalesce(name, "_created").alias(name))


def _monthly(frame: pl.DataFrame) -> pl.Expr:
    """Monthly amount of recurring line items (amount × the frequency's factor), null for one-time ones."""
    if "amount" not in frame.columns or "billing_frequency" not in frame.columns:
        return pl.lit(None, dtype=MONEY)
    numerator = pl.col("billing_frequency").replace_strict(
        {k: n for k, (n, _) in MONTHLY_FRACTION.items()}, default=None, return_dtype=pl.Int64)
    denominator = pl.col("billing_frequency").replace_strict(
        {k: d for k, (_, d) in MONTHLY_FRACTION.items()}, default=None, return_dtype=pl.Int64)
    return (pl.col("amount") * numerator / denominator).cast(MONEY)


def _conform(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """The frame with exactly the schema's columns, in its order and dtypes (absent ones null)."""
    schema = SCHEMAS[name]
    return frame.select([
        (pl.col(c).cast(dtype) if c in frame.columns else pl.lit(None, dtype=dtype)).alias(c)
        for c, dtype in schema.items()
    ])


def build_portfolio(source: Source, pack: Any) -> Portfolio:
    """Map a portal's stored records through the mapping pack into the model's frames (see the module doc)."""
    return _Builder(source, pack).build()
