"""Messaging API: templates, campaign sends, member addresses, delivery status callbacks,
dead letters and the delivery report."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.errors import Invalid, Unauthorized
from patron.kit.timeutil import business_tz
from patron.members import service as members
from patron.members.models import Member
from patron.messaging import domain, service
from patron.messaging.models import Message, MessageTemplate
from patron.program import service as program
from patron.segments import service as segments
from patron.web.deps import ClockDep, Public, SessionDep, SettingsDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router
from patron.webhooks.service import verify

router = api_router("/api/v1", tags=["messaging"])
Reader = Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))]
Writer = Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))]
MemberWriter = Annotated[Principal, Depends(require(perm.MEMBERS_WRITE))]
Configurer = Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))]
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
MemberNo = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,16}$")]


class TemplateText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(default="", max_length=200)
    body: str = Field(min_length=1, max_length=2000)


class MessageTemplateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Welcome",
                    "texts": {
                        "zh-CN": {"subject": "欢迎", "body": "{{name}}，欢迎加入！"},
                        "en": {"subject": "Welcome", "body": "Welcome, {{name}}!"},
                    },
                    "provider_codes": {"sms": "SMS_123456789"},
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=100)
    texts: dict[Literal["zh-CN", "en"], TemplateText] = Field(min_length=1)
    provider_codes: dict[Literal["sms", "email", "push", "wechat"], str] = Field(
        default_factory=dict
    )


class MessageTemplateOut(BaseModel):
    code: str
    name: str
    texts: dict[str, dict[str, str]]
    provider_codes: dict[str, str]
    variables: list[str]
    version: int
    updated_at: datetime


def _tpl(t: MessageTemplate) -> MessageTemplateOut:
    return MessageTemplateOut(
        code=t.code,
        name=t.name,
        texts=t.texts,
        provider_codes=t.provider_codes,
        variables=t.variables,
        version=t.version,
        updated_at=t.updated_at,
    )


@router.get("/message-templates", summary="Message templates")
def list_templates(principal: Reader, session: SessionDep) -> list[MessageTemplateOut]:
    return [_tpl(t) for t in service.list_templates(session)]


@router.put(
    "/message-templates/{code}",
    summary="Create or change a message template (unknown variables are refused)",
)
def put_template(
    code: Code, body: MessageTemplateIn, principal: Writer, session: SessionDep, clock: ClockDep
) -> MessageTemplateOut:
    tpl = service.put_template(
        session,
        principal,
        code,
        name=body.name,
        texts={k: v.model_dump() for k, v in body.texts.items()},
        provider_codes={str(k): v for k, v in body.provider_codes.items()},
        now=clock.now(),
    )
    return _tpl(tpl)


class CampaignSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    template: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    segment: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")


class QueuedOut(BaseModel):
    queued: int


@router.post(
    "/messaging/campaign-sends",
    summary="Queue a campaign message to a saved segment's members (once per member)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(404),
)
def campaign_send(
    body: CampaignSendIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> QueuedOut:
    seg = segments.get(session, body.segment)
    now = clock.now()
    service.get_template(session, body.template)
    ids = segments.member_ids(
        session, segments.parse(seg.rule), now=now, tz=business_tz(settings.business_timezone)
    )
    queued = service.send_campaign(
        session,
        principal,
        campaign_code=body.campaign,
        template_code=body.template,
        member_ids=ids,
        now=now,
    )
    return QueuedOut(queued=queued)


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(min_length=1, max_length=200)


@router.put(
    "/members/{member_no}/addresses/{channel}",
    summary="Set where a member is reached on WeChat (openid) or app push (device id)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
def put_address(
    member_no: MemberNo,
    channel: Literal["wechat", "push"],
    body: AddressIn,
    principal: MemberWriter,
    session: SessionDep,
    clock: ClockDep,
) -> None:
    members.get_member(session, member_no)
    service.set_address(session, member_no, channel, body.address, now=clock.now())


class StatusReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_id: str = Field(min_length=1, max_length=100)
    status: Literal["delivered", "failed", "opened"]
    error: str = Field(default="", max_length=200)


_REPORTS = TypeAdapter(list[StatusReport])


class CallbackOut(BaseModel):
    updated: int


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/messaging/callbacks/{channel}",
    summary="Delivery status reports from a provider, signed with the callback secret",
    dependencies=[Depends(Public())],
    responses=errors(401),
)
def callback(
    channel: Literal["sms", "email", "push", "wechat"],
    raw: Annotated[bytes, Depends(_raw_body)],
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> CallbackOut:
    secret = settings.messaging_callback_secret
    header = request.headers.get("X-Patron-Signature", "")
    if secret is None or not verify(secret.get_secret_value(), header, raw, int(time.time())):
        raise Unauthorized(
            "callback_signature_invalid",
            "The X-Patron-Signature header does not match the body and the callback secret.",
        )
    try:
        reports = _REPORTS.validate_json(raw)
    except ValidationError:
        raise Invalid(
            "callback_invalid",
            "The body must be a list of {provider_id, status, error} reports.",
        ) from None
    updated = service.apply_status(
        session,
        channel,
        [(r.provider_id, r.status, r.error) for r in reports],
        now=clock.now(),
    )
    return CallbackOut(updated=updated)


class MessageOut(BaseModel):
    id: int
    member_no: str
    template: str
    source_kind: str
    source_code: str
    status: str
    channel: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def _msg(m: Message, member_no: str) -> MessageOut:
    return MessageOut(
        id=m.id,
        member_no=member_no,
        template=m.template_code,
        source_kind=m.source_kind,
        source_code=m.source_code,
        status=m.status,
        channel=m.channel,
        attempts=m.attempts,
        last_error=m.last_error,
        created_at=m.created_at,
        finished_at=m.finished_at,
    )


@router.get("/messaging/dead-letters", summary="Messages that could not be sent")
def dead_letters(
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[MessageOut]:
    rows, _ = service.dead_letters(session, limit=limit, offset=offset)
    return [_msg(m, no) for m, no in rows]


@router.post(
    "/messaging/messages/{message_id}/retry",
    summary="Queue a dead letter again",
    responses=errors(404, 409),
)
def retry(
    message_id: Annotated[int, Path(ge=1, le=2**62)],
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
) -> MessageOut:
    m = service.retry(session, principal, message_id, now=clock.now())
    member = session.get(Member, m.member_id)
    return _msg(m, member.member_no if member else "")


class ReportOut(BaseModel):
    kind: str
    code: str
    queued: int
    sent: int
    delivered: int
    failed: int
    opened: int
    clicked: int
    unsubscribed: int
    suppressed: int
    dropped: int
    dead: int
    conversions: int


@router.get(
    "/messaging/report",
    summary="Delivery report per journey, campaign, console batch and survey round",
)
def report(
    principal: Reader,
    session: SessionDep,
    kind: Annotated[Literal["journey", "campaign", "batch", "survey"] | None, Query()] = None,
    code: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,40}$")] = None,
) -> list[ReportOut]:
    return [ReportOut(**vars(r)) for r in service.report(session, kind=kind, code=code)]


@router.get("/messaging/settings", summary="Quiet hours, frequency caps, fallback, rates")
def get_settings(principal: Reader, session: SessionDep) -> domain.MessagingSettings:
    return service.get_settings(session)


@router.put("/messaging/settings", summary="Change the messaging settings")
def put_settings(
    body: domain.MessagingSettings, principal: Configurer, session: SessionDep, clock: ClockDep
) -> domain.MessagingSettings:
    program.put_section(session, principal, domain.SECTION, body, now=clock.now())
    return body
