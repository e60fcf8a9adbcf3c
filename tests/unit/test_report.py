"""Report rendering: figures reach the tables and charts, and the HTML is self-contained."""

from __future__ import annotations

import io

from rich.console import Console

from connector.report import movement_rows, period_rows, print_report, render_html

DATA = {
    "title": "Sandbox portal",
    "as_of": "2026-11-01",
    "currency": "USD",
    "periods": [
        {
            "key": "2026-09",
            "customers": {"start": 200, "end": 200, "new": 8, "lost": 8},
            "customer_retention_rate": 0.96,
            "customer_churn_rate": 0.04,
            "mrr_end": 1010,
            "movements": {"new": 250, "expansion": 50, "contraction": 80, "churned": 300, "reactivation": 90},
            "net_revenue_retention": 0.67,
            "gross_revenue_retention": 0.62,
            "nps": 20.0,
        },
        {"key": "2026-10", "customers": {"start": 0, "end": 12}, "customer_retention_rate": None, "nps": None},
    ],
    "cohorts": [{"cohort": "2026-01", "size": 10, "retention": [1.0, 0.9, None]}],
    "health": {"bands": {"red": 3, "yellow": 5, "green": 12}, "changes": {"red": 1}, "average": 71.5},
    "segments": {"lifecycle": {"active": 15, "at_risk": 3}, "tags": {"promoter": 4}},
}


def test_period_rows_formats_figures_and_undefined_ratios():
    first, second = period_rows(DATA)
    assert first[2] == "96.0 %" and first[3] == "4.0 %"
    assert first[5] == "67.0 %" and first[6] == "62.0 %"
    assert second[2] == "—"  # S = 0: retention undefined, not 0 %


def test_movement_rows_sign_losses_and_sum_to_net_new_mrr():
    row = movement_rows(DATA)[0]
    assert row[1:] == ["+250", "+50", "+90", "-80", "-300", "+10"]
    assert movement_rows({"periods": [{"key": "k", "movements": {}}]})[0][1:] == ["0"] * 6  # E3: 1000 → 1010


def test_print_report_lists_health_and_segments():
    buffer = io.StringIO()
    print_report(DATA, Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "2026-09" in text and "96.0 %" in text
    assert "red 3 (+1)" in text and "at_risk 3" in text


def test_render_html_is_self_contained_with_all_charts():
    page = render_html(DATA)
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "http" not in page.split("</style>")[1]
    for heading in ("MRR movements", "Cohort retention", "Health distribution", "NPS trend"):
        assert heading in page
    assert page.count("<svg") >= 4
    assert "90%" in page  # cohort cell


def test_report_piped_to_a_log_is_plain_and_never_cut(capsys):
    from connector.report import print_report

    data = {"title": "Retention report", "as_of": "2026-12-04T18:22:30", "currency": "USD", "periods": [{
        "key": "2026-11", "customers": {"start": 1234567, "end": 1234999, "new": 1, "lost": 2, "reactivated": 0},
        "customer_retention_rate": 0.9876, "customer_churn_rate": 0.0124, "mrr_start": 123456789.0,
        "mrr_end": 123456799.5, "movements": {"new": 24412.0, "expansion": 1.0, "contraction": -2.0,
                                             "churned": -3.0, "reactivation": 0.0},
        "net_revenue_retention": 1.01, "gross_revenue_retention": 0.99, "arpa": 100.0, "nps": 12.5,
        "csat": None, "ces": None}], "cohorts": [], "health": {}, "segments": {}}
    print_report(data)  # capsys: stdout is not a terminal
    out = capsys.readouterr().out
    assert "…" not in out and "┃" not in out and "━" not in out
    assert "1,234,567→1,234,999" in out.replace(" ", "") or "1234567" in out.replace(",", "")
    assert "+24,412" in out
