"""The event types integrators can subscribe to: the one list of them.

Every payload is `{"id", "type", "created_at", "data": {…}}`; the shape of
`data` per type is documented in the OpenAPI schema (`webhooks/api/event_schema.py`,
served by `GET /api/webhook_event_types`).
"""

ENROLLMENT_SENT = "enrollment.sent"
ENROLLMENT_OPENED = "enrollment.opened"
ENROLLMENT_REPLIED = "enrollment.replied"
ENROLLMENT_BOUNCED = "enrollment.bounced"
ENROLLMENT_UNSUBSCRIBED = "enrollment.unsubscribed"
ENROLLMENT_COMPLETED = "enrollment.completed"
CAMPAIGN_COMPLETED = "campaign.completed"
SMTP_CREDENTIAL_DISABLED = "smtp_credential.disabled"
MAILBOX_DISABLED = "mailbox.disabled"
JOURNEY_ENROLLMENT_COMPLETED = "journey_enrollment.completed"
JOURNEY_ENROLLMENT_EXITED = "journey_enrollment.exited"
WEBHOOK_TEST = "webhook.test"
WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"

# type -> when it is sent (shown in the API docs and by GET /api/webhook_event_types)
EVENT_TYPES: dict[str, str] = {
    ENROLLMENT_SENT: "The first step of an enrollment was sent (pending → sent).",
    ENROLLMENT_OPENED: "The tracking pixel of a sent message was loaded (sent → opened).",
    ENROLLMENT_REPLIED: "A reply to the sequence was detected (sent/opened → replied).",
    ENROLLMENT_BOUNCED: "A message bounced, synchronously or through a bounce webhook (any → bounced).",
    ENROLLMENT_UNSUBSCRIBED: "The contact unsubscribed; the sequence stops.",
    ENROLLMENT_COMPLETED: "Every step of the sequence was sent without a reply, bounce or unsubscribe.",
    CAMPAIGN_COMPLETED: "Every enrollment of the campaign reached a final state.",
    SMTP_CREDENTIAL_DISABLED: (
        "The mailbox of an SMTP credential was disabled (bounce-rate guard, a revoked OAuth2 grant, or an "
        "operator); one event per campaign using the mailbox."
    ),
    MAILBOX_DISABLED: "A mailbox was disabled, for every campaign and journey using it.",
    JOURNEY_ENROLLMENT_COMPLETED: "A journey enrollment went through every step of its journey.",
    JOURNEY_ENROLLMENT_EXITED: "A journey enrollment stopped before its last step (bounce, reply or unsubscribe).",
    WEBHOOK_TEST: "Sent by POST /api/webhook_endpoints/{id}/test to that endpoint only, whatever it subscribes to.",
    WEBHOOK_ENDPOINT_DISABLED: (
        "An endpoint of the account was disabled (410 Gone, every delivery failing for 5 days, or "
        "PATCH enabled=false); sent to the account's other endpoints."
    ),
}

# A test event goes to the endpoint it was asked for, never to subscribers.
NOT_SUBSCRIBABLE = frozenset({WEBHOOK_TEST})
SUBSCRIBABLE_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t not in NOT_SUBSCRIBABLE)
