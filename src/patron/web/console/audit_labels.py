"""The audit trail in words: who acted, what they did and to what (English message ids, translated
where shown). One label for each code in ``patron.audit.service``; a test keeps them in step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from patron.audit.models import AuditRecord
from patron.members import service as members
from patron.tiers import domain as tier_domain
from patron.web.i18n import N_
from patron.web.service_labels import CODED_FIELDS

ACTOR_LABELS: Final = {
    "staff": N_("Staff"),
    "apikey": N_("API key"),
    "system": N_("System"),
    "member": N_("Member"),
}
ENTITY_LABELS: Final = {
    "member": N_("Member"),
    "points_adjustment": N_("Points adjustment"),
    "member_batch": N_("Members selected together"),
    "staff": N_("Staff user"),
    "api_key": N_("API key"),
    "settings": N_("Program settings"),
    "store": N_("Store"),
    "category": N_("Category"),
    "product": N_("Product"),
    "webhook": N_("Webhook"),
    "import": N_("Data import"),
    "campaign": N_("Campaign"),
    "campaign_action": N_("Earning action"),
    "coupon": N_("Coupon"),
    "coupon_template": N_("Coupon template"),
    "event": N_("Member event"),
    "mall_flash_sale": N_("Flash redemption"),
    "mall_gift": N_("Mall gift"),
    "mall_lottery": N_("Lottery pool"),
    "mall_redemption": N_("Gift redemption"),
    "mall_supplier": N_("Gift supplier"),
    "referral": N_("Referral"),
    "ugc_contest": N_("Contest"),
    "ugc_entry": N_("Contest entry"),
    "tag": N_("Tag"),
    "static_list": N_("Static list"),
    "service_ticket": N_("Service ticket"),
    "kb_article": N_("Help article"),
    "risk_review": N_("Risk review"),
    "erasure_request": N_("Erasure request"),
    "message_template": N_("Message template"),
    "message": N_("Message"),
    "journey": N_("Journey"),
}
ACTION_LABELS: Final = {
    "member.register": N_("Member registered"),
    "member.update": N_("Profile changed"),
    "member.consent": N_("Marketing consent changed"),
    "member.tag_add": N_("Tag added"),
    "member.batch_tag": N_("Selected members tagged"),
    "member.batch_message": N_("Message to selected members"),
    "member.batch_adjust": N_("Points adjustment asked for selected members"),
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
    "campaign.action_create": N_("Earning action created"),
    "campaign.budget_reached": N_("Campaign budget reached"),
    "campaign.create": N_("Campaign created"),
    "campaign.status": N_("Campaign status changed"),
    "campaign.update": N_("Campaign changed"),
    "coupon.issue": N_("Coupon issued"),
    "coupon.issue_batch": N_("Coupons issued to a list"),
    "coupon.void": N_("Coupon voided"),
    "coupon_template.create": N_("Coupon template created"),
    "coupon_template.update": N_("Coupon template changed"),
    "event.cancelled": N_("Event registration cancelled"),
    "event.close": N_("Event closed"),
    "event.create": N_("Event created"),
    "event.promoted": N_("Moved up from the waiting list"),
    "event.registered": N_("Registered for an event"),
    "event.waitlisted": N_("Put on an event's waiting list"),
    "mall.flash_sale_close": N_("Flash redemption closed early"),
    "mall.flash_sale_create": N_("Flash redemption created"),
    "mall.flash_sale_update": N_("Flash redemption changed"),
    "mall.gift_create": N_("Gift created"),
    "mall.gift_image": N_("Gift image uploaded"),
    "mall.gift_image_delete": N_("Gift image deleted"),
    "mall.gift_markdown": N_("Slow mover's price lowered"),
    "mall.gift_suppliers": N_("Gift suppliers chosen"),
    "mall.gift_update": N_("Gift changed"),
    "mall.lottery_close": N_("Lottery pool closed"),
    "mall.lottery_draw": N_("Lottery draw"),
    "mall.lottery_open": N_("Lottery pool opened"),
    "mall.lottery_put": N_("Lottery pool saved"),
    "mall.purchase_request": N_("Purchase request raised"),
    "mall.redemption_cancelled": N_("Gift redemption cancelled"),
    "mall.redemption_fulfilled": N_("Gift picked up"),
    "mall.redemption_received": N_("Gift received"),
    "mall.redemption_returned": N_("Gift returned"),
    "mall.redemption_reserved": N_("Gift redeemed"),
    "mall.redemption_shipped": N_("Gift shipped"),
    "mall.stock_adjustment": N_("Stock adjusted"),
    "mall.stock_receipt": N_("Stock received"),
    "mall.stock_transfer_in": N_("Stock transferred in"),
    "mall.stock_transfer_out": N_("Stock transferred out"),
    "mall.supplier_agreement": N_("Supplier agreement added"),
    "mall.supplier_put": N_("Supplier saved"),
    "mall.supplier_quote": N_("Supplier quote added"),
    "ugc_contest.create": N_("Contest created"),
    "ugc_contest.update": N_("Contest changed"),
    "ugc_entry.approve": N_("Contest entry approved"),
    "ugc_entry.reject": N_("Contest entry rejected"),
    "ugc_entry.win": N_("Contest winner rewarded"),
    "referral.clawed_back": N_("Referral reward clawed back"),
    "referral.held": N_("Referral held for review"),
    "referral.pending": N_("Referral recorded"),
    "referral.refused": N_("Referral refused"),
    "referral.rewarded": N_("Referral rewarded"),
    "tag_rule.create": N_("Rule tag defined"),
    "tag_rule.change": N_("Rule tag changed"),
    "static_list.import": N_("Static list imported"),
    "service.ticket_open": N_("Ticket opened"),
    "service.ticket_reply": N_("Ticket answered"),
    "service.ticket_assign": N_("Ticket assigned"),
    "service.ticket_resolve": N_("Ticket resolved"),
    "service.sla_breach": N_("Response target missed"),
    "service.article_save": N_("Help article saved"),
    "service.survey_answer": N_("Survey answered"),
    "risk.review_open": N_("Redemption held for a risk check"),
    "risk.review_decide": N_("Risk review decided"),
    "risk.step_up_verified": N_("Redemption confirmed by SMS code"),
    "privacy.erasure_complete": N_("Member's data erased"),
    "privacy.erasure_reject": N_("Erasure request rejected"),
    "message_template.save": N_("Message template saved"),
    "message.retry": N_("Message queued again"),
    "message.send_campaign": N_("Campaign message sent"),
    "journey.create": N_("Journey created"),
    "journey.change": N_("Journey changed"),
    "journey.pause": N_("Journey paused"),
    "journey.resume": N_("Journey resumed"),
}


def labels() -> dict[str, dict[str, str]]:
    """For a template that shows audit records."""
    return {
        "actor_labels": ACTOR_LABELS,
        "entity_labels": ENTITY_LABELS,
        "action_labels": ACTION_LABELS,
    }


#: before/after keys → label; keys not listed are shown with their underscores as spaces
FIELD_LABELS: Final = {
    "member_id": N_("Member"),
    "ledger": N_("Ledger"),
    "amount": N_("Amount"),
    "points": N_("Points"),
    "growth": N_("Growth value"),
    "reason": N_("Reason"),
    "status": N_("Status"),
    "note": N_("Note"),
    "source": N_("Source"),
    "tier": N_("Tier"),
    "from": N_("Previous tier"),
    "to": N_("New tier"),
    "until": N_("Held through"),
    "tag": N_("Tag"),
    "name": N_("Name"),
    "phone": N_("Phone"),
    "email": N_("Email"),
    "birthday": N_("Birthday"),
    "gender": N_("Gender"),
    "city": N_("City"),
    "region": N_("Region"),
    "member_type": N_("Member type"),
    "preferred_channel": N_("Preferred channel"),
    "store_code": N_("Store"),
    "total_fen": N_("Order total"),
    "paid_fen": N_("Paid"),
    "points_fen": N_("Paid with points"),
    "refunded_fen": N_("Refunded"),
    "points_used": N_("Points used"),
    "points_earned": N_("Points earned"),
    "to_debt": N_("Into points debt"),
    "self_decided": N_("Decided by the requester"),
    "username": N_("User name"),
    "role": N_("Role"),
    "scopes": N_("Scopes"),
    "revoked": N_("Revoked"),
    "channel": N_("Channel"),
    "granted": N_("Granted"),
    "field": N_("Field"),
    "phone_changed": N_("Phone number changed"),
    "category": N_("Category"),
    "priority": N_("Priority"),
    "queue": N_("Queue"),
    "assignee": N_("Assigned to"),
    "first_response": N_("First response"),
    "correction_points": N_("Points corrected"),
    "adjustment": N_("Adjustment"),
    "adjustment_status": N_("Adjustment status"),
    "minutes_late": N_("Minutes late"),
    "due": N_("Response due"),
    "title": N_("Title"),
    "published": N_("Published"),
    "nps": N_("Likelihood to recommend"),
    "satisfaction": N_("Satisfaction"),
    "ticket": N_("Ticket"),
    "score": N_("Risk score"),
    "rules": N_("Rules that fired"),
    "decision": N_("Decision"),
    "gift": N_("Gift"),
    "member_no": N_("Member number"),
    "redacted": N_("Personal data erased"),
    "members": N_("Members"),
    "already_tagged": N_("Already tagged"),
    "without_consent": N_("Left out: no consent to this channel"),
    "text": N_("Message"),
}
#: internal references an operator has no use for
HIDDEN_FIELDS: Final = frozenset({"posting_id", "reversal_id", "request_id", "rules_trace", "sid"})
VALUE_LABELS: Final = {
    "points": N_("Points"),
    "growth": N_("Growth value"),
    "applied": N_("Applied"),
    "pending_approval": N_("Waiting for approval"),
    "rejected": N_("Rejected"),
}
#: contact channels of a batch message
CONTACT_VALUES: Final = {
    "sms": N_("SMS"),
    "email": N_("Email"),
    "push": N_("Push"),
    "wechat": N_("WeChat"),
}
TIER_KEYS: Final = frozenset({"tier", "from", "to"})
#: a posting's source reference ("order:pos:O-1") said as what it is
SOURCE_LABELS: Final = {
    "order": N_("Order %(ref)s"),
    "order_return": N_("Return %(ref)s"),
    "api": N_("Through the API: %(ref)s"),
    "checkin": N_("Check-in %(ref)s"),
    "profile": N_("Profile bonus %(ref)s"),
}


@dataclass(frozen=True, slots=True)
class Shown:
    """One labelled value; ``translate``: the value is a message id too."""

    label: str
    value: str
    translate: bool = False
    #: values of the placeholders in ``value`` when it is translated
    values: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    record: AuditRecord
    #: the member number when the record is about a member (stored under its row id or number)
    entity: str
    before: list[Shown]
    after: list[Shown]


def _held_through(v: str, tz: ZoneInfo) -> Shown | None:
    """A tier hold's end is stored as the midnight after the last day held: say that day, in
    the business timezone, as the console's tier form took it (not the UTC instant after it)."""
    try:
        end = datetime.fromisoformat(v)
    except ValueError:
        return None
    if end.tzinfo is None:
        return None
    day = tier_domain.held_through(end, tz)
    if day is None:
        return Shown(FIELD_LABELS["until"], N_("held until changed again"), True)
    return Shown(FIELD_LABELS["until"], day.isoformat())


