"""Shared by the portal service tests: a cipher, a member, a ledger context."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from patron.auth.principal import Principal
from patron.kit.crypto import FieldCipher
from patron.ledger.service import Ctx
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import MemberCreate
from patron.orders.service import make_ctx

SH = ZoneInfo("Asia/Shanghai")
CIPHER = FieldCipher(b"d" * 32, b"i" * 32)
KEY = b"t" * 32
ACTOR = Principal.system("tests")


def new_member(session, now: datetime, phone: str = "13900000001", **fields) -> Member:
    data = MemberCreate(phone=phone, channel="web", **fields)
    return members.register(session, ACTOR, CIPHER, data, now=now, tz=SH)


def ctx(session, now: datetime) -> Ctx:
    return make_ctx(session, ACTOR, now, SH)
