"""What a row of each import kind means and how a batch of them is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import ProductIn, StoreIn
from patron.errors import PatronError
from patron.imports.parse import ParseError, parse_bool, parse_date, parse_datetime, parse_fen
from patron.imports.reader import CsvRow
from patron.imports.runner import Parsed, RowError, RowProblem
from patron.kit.crypto import FieldCipher
from patron.kit.ids import new_member_no
from patron.kit.phone import normalize_phone
from patron.members import domain as member_domain
from patron.members.models import ConsentEvent, Member, MemberConsent
from patron.members.schemas import MemberCreate
from patron.members.service import EMAIL_CTX, PHONE_CTX


def _validation_problem(exc: ValidationError) -> RowProblem:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "*"
    return RowProblem(loc, str(err.get("msg", "invalid")))


# ---- members ---------------------------------------------------------------------------------


@dataclass
class MemberRow:
    data: MemberCreate
    e164: str
    registered_at: datetime | None


class MemberImporter:
    """Columns: phone (required), channel, store_code, name, email, birthday, gender, city,
    region, preferred_channel, member_type, registered_at, sms, email_consent, push, wechat."""

    kind = "members"

    def __init__(
        self,
        cipher: FieldCipher,
        actor: Principal,
        *,
        tz: ZoneInfo,
        now: datetime,
        default_channel: str = "partner",
    ) -> None:
        self.cipher = cipher
        self.actor = actor
        self.tz = tz
        self.now = now
        self.default_channel = default_channel

    def parse(self, row: CsvRow) -> MemberRow:
        v = row.values
        if not v.get("phone"):
            raise RowProblem("phone", "missing")
        try:
            e164 = normalize_phone(v["phone"])
        except PatronError as exc:
            raise RowProblem("phone", exc.message) from None
        fields: dict[str, Any] = {
            "phone": e164,
            "channel": v.get("channel") or self.default_channel,
        }
        for name in ("store_code", "name", "email", "gender", "city", "region"):
            if v.get(name):
                fields[name] = v[name]
        for name in ("preferred_channel", "member_type"):
            if v.get(name):
                fields[name] = v[name].lower()
        if v.get("birthday"):
            try:
                fields["birthday"] = parse_date(v["birthday"])
            except ParseError as exc:
                raise RowProblem("birthday", str(exc)) from None
        consents = {}
        for column, channel in (
            ("sms", "sms"),
            ("email_consent", "email"),
            ("push", "push"),
            ("wechat", "wechat"),
        ):
            if v.get(column):
                try:
                    consents[channel] = parse_bool(v[column])
                except ParseError as exc:
                    raise RowProblem(column, str(exc)) from None
        fields["consents"] = consents
        try:
            data = MemberCreate.model_validate(fields)
        except ValidationError as exc:
            raise _validation_problem(exc) from None
        registered_at = None
        if v.get("registered_at"):
            try:
                registered_at = parse_datetime(v["registered_at"], self.tz)
            except ParseError as exc:
                raise RowProblem("registered_at", str(exc)) from None
            if registered_at > self.now:
                raise RowProblem("registered_at", "in the future")
        today = (registered_at or self.now).astimezone(self.tz).date()
        try:
            member_domain.validate_birthday(data.birthday, today)
        except PatronError as exc:
            raise RowProblem("birthday", exc.message) from None
        if data.channel in member_domain.STORE_CHANNELS and not data.store_code:
            raise RowProblem("store_code", f"required for channel {data.channel}")
        return MemberRow(data, e164, registered_at)

    def write_batch(self, session: Session, batch: list[Parsed[MemberRow]]) -> list[RowError]:
        errors: list[RowError] = []
        seen: dict[str, int] = {}
        accepted: list[tuple[Parsed[MemberRow], str]] = []
        for p in batch:
            index = self.cipher.blind_index(p.item.e164, PHONE_CTX)
            if index in seen:
                errors.append(RowError(p.row, "phone", f"same phone as row {seen[index]}"))
                continue
            seen[index] = p.row
            accepted.append((p, index))
        existing = dict(
            session.execute(
                select(Member.phone_index, Member.member_no).where(
                    Member.phone_index.in_([i for _, i in accepted])
                )
            ).all()
        )
        numbers = self._member_numbers(session, len(accepted))
        member_rows: list[dict[str, Any]] = []
        for p, index in accepted:
            if index in existing:
                errors.append(RowError(p.row, "phone", f"already a member: {existing[index]}"))
                continue
            d = p.item.data
            at = p.item.registered_at or self.now
            email = member_domain.normalize_email(d.email) if d.email else None
            member_rows.append(
                {
                    "member_no": numbers.pop(),
                    "phone_enc": self.cipher.encrypt(p.item.e164, PHONE_CTX),
                    "phone_index": index,
                    "email_enc": self.cipher.encrypt(email, EMAIL_CTX) if email else None,
                    "email_index": self.cipher.blind_index(email, EMAIL_CTX) if email else None,
                    "name": d.name,
                    "birthday": d.birthday,
                    "gender": d.gender,
                    "city": d.city,
                    "region": d.region,
                    "preferred_channel": d.preferred_channel,
                    "member_type": d.member_type,
                    "status": "active",
                    "registration_channel": d.channel,
                    "registration_store_code": d.store_code,
                    "referrer_staff_id": None,
                    "referrer_member_id": None,
                    "created_at": at,
                    "updated_at": at,
                    "_consents": d.consents.model_dump(exclude_none=True),
                }
            )
        if member_rows:
            consents = [r.pop("_consents") for r in member_rows]
            ids = session.scalars(
                insert(Member).returning(Member.id, sort_by_parameter_order=True), member_rows
            ).all()
            consent_rows = [
                {
                    "member_id": mid,
                    "channel": ch,
                    "granted": g,
                    "updated_at": r["created_at"],
                    "source": "import",
                }
                for mid, r, c in zip(ids, member_rows, consents, strict=True)
                for ch, g in c.items()
            ]
            if consent_rows:
                session.execute(insert(MemberConsent), consent_rows)
                session.execute(
                    insert(ConsentEvent),
                    [
                        {
                            "member_id": c["member_id"],
                            "channel": c["channel"],
                            "granted": c["granted"],
                            "at": c["updated_at"],
                            "source": "import",
                        }
                        for c in consent_rows
                    ],
                )
            audit.record(
                session,
                self.actor,
                "member.import",
                "import",
                f"members:{batch[0].row}-{batch[-1].row}",
                None,
                {
                    "imported": len(member_rows),
                    "first_row": batch[0].row,
                    "last_row": batch[-1].row,
                },
                at=self.now,
            )
        return errors

    @staticmethod
    def _member_numbers(session: Session, n: int) -> list[str]:
        wanted: set[str] = set()
        while len(wanted) < n:
            candidates = {new_member_no() for _ in range(n - len(wanted))}
            taken = set(
                session.scalars(select(Member.member_no).where(Member.member_no.in_(candidates)))
            )
            wanted |= candidates - taken
        return sorted(wanted)


# ---- stores and products ---------------------------------------------------------------------


class StoreImporter:
    """Columns: code, name, region, city, kind."""

    kind = "stores"

    def __init__(self, actor: Principal, *, now: datetime) -> None:
        self.actor = actor
        self.now = now

    def parse(self, row: CsvRow) -> StoreIn:
        v = row.values
        try:
            return StoreIn.model_validate(
                {k: v[k] for k in ("code", "name", "region", "city", "kind") if v.get(k)}
            )
        except ValidationError as exc:
            raise _validation_problem(exc) from None

    def write_batch(self, session: Session, batch: list[Parsed[StoreIn]]) -> list[RowError]:
        for p in batch:
            catalog.upsert_store(session, self.actor, p.item, now=self.now)
        return []


class ProductImporter:
    """Columns: sku, name, category_code, price (CNY, e.g. 199.00), member_price_<tier>."""

    kind = "products"

    def __init__(self, actor: Principal, *, now: datetime) -> None:
        self.actor = actor
        self.now = now

    def parse(self, row: CsvRow) -> ProductIn:
        v = row.values
        fields: dict[str, Any] = {k: v[k] for k in ("sku", "name", "category_code") if v.get(k)}
        member_prices = {}
        try:
            if v.get("price"):
                fields["price_fen"] = parse_fen(v["price"])
            for col, text in v.items():
                if col.startswith("member_price_") and text:
                    member_prices[col.removeprefix("member_price_")] = parse_fen(text)
        except ParseError as exc:
            raise RowProblem("price", str(exc)) from None
        fields["member_prices"] = member_prices
        try:
            return ProductIn.model_validate(fields)
        except ValidationError as exc:
            raise _validation_problem(exc) from None

    def write_batch(self, session: Session, batch: list[Parsed[ProductIn]]) -> list[RowError]:
        errors: list[RowError] = []
        for p in batch:
            try:
                with session.begin_nested():
                    catalog.upsert_product(session, self.actor, p.item, now=self.now)
            except PatronError as exc:
                errors.append(RowError(p.row, str(exc.details.get("field", "*")), exc.message))
        return errors


# ---- orders ----------------------------------------------------------------------------------


@dataclass
class OrderRow:
    body: dict[str, Any]
    phone: str | None


class OrderImporter:
    """One row per order line, the lines of an order consecutive. Columns: order_id, member_no
    or phone, channel, store_code, ordered_at, sku, quantity, unit_price, discount,
    payment_method. Historical orders earn by the rules (time windows evaluated at their time),
    or nothing with ``earn=False``."""

    kind = "orders"
    group_by = "order_id"

    def __init__(
        self,
        cipher: FieldCipher,
        actor: Principal,
        *,
        tz: ZoneInfo,
        now: datetime,
        source: str = "import",
        earn: bool = True,
        bulk: bool = True,
    ) -> None:
        self.cipher = cipher
        self.actor = actor
        self.tz = tz
        self.now = now
        self.source = source
        self.earn = earn
        #: set-based writing (patron.imports.bulk_orders); False records order by order
        self.bulk = bulk
        self._batches = 0
        self._analyze_at = 1

    def parse(self, row: CsvRow) -> OrderRow:
        from patron.imports.runner import GroupedRow

        lines_in = row.lines if isinstance(row, GroupedRow) else [row]
        first = lines_in[0].values
        if not first.get("order_id"):
            raise RowProblem("order_id", "missing")
        if not first.get("member_no") and not first.get("phone"):
            raise RowProblem("member_no", "give member_no or phone")
        try:
            ordered_at = parse_datetime(first.get("ordered_at", ""), self.tz)
        except ParseError as exc:
            raise RowProblem("ordered_at", str(exc)) from None
        lines = []
        total = 0
        for n, line in enumerate(lines_in, start=1):
            v = line.values
            try:
                unit = parse_fen(v.get("unit_price", ""))
                discount = parse_fen(v["discount"]) if v.get("discount") else 0
            except ParseError as exc:
                raise RowProblem("unit_price", f"line {n}: {exc}") from None
            try:
                quantity = int(v.get("quantity", ""))
            except ValueError:
                raise RowProblem("quantity", f"line {n}: not a whole number") from None
            if quantity < 1:
                raise RowProblem("quantity", f"line {n}: must be at least 1")
            lines.append(
                {
                    "line_no": n,
                    "sku": v.get("sku", ""),
                    "quantity": quantity,
                    "unit_price_fen": unit,
                    "discount_fen": discount,
                }
            )
            total += unit * quantity - discount
        body = {
            "source": self.source,
            "external_id": first["order_id"],
            "member_no": first.get("member_no") or "0000000000",
            "channel": first.get("channel") or "store",
            "store_code": first.get("store_code") or None,
            "ordered_at": ordered_at,
            "lines": lines,
            "payments": [
                {"method": first.get("payment_method") or "cash", "amount_fen": max(total, 0)}
            ],
            "earn": self.earn,
        }
        return OrderRow(body, None if first.get("member_no") else first["phone"])

    def write_batch(self, session: Session, batch: list[Parsed[OrderRow]]) -> list[RowError]:
        from patron.imports import bulk_orders
        from patron.members import service as members
        from patron.orders import service as orders
        from patron.orders.schemas import OrderIn

        errors: list[RowError] = []
        phones = {p.item.phone for p in batch if p.item.phone is not None}
        numbers = {str(p.item.body["member_no"]) for p in batch if p.item.phone is None}
        by_phone, members_by_no, bad_phone = members.find_many(
            session, self.cipher, phones=phones, numbers=numbers
        )
        members_by_no.update({m.member_no: m for m in by_phone.values()})
        items: list[bulk_orders.Item] = []
        for p in batch:
            body = dict(p.item.body)
            if p.item.phone is not None:
                if p.item.phone in bad_phone:
                    errors.append(RowError(p.row, "phone", bad_phone[p.item.phone]))
                    continue
                if p.item.phone not in by_phone:
                    errors.append(RowError(p.row, "phone", "no member with this phone"))
                    continue
                body["member_no"] = by_phone[p.item.phone].member_no
            try:
                items.append(bulk_orders.Item(p.row, OrderIn.model_validate(body)))
            except ValidationError as exc:
                problem = _validation_problem(exc)
                errors.append(RowError(p.row, problem.field, problem.reason))
        self._batches += 1
        if self.bulk and self._batches == self._analyze_at:
            bulk_orders.refresh_statistics(session)
            self._analyze_at *= 4  # after batches 1, 4, 16, 64, …: as the tables grow
        outcome = (
            bulk_orders.write(session, self.actor, items, members_by_no, now=self.now, tz=self.tz)
            if self.bulk
            else bulk_orders.BulkOutcome([], items)
        )
        errors.extend(RowError(row, f, reason) for row, f, reason in outcome.errors)
        for item in outcome.per_order:
            try:
                with session.begin_nested():
                    orders.ingest_order(
                        session,
                        self.actor,
                        item.data,
                        now=self.now,
                        tz=self.tz,
                        dated_at_order=True,
                    )
            except PatronError as exc:
                errors.append(RowError(item.row, str(exc.details.get("field", "*")), exc.message))
        errors.sort(key=lambda e: e.row)
        return errors
