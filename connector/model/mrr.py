"""The MRR rule, written once: each subscription's MRR in effect over time, from its status and MRR histories.

A subscription earns its MRR while its status is one of its live statuses; past_due/unpaid stops earning
``past_due_grace_days`` + 1 whole days into the unbroken overdue run (METRICS §1.1: churn is recognised then).
Without a status history it has had its current status since it was created (always, without a creation time);
without an MRR history it has had its current MRR always. ``Subscription.mrr_at`` reads these steps for one
subscription; the metrics' ledger reads them for all.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import polars as pl

from connector.model.frames import MONEY, TIME
from connector.vocabulary import OVERDUE_STATUSES

# "Since always" (no creation time, no status history): the earliest instant the time dtype holds comfortably.
ALWAYS = datetime(1, 1, 1, tzinfo=timezone.utc)
_ZERO = pl.lit(Decimal(0), dtype=MONEY)
_SUBSCRIPTION_COLUMNS = ("id", "status", "mrr", "created_at", "live_statuses", "past_due_grace_days")


def _last_per_instant(frame: pl.DataFrame) -> pl.DataFrame:
    """The last entry of each (sub, instant): a value in effect at t is the last change at or before t."""
    later = (pl.col("sub") == pl.col("sub").shift(-1)) & (pl.col("at") == pl.col("at").shift(-1))
    return frame.filter(~later.fill_null(False))


def _by_position(history: pl.DataFrame, positions: pl.DataFrame) -> pl.DataFrame:
    """A history keyed by the subscription's position (small integers sort and join far faster than ids), in time
    order per subscription, same-instant entries in their given order."""
    return (history.with_row_index("_seq").join(positions, on="owner", how="inner")
            .select("sub", "at", "value", "_seq").sort("sub", "at", "_seq").drop("_seq"))


def mrr_steps(subscriptions: pl.DataFrame, status_history: pl.DataFrame, mrr_history: pl.DataFrame) -> pl.DataFrame:
    """(sub, at, mrr): each subscription's MRR from ``at`` on, at every instant it may change (``sub``: its row in
    ``subscriptions``), sorted by sub then at; 0 before its first step. Consecutive steps may repeat a value."""
    subs = subscriptions.select(_SUBSCRIPTION_COLUMNS).with_row_index("sub")
    positions = subs.select(pl.col("id").alias("owner"), "sub")
    status = _by_position(status_history, positions)
    overdue = pl.col("value").is_in(list(OVERDUE_STATUSES)).fill_null(False)
    opens = overdue & ~(overdue.shift(1) & (pl.col("sub") == pl.col("sub").shift(1))).fill_null(False)
    # Start of the unbroken past_due/unpaid run each entry belongs to (null outside one), over every entry: an
    # entry overwritten at the same instant still belongs to the run. Rows are by subscription, and a run's later
    # entries follow its opening one, so a plain forward fill stays inside the subscription.
    status = _last_per_instant(status.with_columns(
        pl.when(overdue).then(pl.when(opens).then(pl.col("at")).forward_fill()).alias("run_start")))
    # Without a status history: the current status since creation, never graced (no run to count on).
    status = pl.concat([status, subs.join(status.select("sub").unique(), on="sub", how="anti").select(
        "sub", pl.col("created_at").fill_null(ALWAYS).alias("at"), pl.col("status").alias("value"),
        pl.lit(None, dtype=TIME).alias("run_start"))]).sort("sub", "at")
    mrr = _last_per_instant(_by_position(mrr_history, positions))
    grace = subs.select("sub", "past_due_grace_days").filter(pl.col("past_due_grace_days").is_not_null())
    expiries = status.filter(pl.col("run_start").is_not_null()).join(grace, on="sub").select(
        "sub", (pl.col("run_start") + pl.duration(days=pl.col("past_due_grace_days") + 1)).alias("at"))
    instants = pl.concat([status.select("sub", "at"), mrr.select("sub", "at"), expiries]).sort("sub", "at")
    instants = instants.filter(((pl.col("sub") != pl.col("sub").shift(1)) | (pl.col("at") != pl.col("at").shift(1)))
                               .fill_null(True))
    steps = (
        instants
        .join_asof(status.rename({"value": "_status"}), on="at", by="sub", strategy="backward",
                   check_sortedness=False)
        .join_asof(mrr.rename({"value": "_mrr"}), on="at", by="sub", strategy="backward", check_sortedness=False)
        .join(subs.drop("id"), on="sub", how="left", maintain_order="left")
        .join(mrr.select("sub").unique().with_columns(pl.lit(True).alias("_has_mrr")), on="sub", how="left",
              maintain_order="left")
    )
    live = pl.col("live_statuses").list.contains(pl.col("_status")).fill_null(False)
    lapsed = (pl.col("at") >= pl.col("run_start") + pl.duration(days=pl.col("past_due_grace_days") + 1)).fill_null(False)
    price = pl.when(pl.col("_has_mrr").fill_null(False)).then(pl.col("_mrr")).otherwise(pl.col("mrr")).fill_null(_ZERO)
    return steps.select("sub", "at", pl.when(live & ~lapsed).then(price).otherwise(_ZERO).cast(MONEY).alias("mrr"))


def steps_of(subscription: object) -> tuple[tuple[datetime, Decimal], ...]:
    """One subscription's (row view's) steps as a timeline: where a person looks at one subscription."""
    from connector.model.frames import frames_of_rows

    frames = frames_of_rows({}, [subscription], (), (), (), {})  # type: ignore[list-item]
    steps = mrr_steps(frames.subscriptions, frames.histories["status_history"], frames.histories["mrr_history"])
    return tuple(steps.select("at", "mrr").iter_rows())
