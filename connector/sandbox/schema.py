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
}
# Singular names HubSpot also accepts in paths (`contact`, `company`, …).
SINGULAR = {
    "contact": "contacts", "company": "companies", "deal": "deals", "line_item": "line_items",
    "feedback_submission": "feedback_submissions", "subscription": "subscriptions",
}
READ_ONLY_TYPES = frozenset({"feedback_submissions"})
# The property search and incremental sync use as "last modified" per type (API-NOTES §1, §7).
LAST_MODIFIED = {t: ("lastmodifieddate" if t == "contacts" else "hs_lastmodifieddate") for t in OBJECT_TYPES}
CREATED = {t: ("createdate" if t in ("contacts", "companies", "deals", "line_items") else "hs_createdate") for t in OBJECT_TYPES}


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
}

# Properties whose history the generator writes (values that change over time).
HISTORICAL: dict[str, tuple[str, ...]] = {
    "companies": ("product_active_days_30d", "product_logins_30d", "seats_used", "support_open_tickets", "lifecyclestage"),
    "subscriptions": ("hs_mrr", "hs_status", "hs_last_payment_status"),
    "deals": ("dealstage",),
    "contacts": ("lifecyclestage",),
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
