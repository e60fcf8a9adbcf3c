"""The canonical model: a portal's records mapped through the pack into polars frames (``Portfolio.frames``).

``build_portfolio(source, pack)`` reads the stored records as frames (the state store is a ``Source``);
``build_portfolio(records, associations, pack)`` takes record objects (tests). The frozen dataclasses of ``rows``
are what one row reads as, where a person looks at one record.
"""

from __future__ import annotations

from typing import Any

from connector.model import build as _build
from connector.model.build import Source
from connector.model.frames import Frames
from connector.model.portfolio import Portfolio
from connector.model.records import RecordSource
from connector.model.rows import (
    LIVE_STATUSES, MONTHLY_FACTOR, OVERDUE_STATUSES, Customer, DataIssue, Deal, FeedbackResponse, LineItem,
    Subscription, Timeline, Usage, parse_bool, parse_date, parse_datetime, parse_decimal, parse_int, value_at,
)

__all__ = ["Customer", "DataIssue", "Deal", "FeedbackResponse", "Frames", "LIVE_STATUSES", "LineItem",
           "MONTHLY_FACTOR", "OVERDUE_STATUSES", "Portfolio", "RecordSource", "Source", "Subscription",
           "Timeline", "Usage", "build_portfolio", "parse_bool", "parse_date", "parse_datetime",
           "parse_decimal", "parse_int", "value_at"]


def build_portfolio(source: Any, associations: Any = None, pack: Any = None) -> Portfolio:
    """``build_portfolio(source, pack)`` from a ``Source``, or ``(records, associations, pack)`` from objects."""
    if pack is None:
        return _build.build_portfolio(source, associations)
    return _build.build_portfolio(RecordSource(source, associations), pack)
