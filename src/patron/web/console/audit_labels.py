"""The audit trail in words: who acted, what they did and to what (English message ids, translated
where shown). One label for each code in ``patron.audit.service``; a test keeps them in step."""

from __future__ import annotations

from typing import Final

from patron.web.i18n import N_

ACTOR_LABELS: Final = {
    "staff": N_("Staff"),
    "apikey": N_("API key"),
    "system": N_("System"),
    "member": N_("Member"),
}
ENTITY_LABELS: Final = {
    "member": N_("Member"),
    "points_adjustment": N_("Points adjustment"),
    "staff": N_("Staff user"),
    "api_key": N_("API key"),
    "settings": N_("Program settings"),
    "store": N_("Store"),
    "category": N_("Category"),
    "product": N_("Product"),
    "webhook": N_("Webhook"),
    "import": N_("Data import"),
}
ACTION_LABELS: Final = {
    "member.register": N_("Member registered"),
    "member.update": N_("Profile changed"),
    "member.consent": N_("Marketing consent changed"),
    "member.tag_add": N_("Tag added"),
    "member.tag_remove": N_("Tag removed"),
    "member.erasure_request": N_("Erasure requested"),
    "member.import": N_("Members imported"),
    "tier.override": N_("Tier set by hand"),
    "points.earn": N_("Points earned"),
    "points.spend": N_("Points spent"),
    "points.spend_cancel": N_("Points spending cancelled"),
    "points.refund_clawback": N_("Points clawed back after a return"),
    "points.adjust_request": N_("Adjustment requested"),
    "points.adjust_approve": N_("Adjustment approved"),
    "points.adjust_reject": N_("Adjustment rejected"),
    "orders.import_batch": N_("Orders imported"),
    "staff.create": N_("Staff user created"),
    "staff.update": N_("Staff user changed"),
    "apikey.create": N_("API key created"),
    "apikey.revoke": N_("API key revoked"),
    "settings.update": N_("Program settings changed"),
    "store.create": N_("Store created"),
    "store.update": N_("Store changed"),
    "category.create": N_("Category created"),
    "category.update": N_("Category changed"),
    "product.create": N_("Product created"),
    "product.update": N_("Product changed"),
    "webhook.create": N_("Webhook created"),
    "webhook.deactivate": N_("Webhook deactivated"),
    "webhook.resend": N_("Webhook delivery resent"),
}


def labels() -> dict[str, dict[str, str]]:
    """For a template that shows audit records."""
    return {
        "actor_labels": ACTOR_LABELS,
        "entity_labels": ENTITY_LABELS,
        "action_labels": ACTION_LABELS,
    }
