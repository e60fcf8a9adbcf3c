"""Schema of mappings/portal.yaml: customer object, currency and FX, periods, active customer, conventions, CLV."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, field_validator, model_validator

from connector.mapping.base import StrictModel, did_you_mean
from connector.mapping.loader import LocatedError
from connector.mapping.sources import SUBSCRIPTION_STATUSES

Status = Literal["active", "past_due", "unpaid", "paused", "canceled", "expired", "scheduled"]


class CustomerConfig(StrictModel):
    """Which records are customers: companies (contacts roll up to them) or contacts."""

    object: Literal["companies", "contacts"] = "companies"
    # A contact with no company: "when_linked" = a customer once a subscription, deal or survey answer points at it;
    # "always" = every such contact; "never" = ignored. Only used when object is companies.
    contacts_without_company: Literal["when_linked", "always", "never"] = "when_linked"
    # contact→company association type ids that mark a contact's primary company (HubSpot: 1 "Primary"; 2 is the
    # same association read from the company side). A contact rolls up to its primary company, else the lowest id.
    primary_association_type_ids: tuple[int, ...] = (1, 2)


class CurrencyConfig(StrictModel):
    """Reporting currency and the constant FX table every amount is converted with (METRICS §1.3)."""

    reporting: str = "USD"
    rate_date: date  # the date the rates were taken: recorded with every metric snapshot
    rates: dict[str, Decimal] = Field(default_factory=dict)  # units of reporting currency for one unit of the key

    @field_validator("reporting")
    @classmethod
    def _code(cls, value: str) -> str:
        if not (len(value) == 3 and value.isalpha() and value.isupper()):
            raise ValueError(f'"{value}" is not an ISO currency code (three capitals, e.g. USD)')
        return value

    @model_validator(mode="after")
    def _rates(self) -> "CurrencyConfig":
        problems: list[LocatedError] = []
        for code, rate in self.rates.items():
            if not (len(code) == 3 and code.isalpha() and code.isupper()):
                problems.append(LocatedError(f'"{code}" is not an ISO currency code', ("rates", code)))
            if not rate.is_finite() or rate <= 0:
                problems.append(LocatedError(f"rate must be a positive number, got {rate}", ("rates", code)))
        own = self.rates.get(self.reporting)
        if own is not None and own != 1:
            problems.append(LocatedError(f"the reporting currency's own rate must be 1, got {own}", ("rates", self.reporting)))
        if problems:
            raise LocatedError.many(problems)
        return self

    def rate(self, code: str | None) -> Decimal | None:
        """Rate to the reporting currency; None for a currency missing from the table."""
        if code is None or code == self.reporting:
            return Decimal(1)
        return self.rates.get(code)


class PeriodsConfig(StrictModel):
    """The reporting calendar."""

    time_zone: str = "UTC"  # IANA zone in which periods start and end
    default_period: Literal["month", "quarter", "year"] = "month"
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    mau_window: Literal["trailing_30_days", "calendar_month"] = "trailing_30_days"

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown time zone "{value}"{did_you_mean(value, _zones())}') from None
        return value


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class ActiveCustomerConfig(StrictModel):
    """What counts as an active (paying) customer."""

    # Subscription statuses that still earn MRR. Past-due/unpaid count until churn is recognised (METRICS §1.1).
    live_statuses: tuple[Status, ...] = ("active", "past_due", "unpaid")
    # Recognise churn once a subscription has been past_due/unpaid this many days; null = only when its status
    # leaves the live statuses (canceled, expired …).
    past_due_grace_days: int | None = Field(default=None, ge=0)

    @field_validator("live_statuses")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"name at least one live status (valid: {', '.join(SUBSCRIPTION_STATUSES)})")
        return value


class ConventionsConfig(StrictModel):
    """Where the sources disagree, which convention to follow (METRICS §1.2, §1.4)."""

    churn: Literal["chartmogul", "stripe"] = "chartmogul"
    nrr: Literal["fixed_cohort", "chartmogul"] = "fixed_cohort"


class ClvConfig(StrictModel):
    """Simple CLV = ARPA × margin / churn (METRICS §1.5)."""

    gross_margin: float = Field(default=0.8, gt=0, le=1)
    cap_months: int | None = Field(default=60, gt=0)  # lifespan cap when churn is 0; null = CLV None then


class PortalConfig(StrictModel):
    """portal.yaml."""

    customer: CustomerConfig = CustomerConfig()
    currency: CurrencyConfig
    periods: PeriodsConfig = PeriodsConfig()
    active_customer: ActiveCustomerConfig = ActiveCustomerConfig()
    conventions: ConventionsConfig = ConventionsConfig()
    clv: ClvConfig = ClvConfig()
