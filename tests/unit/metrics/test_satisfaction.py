"""Surveys: E7 numbers, E5 empty inputs, HubSpot groups cross-check, per-contact selection, per customer."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connector.metrics import periods
from connector.metrics.satisfaction import (
    ces_easy_pct,
    ces_mean,
    cross_check_groups,
    csat,
    customer_surveys,
    hubspot_response_group,
    nps,
    nps_group,
    survey_summary,
)
from connector.model import FeedbackResponse

NPS_E7 = [10, 10, 9, 9, 9, 8, 7, 6, 3, 0]
CES_E7 = [7, 6, 6, 5, 4, 3, 2]


def response(rid, kind, value, *, contact="c1", customer="k1", group=None, day=5, month=1):
    return FeedbackResponse(
        id=rid, customer_id=customer, contact_id=contact, survey_type=kind, value=value,
        response_group=group if group is not None else hubspot_response_group(kind, value),
        submitted_at=datetime(2026, month, day, tzinfo=timezone.utc),
    )


@pytest.mark.parametrize(
    ("function", "ratings", "expected"),
    [
        pytest.param(nps, NPS_E7, 20.0, id="nps"),
        pytest.param(lambda r: csat(r, "1-5"), [5, 5, 4, 4, 3, 2, 1, 5], 62.5, id="csat-1-5"),
        pytest.param(lambda r: csat(r, "hubspot"), [2, 2, 2, 1, 0], 60.0, id="csat-hubspot-0-2"),
        pytest.param(ces_mean, CES_E7, 33 / 7, id="ces-mean"),
        pytest.param(ces_easy_pct, CES_E7, 400 / 7, id="ces-pct-5-7"),
    ],
)
def test_survey_scores_e7(function, ratings, expected):
    assert function(ratings) == pytest.approx(expected)


def test_e7_rounded_values():
    assert round(ces_mean(CES_E7), 4) == 4.7143 and round(ces_easy_pct(CES_E7), 2) == 57.14


@pytest.mark.parametrize("function", [nps, csat, ces_mean, ces_easy_pct], ids=["nps", "csat", "ces", "ces-pct"])
def test_no_responses_give_none_e5(function):
    assert function([]) is None


def test_nps_group_bands():
    assert [nps_group(v) for v in (10, 9, 8, 7, 6, 0, None)] == [
        "promoter", "promoter", "passive", "passive", "detractor", "detractor", None]


def test_hubspot_groups_for_ces_e7():
    groups = [hubspot_response_group("CES", v) for v in CES_E7]
    assert (groups.count("PROMOTER"), groups.count("PASSIVE"), groups.count("DETRACTOR")) == (3, 2, 2)
    assert [hubspot_response_group("CSAT", v) for v in (2, 1, 0)] == ["PROMOTER", "PASSIVE", "DETRACTOR"]


def test_cross_check_counts_mismatches_without_failing():
    responses = [
        response("r1", "NPS", 9),
        response("r2", "NPS", 6, group="PASSIVE"),  # HubSpot disagrees with our 0-6 detractor band
        response("r3", "CES", 5, group=""),
        response("r4", "CSAT", 2),
    ]
    responses[2] = FeedbackResponse(**{**responses[2].__dict__, "response_group": None})
    check = cross_check_groups(responses)
    assert (check.checked, check.mismatches, check.missing_group, check.mismatch_ids) == (3, 1, 1, ("r2",))


def test_survey_summary_uses_each_contacts_latest_answer_in_the_period():
    responses = [
        response("r1", "NPS", 3, contact="c1", day=3),
        response("r2", "NPS", 10, contact="c1", day=20),  # c1's latest: a promoter
        response("r3", "NPS", 6, contact="c2", day=10),
        response("r4", "NPS", 10, contact="c3", day=10, month=2),  # outside January
        response("r5", "CSAT", 2, contact="c1"),
        response("r6", "CES", 7, contact="c1"),
        response("r7", "CES", 3, contact="c2"),
    ]
    january = periods.month(2026, 1)
    latest = survey_summary(responses, january)
    assert (latest.nps, latest.nps_responses, latest.promoters, latest.detractors) == (0.0, 2, 1, 1)
    assert latest.csat == 100.0 and latest.ces_mean == 5.0 and latest.ces_easy_pct == 50.0
    assert latest.hubspot_groups["NPS"] == {"PROMOTER": 1, "PASSIVE": 0, "DETRACTOR": 1}
    every = survey_summary(responses, january, per_contact="all")
    assert every.nps_responses == 3 and every.nps == pytest.approx(100 * (1 - 2) / 3)
    empty = survey_summary(responses, periods.month(2025, 1))
    assert empty.nps is None and empty.csat is None and empty.ces_mean is None


def test_customer_surveys_latest_previous_trend_up_to_as_of():
    responses = [
        response("r1", "NPS", 6, day=3),
        response("r2", "NPS", 9, day=20),
        response("r3", "NPS", 2, day=10, month=3),  # after as_of
        response("r4", "NPS", 8, customer="k2"),
    ]
    surveys = customer_surveys(responses, datetime(2026, 2, 1, tzinfo=timezone.utc))
    assert (surveys["k1"]["NPS"].latest, surveys["k1"]["NPS"].previous, surveys["k1"]["NPS"].trend) == (9, 6, 3)
    assert surveys["k2"]["NPS"].trend is None


def test_survey_summary_anonymous_answers_are_each_their_own_respondent():
    responses = [
        response("r1", "NPS", 3, contact=None, day=3),
        response("r2", "NPS", 10, contact="", day=4),
        response("r3", "NPS", 6, contact=None, day=5),
        response("r4", "NPS", 9, contact="c1", day=6),
        response("r5", "NPS", 10, contact="c1", day=7),  # c1's latest
    ]
    summary = survey_summary(responses, periods.month(2026, 1))
    assert (summary.nps_responses, summary.promoters, summary.detractors) == (4, 2, 2)


def test_survey_summary_an_anonymous_answer_shares_the_respondent_named_after_it():
    # Anonymous answers are keyed "response:<id>": a contact of exactly that name is the same respondent.
    responses = [
        response("r1", "NPS", 3, contact=None, day=3),
        response("r2", "NPS", 10, contact="response:r1", day=4),
        response("r3", "nps", 8, contact="c1", day=5),
        response("r4", "CSAT", 2, contact="c1", day=5),
        response("r5", "Other", 2, contact="c1", day=5),
        response("r6", "other", 1, contact="c1", day=6),  # the same other type, upper-cased
    ]
    summary = survey_summary(responses, periods.month(2026, 1))
    assert (summary.nps_responses, summary.promoters, summary.passives) == (2, 1, 1)
    assert summary.csat_responses == 1 and summary.group_check.checked == 3


def test_survey_summary_groups_check_reads_stored_groups_in_any_case():
    responses = [
        response("r1", "NPS", 10, contact="a", group="promoter"),
        response("r2", "NPS", 3, contact="b", group="Passive"),
        response("r3", "NPS", 8, contact="c", group="unknown"),
    ]
    check = survey_summary(responses, periods.month(2026, 1)).group_check
    assert (check.checked, check.mismatches, check.missing_group, check.mismatch_ids) == (3, 2, 0, ("r2", "r3"))
