"""Words for the service desk's codes, shared by the console, the portal and the audit log."""

from __future__ import annotations

from typing import Final

from patron.web.i18n import N_

CATEGORY_LABELS: Final = {
    "missing_points": N_("Missing points"),
    "benefit": N_("Tier benefits"),
    "redemption": N_("Gift redemption"),
    "account": N_("Account and profile"),
    "complaint": N_("Complaint"),
    "other": N_("Something else"),
}
PRIORITY_LABELS: Final = {
    "low": N_("Low"),
    "normal": N_("Normal"),
    "high": N_("High"),
    "urgent": N_("Urgent"),
}
STATUS_LABELS: Final = {
    "open": N_("Waiting for an answer"),
    "in_progress": N_("Being handled"),
    "resolved": N_("Resolved"),
}
QUEUE_LABELS: Final = {"standard": N_("Standard queue"), "vip": N_("VIP queue")}
CHANNEL_LABELS: Final = {
    "portal": N_("Member portal"),
    "desk": N_("Store desk"),
    "console": N_("Console"),
    "api": N_("Through the API"),
}
#: audit fields whose values are one of these codes
CODED_FIELDS: Final = {
    "category": CATEGORY_LABELS,
    "priority": PRIORITY_LABELS,
    "queue": QUEUE_LABELS,
    "channel": CHANNEL_LABELS,
}
