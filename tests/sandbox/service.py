"""The tiny portal plus owners, a product, tickets and engagements with exact, known data (service-object tests)."""

from __future__ import annotations

from connector.sandbox import schema
from connector.sandbox.portal import Portal, iso
from connector.sandbox.seed import GeneratedPortal, SeedOwner, SeedRecord
from tests.sandbox.tiny import DAY, T0, tiny_portal

OWNERS = (
    SeedOwner(71001, 5001, "ann.cs@vendor.example", "Ann", "Carter", (("41002", "Customer Success"),), T0 - DAY),
    SeedOwner(71002, 5002, "sam.support@vendor.example", "Sam", "Hill",
              (("41003", "Support"), ("41002", "Customer Success")), T0 - DAY),
    SeedOwner(71003, 5003, "gone.sales@vendor.example", "Gil", "Gone", (("41001", "Sales"),), T0 - DAY, archived=True),
)
TICKET_IDS = (5101, 5102, 5103)
CALL_ID, EMAIL_ID, MEETING_ID, NOTE_ID, TASK_ID, PRODUCT_ID = 4801, 4901, 4701, 4601, 2701, 701


def _rec(object_type: str, rid: int, created: int, props: dict[str, str], modified: int | None = None,
         history: dict | None = None) -> SeedRecord:
    full = {"hs_object_id": str(rid), schema.CREATED[object_type]: iso(created),
            schema.LAST_MODIFIED[object_type]: iso(modified or created), **props}
    return SeedRecord(object_type, rid, created, full, history or {})


def service_portal() -> GeneratedPortal:
    base = tiny_portal()
    records = dict(base.records)
    records["companies"] = list(records["companies"])
    records["companies"][0].properties["hubspot_owner_id"] = "71001"
    records["tickets"] = [
        _rec("tickets", 5101, T0 + 30 * DAY, {"subject": "Export fails", "content": "CSV export times out",
                                              "hs_pipeline": "0", "hs_pipeline_stage": "4",
                                              "hs_ticket_priority": "HIGH", "hs_ticket_category": "PRODUCT_ISSUE",
                                              "hubspot_owner_id": "71002", "closed_date": iso(T0 + 32 * DAY),
                                              "time_to_close": str(2 * DAY)}, T0 + 32 * DAY,
             {"hs_pipeline_stage": [("1", T0 + 30 * DAY), ("4", T0 + 32 * DAY)]}),
        _rec("tickets", 5102, T0 + 40 * DAY, {"subject": "Invoice seat count", "hs_pipeline": "0",
                                              "hs_pipeline_stage": "1", "hs_ticket_priority": "LOW",
                                              "hubspot_owner_id": "71002"}),
        _rec("tickets", 5103, T0 + 50 * DAY, {"subject": "SSO request", "hs_pipeline": "0", "hs_pipeline_stage": "3",
                                              "hs_ticket_priority": "MEDIUM"}),
    ]
    records["calls"] = [_rec("calls", CALL_ID, T0 + 31 * DAY, {
        "hs_timestamp": iso(T0 + 31 * DAY), "hubspot_owner_id": "71001", "hs_call_title": "Escalation call",
        "hs_call_direction": "OUTBOUND", "hs_call_duration": "600000", "hs_call_status": "COMPLETED"})]
    records["emails"] = [_rec("emails", EMAIL_ID, T0 + 33 * DAY, {
        "hs_timestamp": iso(T0 + 33 * DAY), "hubspot_owner_id": "71001", "hs_email_direction": "EMAIL",
        "hs_email_subject": "Follow-up from our call", "hs_email_status": "SENT"})]
    records["meetings"] = [_rec("meetings", MEETING_ID, T0 + 60 * DAY, {
        "hs_timestamp": iso(T0 + 60 * DAY), "hubspot_owner_id": "71001", "hs_meeting_title": "Quarterly review",
        "hs_meeting_start_time": iso(T0 + 60 * DAY), "hs_meeting_end_time": iso(T0 + 60 * DAY + 3_600_000),
        "hs_meeting_outcome": "COMPLETED"})]
    records["notes"] = [_rec("notes", NOTE_ID, T0 + 61 * DAY, {
        "hs_timestamp": iso(T0 + 61 * DAY), "hubspot_owner_id": "71001", "hs_note_body": "<p>Happy champion.</p>"})]
    records["tasks"] = [_rec("tasks", TASK_ID, T0 + 62 * DAY, {
        "hs_timestamp": iso(T0 + 69 * DAY), "hubspot_owner_id": "71001", "hs_task_subject": "Renewal check-in",
        "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH", "hs_task_type": "CALL"})]
    records["products"] = [_rec("products", PRODUCT_ID, T0 - DAY, {"name": "Growth", "price": "49.00",
                                                                    "hs_sku": "SKU-1102"})]
    associations = list(base.associations) + [
        ("tickets", 5101, "companies", 2001, True), ("tickets", 5101, "contacts", 1001, False),
        ("tickets", 5102, "companies", 2001, True), ("tickets", 5103, "companies", 2002, True),
        ("calls", CALL_ID, "companies", 2001, False), ("calls", CALL_ID, "contacts", 1001, False),
        ("calls", CALL_ID, "tickets", 5101, False), ("emails", EMAIL_ID, "contacts", 1001, False),
        ("meetings", MEETING_ID, "companies", 2001, False), ("notes", NOTE_ID, "companies", 2001, False),
        ("tasks", TASK_ID, "companies", 2001, False),
    ]
    return GeneratedPortal(records=records, associations=associations, now_ms=base.now_ms,
                           ground_truth=[], owners=list(OWNERS))


def make_service_portal(**options) -> Portal:
    portal = Portal(seed=13, **options)
    portal.ingest(service_portal())
    return portal
