"""The points history in the operator's words: each posting as a sentence with the order number
and the store's name, and an order's earning broken down into labelled parts (base points, the
category bonus by category name, the tier multiplier by tier name) instead of the rule ids the
ledger records in its reason ("order D1 (store CQ001): base, category:baby, tier:diamond")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy.orm import Session

from patron.catalog import service as catalog
from patron.ledger import domain as ledger_domain
from patron.ledger.models import PointsPosting
from patron.orders import service as orders
from patron.orders.models import Order
from patron.risk import earning as risk_earning
from patron.rules.definitions import EarningRules
from patron.web.i18n import N_

#: (message id, values) — translated and filled in by the template
Phrase = tuple[str, dict[str, str]]

KIND_TEXTS: Final = {
    "release": N_("Pending points became available"),
    "expire": N_("Expired"),
    "repay": N_("Points debt repaid from new points"),
    "reversal": N_("Redemption cancelled, points returned"),
    "earn": N_("Earned"),
    "redeem": N_("Redeemed"),
    "clawback": N_("Taken back after a return"),
    "adjust": N_("Adjusted by hand"),
}
SOURCE_TEXTS: Final = {
    "checkin": N_("Daily check-in"),
    "profile": N_("Bonus for completing the profile"),
    "import": N_("Balance carried over by an import"),
    "ugc_contest": N_("Contest prize"),
}


@dataclass(frozen=True, slots=True)
class HistoryLine:
    posting: PointsPosting
    sentence: Phrase
    #: the parts of an order's earning, or the reason an operator typed
    details: list[Phrase] = field(default_factory=list)


def _rule_parts(
    reason: str,
    categories: Mapping[str, str],
    tiers: Mapping[str, str],
    rules: Mapping[str, Phrase] | None = None,
) -> list[Phrase]:
    """The rule ids after "): " in an order earning's reason, as labelled parts."""
    _, sep, listed = reason.partition("): ")
    if not sep:
        return []
    out: list[Phrase] = []
    for rule in (r.strip() for r in listed.split(",")):
        if not rule:
            continue
        kind, _, code = rule.partition(":")
        if rule == "base" or kind == "base":
            out.append((N_("Base points"), {}))
        elif kind == "category" and code:
            out.append(
                (N_("Category bonus: %(category)s"), {"category": categories.get(code, code)})
            )
        elif kind == "tier" and code:
            out.append((N_("Tier multiplier: %(tier)s"), {"tier": tiers.get(code, code)}))
        elif rules and rule in rules:
            out.append(rules[rule])
        else:
            out.append((N_("Campaign rule: %(rule)s"), {"rule": rule}))
    return out


def _rule_names(er: EarningRules) -> dict[str, Phrase]:
    """Rule id → how to say it: the bonuses by what they are, windows by the operator's name."""
    out: dict[str, Phrase] = {
        er.first_purchase.id: (N_("First purchase bonus"), {}),
        er.welcome.id: (N_("Welcome bonus"), {}),
        er.profile_completion.id: (N_("Bonus for completing the profile"), {}),
    }
    for w in er.windows:
        out[w.id] = (N_("Campaign rule: %(rule)s"), {"rule": w.name or w.id})
    return out


def _categories_in(rows: list[PointsPosting]) -> set[str]:
    codes: set[str] = set()
    for p in rows:
        _, sep, rules = (p.reason or "").partition("): ")
        if sep:
            codes |= {r.strip()[9:] for r in rules.split(",") if r.strip().startswith("category:")}
    return codes


def _sentence(p: PointsPosting, order: Order | None, store: str) -> Phrase:
    number = {"order": order.external_id} if order is not None else {}
    at = {**number, "store": store}
    if p.kind == "earn" and p.source_type == "order" and order is not None:
        if store:
            return N_("Earned on order %(order)s at %(store)s"), at
        return N_("Earned on online order %(order)s"), number
    if p.kind == "earn" and p.source_type == "order_return" and order is not None:
        return N_("Points payment of order %(order)s given back for a return"), number
    if p.kind == "redeem" and order is not None:
        if store:
            return N_("Paid with points on order %(order)s at %(store)s"), at
        return N_("Paid with points on online order %(order)s"), number
    if p.kind == "clawback" and order is not None:
        if p.reason.startswith(risk_earning.CANCEL_REASON):
            return N_("Pending points of order %(order)s cancelled by a risk review"), number
        return N_("Taken back after a return of order %(order)s"), number
    if p.kind == "earn" and p.source_type in SOURCE_TEXTS:
        return SOURCE_TEXTS[p.source_type], {}
    if p.source_type and p.source_type.startswith(ledger_domain.API_SOURCE_PREFIX):
        ref = f"{ledger_domain.shown_source(p.source_type)} {p.source_id or ''}".strip()
        if p.kind == "earn":
            return N_("Earned through the API (%(ref)s)"), {"ref": ref}
        if p.kind == "redeem":
            return N_("Redeemed through the API (%(ref)s)"), {"ref": ref}
    return KIND_TEXTS.get(p.kind, N_("Points change")), {}


def lines(
    session: Session, member_id: int, rows: list[PointsPosting], tier_names: Mapping[str, str]
) -> list[HistoryLine]:
    """One line per posting; three queries for a page (orders, stores, categories)."""
    sources = [
        p.source_id for p in rows if p.source_type in ("order", "order_return") and p.source_id
    ]
    by_source = orders.order_places(session, member_id, sources)
    stores = catalog.store_names(
        session, {o.store_code for o in by_source.values() if o.store_code}
    )
    categories = catalog.category_names(session, _categories_in(rows))
    rules = _rule_names(orders.earning_rules(session))
    out = []
    for p in rows:
        order = by_source.get(p.source_id or "")
        store = ""
        if order is not None and order.store_code:
            store = stores.get(order.store_code, order.store_code)
        details = _rule_parts(p.reason or "", categories, tier_names, rules) if order else []
        if not details and p.reason and p.kind in ("adjust", "earn") and order is None:
            details = [(N_("Reason: %(reason)s"), {"reason": p.reason})]
        out.append(HistoryLine(p, _sentence(p, order, store), details))
    return out
