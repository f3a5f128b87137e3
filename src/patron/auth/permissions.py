"""Permissions and what each staff role and API key scope grants.

Endpoints declare one permission; roles are fixed bundles of them.
"""

from __future__ import annotations

from typing import Final, Literal

MEMBERS_READ: Final = "members:read"
MEMBERS_WRITE: Final = "members:write"
MEMBERS_PII: Final = "members:pii"  # see phone/email unmasked
POINTS_READ: Final = "points:read"
POINTS_WRITE: Final = "points:write"  # spend, cancel a spend, refunds (POS, shop)
# Free-form earning with a source the caller names: it creates points out of nothing, like an
# adjustment, so only admins have it and an API key only when granted it explicitly.
POINTS_GRANT: Final = "points:grant"
POINTS_ADJUST: Final = "points:adjust"  # manual adjustments with a reason
POINTS_APPROVE: Final = "points:approve"  # second approver for large adjustments
TIERS_READ: Final = "tiers:read"
PROGRAM_CONFIGURE: Final = "program:configure"  # tier ladder, earning rules, expiry policy
ORDERS_READ: Final = "orders:read"
ORDERS_WRITE: Final = "orders:write"
CATALOG_READ: Final = "catalog:read"
CATALOG_WRITE: Final = "catalog:write"
STAFF_ADMIN: Final = "staff:admin"  # staff users and API keys
AUDIT_READ: Final = "audit:read"
EVENTS_READ: Final = "events:read"  # the event log (GET /api/v1/events), for an ERP to catch up
MALL_READ: Final = "mall:read"  # gifts, stock, redemption orders
MALL_REDEEM: Final = "mall:redeem"  # redeem for a member, verify codes, ship, cancel
MALL_MANAGE: Final = "mall:manage"  # gifts, warehouses and stock, flash sales, lotteries
COUPONS_READ: Final = "coupons:read"  # wallets, coupons, templates
COUPONS_ISSUE: Final = "coupons:issue"  # issue to members, exchange for points, void
CAMPAIGNS_READ: Final = "campaigns:read"  # campaigns, actions, results
CAMPAIGNS_WRITE: Final = "campaigns:write"  # create, change, schedule campaigns and actions
# Report a member's action (a review, a share) so it earns: an integration's scope
CAMPAIGNS_ACTIONS: Final = "campaigns:actions"
# UGC contests: create and change them, moderate entries, choose (and so reward) winners
CONTESTS_MANAGE: Final = "contests:manage"
# Send a member's contest entry (a mini-program): text and a photo, moderated before shown
CONTESTS_ENTER: Final = "contests:enter"
SEGMENTS_READ: Final = "segments:read"  # saved segments, previews and counts
SEGMENTS_WRITE: Final = "segments:write"  # save and change segments
SERVICE_READ: Final = "service:read"  # tickets, the knowledge base, NPS
SERVICE_WRITE: Final = "service:write"  # open, answer, assign and resolve tickets; articles
RISK_REVIEW: Final = "risk:review"  # the manual review queue of risky redemptions

ALL: Final = frozenset(
    {
        MEMBERS_READ,
        MEMBERS_WRITE,
        MEMBERS_PII,
        POINTS_READ,
        POINTS_WRITE,
        POINTS_GRANT,
        POINTS_ADJUST,
        POINTS_APPROVE,
        TIERS_READ,
        PROGRAM_CONFIGURE,
        ORDERS_READ,
        ORDERS_WRITE,
        CATALOG_READ,
        CATALOG_WRITE,
        STAFF_ADMIN,
        AUDIT_READ,
        EVENTS_READ,
        MALL_READ,
        MALL_REDEEM,
        MALL_MANAGE,
        COUPONS_READ,
        COUPONS_ISSUE,
        CAMPAIGNS_READ,
        CAMPAIGNS_WRITE,
        CAMPAIGNS_ACTIONS,
        CONTESTS_MANAGE,
        CONTESTS_ENTER,
        SEGMENTS_READ,
        SEGMENTS_WRITE,
        SERVICE_READ,
        SERVICE_WRITE,
        RISK_REVIEW,
    }
)

Role = Literal["admin", "operator", "clerk", "analyst"]
ROLES: Final[tuple[Role, ...]] = ("admin", "operator", "clerk", "analyst")

ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "admin": ALL,
    "operator": frozenset(
        {
            MEMBERS_READ,
            MEMBERS_WRITE,
            POINTS_READ,
            POINTS_WRITE,
            POINTS_ADJUST,
            TIERS_READ,
            PROGRAM_CONFIGURE,
            ORDERS_READ,
            ORDERS_WRITE,
            CATALOG_READ,
            CATALOG_WRITE,
            MALL_READ,
            MALL_REDEEM,
            MALL_MANAGE,
            COUPONS_READ,
            COUPONS_ISSUE,
            CAMPAIGNS_READ,
            CAMPAIGNS_WRITE,
            CAMPAIGNS_ACTIONS,
            CONTESTS_MANAGE,
            SEGMENTS_READ,
            SEGMENTS_WRITE,
            SERVICE_READ,
            SERVICE_WRITE,
            RISK_REVIEW,
        }
    ),
    "clerk": frozenset(
        {
            MEMBERS_READ,
            MEMBERS_WRITE,
            POINTS_READ,
            POINTS_WRITE,
            TIERS_READ,
            ORDERS_READ,
            ORDERS_WRITE,
            CATALOG_READ,
            MALL_READ,
            MALL_REDEEM,
            COUPONS_READ,
            SERVICE_READ,
            SERVICE_WRITE,
        }
    ),
    "analyst": frozenset(
        {
            MEMBERS_READ,
            POINTS_READ,
            TIERS_READ,
            ORDERS_READ,
            CATALOG_READ,
            AUDIT_READ,
            MALL_READ,
            COUPONS_READ,
            CAMPAIGNS_READ,
            SEGMENTS_READ,
            SERVICE_READ,
        }
    ),
}

# What an integration may be granted: never staff administration, approvals or configuration.
API_KEY_SCOPES: Final = frozenset(
    {
        MEMBERS_READ,
        MEMBERS_WRITE,
        MEMBERS_PII,
        POINTS_READ,
        POINTS_WRITE,
        POINTS_GRANT,
        TIERS_READ,
        ORDERS_READ,
        ORDERS_WRITE,
        CATALOG_READ,
        CATALOG_WRITE,
        EVENTS_READ,
        MALL_READ,
        MALL_REDEEM,
        MALL_MANAGE,
        COUPONS_READ,
        COUPONS_ISSUE,
        CAMPAIGNS_READ,
        CAMPAIGNS_ACTIONS,
        CONTESTS_MANAGE,
        CONTESTS_ENTER,
        SEGMENTS_READ,
        SERVICE_READ,
        SERVICE_WRITE,
    }
)
