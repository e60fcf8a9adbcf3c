"""The sandbox portal's object types, property definitions and association types (CONTRACT).

The seed generator fills these properties, the app serves them under /crm/v3/properties, and the default
mapping pack in ``mappings/`` maps them. Names of built-in properties are HubSpot's own; custom ones live in
the groups ``product_usage`` and ``customer_success`` as an admin would create them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# name -> objectTypeId, and the plural name the API accepts in paths.
OBJECT_TYPES: dict[str, str] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "line_items": "0-8",
    "feedback_submissions": "0-19",
    "subscriptions": "0-69",
    # Service and sales-activity objects (objects guide; engagements: calls/emails/meetings/notes/tasks guides).
    "tickets": "0-5",
    "products": "0-7",
    "quotes": "0-14",
    "calls": "0-48",
    "emails": "0-49",
    "meetings": "0-47",
    "notes": "0-46",
    "tasks": "0-27",
}
# Singular names HubSpot also accepts in paths (`contact`, `company`, …).
SINGULAR = {
    "contact": "contacts", "company": "companies", "deal": "deals", "line_item": "line_items",
    "feedback_submission": "feedback_submissions", "subscription": "subscriptions",
    "ticket": "tickets", "product": "products", "quote": "quotes", "call": "calls", "email": "emails",
    "meeting": "meetings", "note": "notes", "task": "tasks",
}
# Engagements: timeline activities logged against contacts, companies, deals and tickets.
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "notes", "tasks")
READ_ONLY_TYPES = frozenset({"feedback_submissions"})
# The property search and incremental sync use as "last modified" per type (API-NOTES §1, §7).
LAST_MODIFIED = {t: ("lastmodifieddate" if t == "contacts" else "hs_lastmodifieddate") for t in OBJECT_TYPES}
CREATED = {t: ("createdate" if t in ("contacts", "companies", "deals", "line_items", "tickets", "products")
               else "hs_createdate") for t in OBJECT_TYPES}


@dataclass(frozen=True)
class Prop:
    name: str
    label: str
    type: str  # string | number | enumeration | date | datetime | bool
    field_type: str  # text | textarea | number | select | radio | checkbox | booleancheckbox | date | phonenumber
    group: str
    options: tuple[str, ...] = ()
    hubspot_defined: bool = True
    read_only: bool = False  # calculated/system values a client cannot write
    has_unique_value: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)


def _p(name, label, type_, field_type, group, options=(), **kw) -> Prop:
    return Prop(name, label, type_, field_type, group, tuple(options), **kw)


LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer", "evangelist", "other")
SOURCES = ("ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS", "OTHER_CAMPAIGNS",
           "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL")
INDUSTRIES = ("COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "RETAIL", "HOSPITALITY",
              "EDUCATION_MANAGEMENT", "MARKETING_AND_ADVERTISING", "CONSTRUCTION", "LEISURE_TRAVEL_TOURISM",
              "RESTAURANTS", "LOGISTICS_AND_SUPPLY_CHAIN", "MANUFACTURING")
CURRENCIES = ("USD", "EUR", "GBP")
FREQUENCIES = ("weekly", "biweekly", "monthly", "quarterly", "per_six_months", "annually", "per_two_years",
               "per_three_years", "per_four_years", "per_five_years")
MILESTONES = ("account_created", "data_imported", "integration_connected", "team_invited", "first_report")

_COMMON_CONTACT_LIKE = ("createdate", "lastmodifieddate")
# Default ticket pipeline "0" and its stages (ids as HubSpot's default Support Pipeline has them; portal/pipelines.py
# serves their labels and metadata).
TICKET_PIPELINES = ("0",)
TICKET_STAGES = ("1", "2", "3", "4")  # New, Waiting on contact, Waiting on us, Closed
TICKET_PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")
TICKET_CATEGORIES = ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY")
CALL_STATUSES = ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
                 "NO_ANSWER", "QUEUED", "RINGING")


def _system(group: str, created: str = "hs_createdate", id_label: str = "Record ID") -> tuple[Prop, ...]:
    """The id, created and last-modified properties every record has (read-only)."""
    return (
        _p("hs_object_id", id_label, "number", "number", group, read_only=True),
        _p(created, "Create Date", "datetime", "date", group, read_only=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group, read_only=True),
    )


def _engagement(word: str, own: tuple[Prop, ...]) -> tuple[Prop, ...]:
    """An engagement's system properties, its activity date and owner (group ``engagement``), then its own."""
    return _system(f"{word}information") + (
        _p("hs_timestamp", "Activity date", "datetime", "date", "engagement"),
        _p("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "engagement"),
    ) + own


PROPERTIES: dict[str, tuple[Prop, ...]] = {
    "contacts": (
        _p("hs_object_id", "Record ID", "number", "number", "contactinformation", read_only=True),
        _p("createdate", "Create Date", "datetime", "date", "contactinformation", read_only=True),
        _p("lastmodifieddate", "Last Modified Date", "datetime", "date", "contactinformation", read_only=True),
        _p("email", "Email", "string", "text", "contactinformation", has_unique_value=True),
        _p("firstname", "First Name", "string", "text", "contactinformation"),
        _p("lastname", "Last Name", "string", "text", "contactinformation"),
        _p("jobtitle", "Job Title", "string", "text", "contactinformation"),
        _p("company", "Company Name", "string", "text", "contactinformation"),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation", LIFECYCLE),
        _p("associatedcompanyid", "Primary Associated Company ID", "number", "number", "contactinformation", read_only=True),
        _p("date_of_birth", "Date of birth", "date", "date", "contactinformation"),
        _p("hubspot_owner_id", "Contact owner", "enumeration", "select", "sales_properties"),
        _p("hs_analytics_source", "Original Source", "enumeration", "select", "analyticsinformation", SOURCES, read_only=True),
        _p("hs_feedback_last_nps_rating", "Last NPS survey rating", "enumeration", "select", "feedback_information",
           tuple(str(i) for i in range(11)), read_only=True),
        _p("hs_feedback_last_survey_date", "Last NPS survey date", "datetime", "date", "feedback_information", read_only=True),
        _p("last_login_date", "Last login", "datetime", "date", "product_usage", hubspot_defined=False),
        _p("logins_last_30_days", "Logins (last 30 days)", "number", "number", "product_usage", hubspot_defined=False),
    ),
    "companies": (
        _p("hs_object_id", "Record ID", "number", "number", "companyinformation", read_only=True),
        _p("createdate", "Create Date", "datetime", "date", "companyinformation", read_only=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "companyinformation", read_only=True),
        _p("name", "Company name", "string", "text", "companyinformation"),
        _p("domain", "Company Domain Name", "string", "text", "companyinformation", has_unique_value=False),
        _p("industry", "Industry", "enumeration", "select", "companyinformation", INDUSTRIES),
        _p("numberofemployees", "Number of Employees", "number", "number", "companyinformation"),
        _p("annualrevenue", "Annual Revenue", "number", "number", "companyinformation"),
        _p("country", "Country/Region", "string", "text", "companyinformation"),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "companyinformation", LIFECYCLE),
        _p("hubspot_owner_id", "Company owner", "enumeration", "select", "companyinformation"),
        _p("hs_analytics_source", "Original Source Type", "enumeration", "select", "analyticsinformation", SOURCES, read_only=True),
        _p("hs_lifecyclestage_customer_date", "Became a Customer Date", "datetime", "date", "companyinformation", read_only=True),
        _p("num_associated_contacts", "Number of Associated Contacts", "number", "number", "companyinformation", read_only=True),
        _p("notes_last_contacted", "Last Contacted", "datetime", "date", "companyinformation", read_only=True),
        _p("product_last_login_at", "Last product login", "datetime", "date", "product_usage", hubspot_defined=False),
        _p("product_logins_30d", "Logins (last 30 days)", "number", "number", "product_usage", hubspot_defined=False),
        _p("product_active_days_30d", "Active days (last 30 days)", "number", "number", "product_usage", hubspot_defined=False),
        _p("product_active_users_30d", "Monthly active users", "number", "number", "product_usage", hubspot_defined=False),
        _p("product_avg_dau_30d", "Average daily active users (30 days)", "number", "number", "product_usage", hubspot_defined=False),
        _p("seats_purchased", "Seats purchased", "number", "number", "product_usage", hubspot_defined=False),
        _p("seats_used", "Seats used", "number", "number", "product_usage", hubspot_defined=False),
        _p("onboarding_milestones", "Onboarding milestones done", "enumeration", "checkbox", "customer_success",
           MILESTONES, hubspot_defined=False),
        _p("onboarding_first_value_date", "First value reached", "date", "date", "customer_success", hubspot_defined=False),
        _p("support_open_tickets", "Open support tickets", "number", "number", "customer_success", hubspot_defined=False),
        _p("support_tickets_90d", "Support tickets (90 days)", "number", "number", "customer_success", hubspot_defined=False),
    ),
    "deals": (
        _p("hs_object_id", "Record ID", "number", "number", "dealinformation", read_only=True),
        _p("createdate", "Create Date", "datetime", "date", "dealinformation", read_only=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "dealinformation", read_only=True),
        _p("dealname", "Deal Name", "string", "text", "dealinformation"),
        _p("amount", "Amount", "number", "number", "dealinformation"),
        _p("closedate", "Close Date", "datetime", "date", "dealinformation"),
        _p("dealstage", "Deal Stage", "enumeration", "radio", "dealinformation",
           ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
            "contractsent", "closedwon", "closedlost")),
        _p("pipeline", "Pipeline", "enumeration", "select", "dealinformation", ("default",)),
        _p("dealtype", "Deal Type", "enumeration", "radio", "dealinformation", ("newbusiness", "existingbusiness")),
        _p("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", "dealinformation", ("true", "false"), read_only=True),
        _p("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", "dealinformation", ("true", "false"), read_only=True),
        _p("deal_currency_code", "Currency", "enumeration", "select", "dealinformation", CURRENCIES),
        _p("hubspot_owner_id", "Deal owner", "enumeration", "select", "dealinformation"),
    ),
    "line_items": (
        _p("hs_object_id", "Record ID", "number", "number", "lineiteminformation", read_only=True),
        _p("createdate", "Create Date", "datetime", "date", "lineiteminformation", read_only=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "lineiteminformation", read_only=True),
        _p("name", "Name", "string", "text", "lineiteminformation"),
        _p("quantity", "Quantity", "number", "number", "lineiteminformation"),
        _p("price", "Unit price", "number", "number", "lineiteminformation"),
        _p("amount", "Net price", "number", "number", "lineiteminformation", read_only=True),
        _p("hs_discount_percentage", "Discount Percentage", "number", "number", "lineiteminformation"),
        _p("recurringbillingfrequency", "Billing frequency", "enumeration", "select", "lineiteminformation", FREQUENCIES),
        _p("hs_recurring_billing_period", "Term", "string", "text", "lineiteminformation"),
        _p("hs_product_id", "Product ID", "number", "number", "lineiteminformation"),
        _p("hs_line_item_currency_code", "Currency", "enumeration", "select", "lineiteminformation", CURRENCIES),
    ),
    "subscriptions": (
        _p("hs_object_id", "Record ID", "number", "number", "subscription_information", read_only=True),
        _p("hs_createdate", "Create Date", "datetime", "date", "subscription_information", read_only=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "subscription_information", read_only=True),
        _p("hs_name", "Name", "string", "text", "subscription_information"),
        _p("hs_status", "Status", "enumeration", "select", "subscription_information",
           ("active", "past_due", "unpaid", "paused", "canceled", "expired", "scheduled")),
        _p("hs_recurring_billing_start_date", "Start date", "date", "date", "subscription_information"),
        _p("hs_recurring_billing_frequency", "Billing frequency", "enumeration", "select", "subscription_information",
           ("monthly", "quarterly", "annually")),
        _p("hs_mrr", "MRR", "number", "number", "subscription_information"),
        _p("hs_currency_code", "Currency", "enumeration", "select", "subscription_information", CURRENCIES),
        _p("hs_last_payment_amount", "Last payment amount", "number", "number", "subscription_information"),
        _p("hs_next_payment_amount", "Next payment amount", "number", "number", "subscription_information"),
        _p("hs_next_payment_due_date", "Next payment due date", "date", "date", "subscription_information"),
        _p("hs_last_payment_status", "Last payment status", "enumeration", "select", "subscription_information",
           ("succeeded", "failed", "pending")),
        _p("cancellation_requested_date", "Cancellation requested", "datetime", "date", "customer_success",
           hubspot_defined=False),
    ),
    "feedback_submissions": (
        _p("hs_object_id", "Record ID", "number", "number", "feedback_submission_information", read_only=True),
        _p("hs_createdate", "Create Date", "datetime", "date", "feedback_submission_information", read_only=True),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "feedback_submission_information", read_only=True),
        _p("hs_survey_type", "Survey type", "enumeration", "select", "feedback_submission_information", ("NPS", "CSAT", "CES")),
        _p("hs_value", "Response value", "number", "number", "feedback_submission_information"),
        _p("hs_response_group", "Response group", "enumeration", "select", "feedback_submission_information",
           ("PROMOTER", "PASSIVE", "DETRACTOR")),
        _p("hs_survey_channel", "Survey channel", "enumeration", "select", "feedback_submission_information",
           ("EMAIL", "WEB", "LINK")),
        _p("hs_submission_timestamp", "Submitted at", "datetime", "date", "feedback_submission_information"),
        _p("hs_survey_id", "Survey ID", "number", "number", "feedback_submission_information"),
        _p("hs_survey_name", "Survey name", "string", "text", "feedback_submission_information"),
        _p("hs_content", "Response", "string", "textarea", "feedback_submission_information"),
        _p("hs_sentiment", "Sentiment", "enumeration", "select", "feedback_submission_information",
           ("POSITIVE", "NEUTRAL", "NEGATIVE")),
    ),
    "tickets": _system("ticketinformation", "createdate", "Ticket ID") + (
        _p("subject", "Ticket name", "string", "text", "ticketinformation"),
        _p("content", "Ticket description", "string", "textarea", "ticketinformation"),
        _p("hs_pipeline", "Pipeline", "enumeration", "select", "ticketinformation", TICKET_PIPELINES),
        _p("hs_pipeline_stage", "Ticket status", "enumeration", "select", "ticketinformation", TICKET_STAGES),
        _p("hs_ticket_priority", "Priority", "enumeration", "select", "ticketinformation", TICKET_PRIORITIES),
        _p("hs_ticket_category", "Category", "enumeration", "checkbox", "ticketinformation", TICKET_CATEGORIES),
        _p("source_type", "Source", "enumeration", "select", "ticketinformation", ("CHAT", "EMAIL", "FORM", "PHONE")),
        _p("hubspot_owner_id", "Ticket owner", "enumeration", "select", "ticketinformation"),
        _p("closed_date", "Close date", "datetime", "date", "ticketinformation"),
        _p("time_to_close", "Time to close", "number", "number", "ticketinformation", read_only=True,
           description="Milliseconds from creation to the close date."),
    ),
    "products": _system("productinformation", "createdate") + (
        _p("name", "Name", "string", "text", "productinformation"),
        _p("description", "Description", "string", "textarea", "productinformation"),
        _p("price", "Unit price", "number", "number", "productinformation"),
        _p("hs_sku", "SKU", "string", "text", "productinformation"),
        _p("hs_product_type", "Product type", "enumeration", "select", "productinformation",
           ("inventory", "non_inventory", "service")),
        _p("recurringbillingfrequency", "Billing frequency", "enumeration", "select", "productinformation", FREQUENCIES),
        _p("hs_recurring_billing_period", "Term", "string", "text", "productinformation"),
    ),
    "quotes": _system("quoteinformation") + (
        _p("hs_title", "Quote name", "string", "text", "quoteinformation"),
        _p("hs_expiration_date", "Expiration date", "datetime", "date", "quoteinformation"),
        _p("hs_status", "Quote approval status", "enumeration", "select", "quoteinformation",
           ("DRAFT", "APPROVAL_NOT_NEEDED", "PENDING_APPROVAL", "APPROVED", "REJECTED")),
        _p("hs_quote_amount", "Quote amount", "number", "number", "quoteinformation", read_only=True),
        _p("hs_currency", "Currency", "enumeration", "select", "quoteinformation", CURRENCIES),
        _p("hubspot_owner_id", "Quote owner", "enumeration", "select", "quoteinformation"),
    ),
    "calls": _engagement("call", (
        _p("hs_call_title", "Call title", "string", "text", "call"),
        _p("hs_call_body", "Call notes", "string", "html", "call"),
        _p("hs_call_direction", "Call direction", "enumeration", "select", "call", ("INBOUND", "OUTBOUND")),
        _p("hs_call_duration", "Call duration", "number", "number", "call", description="Milliseconds."),
        _p("hs_call_status", "Call status", "enumeration", "select", "call", CALL_STATUSES),
    )),
    "emails": _engagement("email", (
        _p("hs_email_direction", "Email direction", "enumeration", "select", "email",
           ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")),
        _p("hs_email_subject", "Email subject", "string", "text", "email"),
        _p("hs_email_text", "Email body", "string", "textarea", "email"),
        _p("hs_email_status", "Email send status", "enumeration", "select", "email",
           ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT")),
    )),
    "meetings": _engagement("meeting", (
        _p("hs_meeting_title", "Meeting name", "string", "text", "meeting"),
        _p("hs_meeting_body", "Meeting description", "string", "html", "meeting"),
        _p("hs_meeting_start_time", "Start time", "datetime", "date", "meeting"),
        _p("hs_meeting_end_time", "End time", "datetime", "date", "meeting"),
        _p("hs_meeting_outcome", "Meeting outcome", "enumeration", "select", "meeting",
           ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED")),
    )),
    "notes": _engagement("note", (
        _p("hs_note_body", "Note body", "string", "html", "note"),
    )),
    "tasks": _engagement("task", (
        _p("hs_task_subject", "Task title", "string", "text", "task"),
        _p("hs_task_body", "Task notes", "string", "html", "task"),
        _p("hs_task_status", "Task status", "enumeration", "select", "task",
           ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
        _p("hs_task_priority", "Priority", "enumeration", "select", "task", ("NONE", "LOW", "MEDIUM", "HIGH")),
        _p("hs_task_type", "Task type", "enumeration", "select", "task", ("CALL", "EMAIL", "TODO")),
    )),
}

# Properties whose history the generator writes (values that change over time).
HISTORICAL: dict[str, tuple[str, ...]] = {
    "companies": ("product_active_days_30d", "product_logins_30d", "seats_used", "support_open_tickets", "lifecyclestage"),
    "subscriptions": ("hs_mrr", "hs_status", "hs_last_payment_status"),
    "deals": ("dealstage",),
    "contacts": ("lifecyclestage",),
    "tickets": ("hs_pipeline_stage",),
}
# Properties whose options are the portal's owners (HubSpot's externalOptions, referencedObjectType OWNER).
OWNER_PROPERTY = "hubspot_owner_id"

# Engagement <-> contact/company/deal/ticket type ids: (engagement, other) -> id; the reverse is id - 1.
_ENGAGEMENT_BASE = {  # other -> {engagement: id of engagement->other}
    "contacts": {"calls": 194, "emails": 198, "meetings": 200, "notes": 202, "tasks": 204},
    "companies": {"calls": 182, "emails": 186, "meetings": 188, "notes": 190, "tasks": 192},
    "deals": {"calls": 206, "emails": 210, "meetings": 212, "notes": 214, "tasks": 216},
    "tickets": {"calls": 220, "emails": 224, "meetings": 226, "notes": 228, "tasks": 230},
}
_ENGAGEMENT_ASSOCIATION_IDS = {
    pair: type_id for other, ids in _ENGAGEMENT_BASE.items() for engagement, forward in ids.items()
    for pair, type_id in (((engagement, other), forward), ((other, engagement), forward - 1))
}

# HUBSPOT_DEFINED association type ids: (from, to) -> (typeId, label). Primary ones carry a label.
# contact<->company, deal<->contact, deal<->company are from real responses (API-NOTES §3); the rest are
# the sandbox's own choice (UNVERIFIED against HubSpot) and only need to be stable.
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[tuple[int, str | None], ...]] = {
    ("contacts", "companies"): ((1, "Primary"), (279, None)),
    ("companies", "contacts"): ((2, "Primary"), (280, None)),
    ("deals", "contacts"): ((3, None),),
    ("contacts", "deals"): ((4, None),),
    ("deals", "companies"): ((5, "Primary"), (341, None)),
    ("companies", "deals"): ((6, "Primary"), (342, None)),
    ("deals", "line_items"): ((19, None),),
    ("line_items", "deals"): ((20, None),),
    ("subscriptions", "contacts"): ((295, None),),
    ("contacts", "subscriptions"): ((296, None),),
    ("subscriptions", "companies"): ((297, None),),
    ("companies", "subscriptions"): ((298, None),),
    ("subscriptions", "line_items"): ((301, None),),
    ("line_items", "subscriptions"): ((302, None),),
    ("subscriptions", "deals"): ((303, None),),
    ("deals", "subscriptions"): ((304, None),),
    ("feedback_submissions", "contacts"): ((1148, None),),
    ("contacts", "feedback_submissions"): ((1147, None),),
    # Tickets, quotes and engagements: HubSpot's default type ids (associations v4 guide, "association type id
    # values"); the ticket's primary company carries the Primary label like a deal's.
    ("tickets", "contacts"): ((16, None),),
    ("contacts", "tickets"): ((15, None),),
    ("tickets", "companies"): ((26, "Primary"), (339, None)),
    ("companies", "tickets"): ((25, "Primary"), (340, None)),
    ("tickets", "deals"): ((28, None),),
    ("deals", "tickets"): ((27, None),),
    ("quotes", "deals"): ((64, None),),
    ("deals", "quotes"): ((63, None),),
    ("quotes", "line_items"): ((67, None),),
    ("line_items", "quotes"): ((68, None),),
    ("quotes", "contacts"): ((69, None),),
    ("contacts", "quotes"): ((70, None),),
    ("quotes", "companies"): ((71, None),),
    ("companies", "quotes"): ((72, None),),
    **{pair: ((type_id, None),) for pair, type_id in _ENGAGEMENT_ASSOCIATION_IDS.items()},
}


def canonical_type(name: str) -> str | None:
    """Accept plural, singular or objectTypeId (`contacts`, `contact`, `0-1`); None if unknown."""
    key = name.lower()
    if key in OBJECT_TYPES:
        return key
    if key in SINGULAR:
        return SINGULAR[key]
    for plural, type_id in OBJECT_TYPES.items():
        if type_id == key:
            return plural
    return None