def _value(
    key: str, v: Any, member_nos: Mapping[int, str], tiers: Mapping[str, str], tz: ZoneInfo
) -> Shown:
    label = FIELD_LABELS.get(key, key.replace("_", " "))
    if isinstance(v, bool):
        return Shown(label, N_("Yes") if v else N_("No"), True)
    if key == "member_id" and isinstance(v, int):
        return Shown(label, member_nos.get(v, str(v)))
    if isinstance(v, int):
        if key.endswith("_fen"):
            return Shown(
                label,
                f"¥{v // 100:,}.{v % 100:02d}" if v >= 0 else f"-¥{-v // 100:,}.{-v % 100:02d}",
            )
        return Shown(label, f"{v:,}")
    if isinstance(v, str):
        if key in ("source", "refund"):
            kind, _, ref = v.partition(":")
            if kind in SOURCE_LABELS and ref:
                return Shown(label, SOURCE_LABELS[kind], True, {"ref": ref.replace(":", " ")})
            return Shown(label, v.replace(":", " "))
        if key in TIER_KEYS and v in tiers:
            return Shown(label, tiers[v])
        if key == "until" and (held := _held_through(v, tz)) is not None:
            return held
        coded = CODED_FIELDS.get(key)
        if coded is not None and v in coded:
            return Shown(label, coded[v], True)
        if key == "channel" and v in CONTACT_VALUES:
            return Shown(label, CONTACT_VALUES[v], True)
        if v in VALUE_LABELS and key in ("ledger", "status"):
            return Shown(label, VALUE_LABELS[v], True)
        return Shown(label, v)
    if isinstance(v, list):
        return Shown(label, ", ".join(str(x) for x in v))
    if isinstance(v, dict):
        return Shown(label, "; ".join(f"{k.replace('_', ' ')} {x}" for k, x in v.items()))
    return Shown(label, str(v))


