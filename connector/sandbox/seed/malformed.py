"""Deliberately malformed values, one record each, for the connector's bad-input handling."""

from __future__ import annotations

from connector.sandbox.seed.core import SeedRecord


# Deliberately malformed values, one record each, for the connector's bad-input handling. Each entry:
# (object type, property, bad value, why, which record: a predicate on its properties).
_MALFORMED = (
    ("contacts", "date_of_birth", "1985-02-30", "impossible date", lambda p: "date_of_birth" in p),
    ("contacts", "lifecyclestage", "Customer", "not an option (options are lower case)",
     lambda p: p.get("lifecyclestage") == "customer"),
    ("companies", "numberofemployees", "1,200", "thousands separator in a number", lambda p: True),
    ("companies", "notes_last_contacted", None, "datetime without T, seconds or zone",
     lambda p: "notes_last_contacted" in p),
    ("line_items", "price", "12,50", "decimal comma in a number", lambda p: p.get("hs_product_id") == "1101"),
    ("subscriptions", "hs_last_payment_amount", "1.200,00", "European number format",
     lambda p: "hs_last_payment_amount" in p),
    ("feedback_submissions", "hs_value", "11", "NPS rating out of 0-10",
     lambda p: p.get("hs_survey_type") == "NPS"),
)



def _inject_malformed(records: dict[str, list[SeedRecord]]) -> list[dict]:
    """Spoil one record per kind (the median matching one, so small portals have it too); list them."""
    out = []
    for object_type, name, value, reason, wanted in _MALFORMED:
        candidates = [r for r in records[object_type] if not r.archived and wanted(r.properties)]
        if not candidates:
            continue
        rec = candidates[len(candidates) // 2]
        if value is None:  # keep the date, lose the format
            value = rec.properties[name][:10] + " " + rec.properties[name][11:16]
        rec.properties[name] = value
        if name in rec.history:
            hist = rec.history[name]
            hist[-1] = (value, hist[-1][1])
        out.append({"kind": "malformed", "object_type": object_type, "id": rec.id, "property": name,
                    "value": value, "reason": reason})
    return out