def _shown(
    data: Mapping[str, Any] | None,
    member_nos: Mapping[int, str],
    tiers: Mapping[str, str],
    tz: ZoneInfo,
) -> list[Shown]:
    if not data:
        return []
    return [
        _value(k, v, member_nos, tiers, tz)
        for k, v in data.items()
        if v is not None and k not in HIDDEN_FIELDS
    ]


def rows(
    session: Session, records: list[AuditRecord], tier_names: Mapping[str, str], tz: ZoneInfo
) -> list[AuditRow]:
    """Records with labelled values and member numbers instead of row ids (one query); dates
    are the business timezone's (``tz``)."""
    ids: set[int] = set()
    for r in records:
        for data in (r.before, r.after):
            if data and isinstance(data.get("member_id"), int):
                ids.add(data["member_id"])
        if r.entity_type == "member" and r.entity_id.isdecimal() and len(r.entity_id) < 10:
            ids.add(int(r.entity_id))
    found = members.by_ids(session, sorted(ids)) if ids else {}
    nos = {mid: m.member_no for mid, m in found.items()}
    out = []
    for r in records:
        entity = r.entity_id
        if r.entity_type == "member" and entity.isdecimal() and len(entity) < 10:
            entity = nos.get(int(entity), entity)
        out.append(
            AuditRow(
                r,
                entity,
                _shown(r.before, nos, tier_names, tz),
                _shown(r.after, nos, tier_names, tz),
            )
        )
    return out
