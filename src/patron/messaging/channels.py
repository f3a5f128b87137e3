"""Channels: one interface, one adapter per provider. A channel sends a batch and answers, per
message, the provider's id or a ``ChannelError`` saying whether another attempt may succeed.
Adapters never touch the database; the delivery worker calls them outside any transaction.

- email: SMTP with the standard library (STARTTLS and login when configured);
- sms: Aliyun SMS ``SendSms`` (RPC signature version 1.0, HMAC-SHA1) or the demo channel;
- wechat: subscribe messages (``cgi-bin/token`` then ``cgi-bin/message/subscribe/send``);
- push: a signed POST to the app's push gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from patron.config import Settings
from patron.messaging.domain import email_html
from patron.otp.channel import DemoSmsChannel
from patron.webhooks.service import sign

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    message_id: int
    member_no: str
    address: str  # email address, E.164 phone, WeChat openid, or push address
    subject: str
    body: str
    locale: str
    provider_code: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    unsubscribe_url: str | None = None
    open_url: str | None = None  # emails: the opening image (when opens are tracked)


class ChannelError(Exception):
    """A send that failed: ``kind`` is an error class (stored, shown in the dead-letter list);
    ``retryable`` False means another attempt cannot succeed (bad address, refused)."""

    def __init__(self, kind: str, *, retryable: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.retryable = retryable


Result = str | ChannelError


class Channel(Protocol):
    name: str

    def send_batch(self, messages: Sequence[Outgoing]) -> list[Result]:
        """One result per message, in order; never raises for one message's failure."""


def _each(messages: Sequence[Outgoing], one: Callable[[Outgoing], str]) -> list[Result]:
    out: list[Result] = []
    for m in messages:
        try:
            out.append(one(m))
        except ChannelError as exc:
            out.append(exc)
    return out


# ---- email -----------------------------------------------------------------------------------


class SmtpEmailChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        connections: int = 4,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.connections = max(1, connections)
        self.starttls, self.username, self.password = starttls, username, password

    def send_batch(self, messages: Sequence[Outgoing]) -> list[Result]:
        """Up to ``connections`` SMTP sessions in parallel, each sending its share in order:
        a message costs several round trips, so one session waits on the server most of
        the time."""
        if len(messages) < 2 * self.connections:
            return self._session(messages)
        shares = [list(messages[i :: self.connections]) for i in range(self.connections)]
        with ThreadPoolExecutor(self.connections, thread_name_prefix="smtp") as pool:
            done = list(pool.map(self._session, shares))
        out: list[Result] = [ChannelError("smtp_error", retryable=True)] * len(messages)
        for i, results in enumerate(done):
            for j, res in enumerate(results):
                out[i + j * self.connections] = res
        return out

    def _session(self, messages: Sequence[Outgoing]) -> list[Result]:
        if not messages:
            return []
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)
        except OSError:
            return [ChannelError("connect_error", retryable=True) for _ in messages]
        try:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            return _each(messages, lambda m: self._one(smtp, m))
        except (smtplib.SMTPException, OSError):
            return [ChannelError("smtp_session", retryable=True) for _ in messages]
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _one(self, smtp: smtplib.SMTP, m: Outgoing) -> str:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = m.address
        msg["Subject"] = m.subject
        msg_id = make_msgid(idstring=f"patron{m.message_id}")
        msg["Message-ID"] = msg_id
        msg["X-Patron-Message"] = str(m.message_id)
        if m.unsubscribe_url:
            msg["List-Unsubscribe"] = f"<{m.unsubscribe_url}>"
        msg.set_content(m.body)
        if m.open_url:
            msg.add_alternative(email_html(m.body, m.open_url), subtype="html")
        try:
            smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused:
            raise ChannelError("recipient_refused", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(f"smtp_{exc.smtp_code}", retryable=exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError):
            raise ChannelError("smtp_error", retryable=True) from None
        return msg_id.strip("<>")


# ---- SMS: Aliyun -----------------------------------------------------------------------------


def aliyun_percent(value: str) -> str:
    """Aliyun's POP encoding: RFC 3986 (``~`` kept, space as %20, ``*`` as %2A)."""
    return quote(value, safe="~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    canonical = "&".join(f"{aliyun_percent(k)}={aliyun_percent(params[k])}" for k in sorted(params))
    to_sign = f"{method}&{aliyun_percent('/')}&{aliyun_percent(canonical)}"
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


# Aliyun answers these codes for a send that will never succeed as it is.
_ALIYUN_PERMANENT = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_PARAMETERS",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.DENY_IP_RANGE",
        "InvalidAccessKeyId.NotFound",
        "SignatureDoesNotMatch",
    }
)


class AliyunSmsChannel:
    """``SendSms`` of Aliyun SMS (dysmsapi, version 2017-05-25), one phone per request."""

    name = "sms"

    def __init__(
        self,
        endpoint: str,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoint, self.key_id, self.secret = endpoint, access_key_id, access_key_secret
        self.sign_name = sign_name
        self.client = client or httpx.Client(timeout=TIMEOUT_SECONDS)
        self.clock = clock

    def request_params(self, m: Outgoing) -> dict[str, str]:
        phone = m.address[3:] if m.address.startswith("+86") else m.address.lstrip("+")
        params = {
            "AccessKeyId": self.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": str(m.message_id),
            "PhoneNumbers": phone,
            "RegionId": "cn-hangzhou",
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": m.provider_code or "",
            "TemplateParam": json.dumps(m.params, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature(params, self.secret)
        return params

    def send_batch(self, messages: Sequence[Outgoing]) -> list[Result]:
        return _each(messages, self._one)

    def _one(self, m: Outgoing) -> str:
        if not m.provider_code:
            raise ChannelError("no_provider_template", retryable=False)
        try:
            resp = self.client.get(self.endpoint, params=self.request_params(m))
        except httpx.TimeoutException:
            raise ChannelError("timeout", retryable=True) from None
        except httpx.HTTPError:
            raise ChannelError("connect_error", retryable=True) from None
        try:
            data: dict[str, Any] = resp.json()
        except ValueError:
            raise ChannelError(f"http_{resp.status_code}", retryable=True) from None
        code = str(data.get("Code", ""))
        if code == "OK":
            return str(data.get("BizId", ""))
        kind = f"aliyun:{code}"[:100] if code else f"http_{resp.status_code}"
        raise ChannelError(kind, retryable=code not in _ALIYUN_PERMANENT)


class DemoSms:
    """The demo SMS channel (never in production): the text goes to the log and the portal's
    demo page."""

    name = "sms"

    def __init__(self, demo: DemoSmsChannel, clock: Callable[[], datetime]) -> None:
        self.demo, self.clock = demo, clock

    def send_batch(self, messages: Sequence[Outgoing]) -> list[Result]:
        out: list[Result] = []
        for m in messages:
            self.demo.send(m.address, m.body, now=self.clock())
            out.append(f"demo-{m.message_id}")
        return out


# ---- WeChat subscribe messages ----------------------------------------------------------------

_WECHAT_TOKEN_EXPIRED = frozenset({40001, 40014, 42001})
_WECHAT_PERMANENT = frozenset({40003, 40037, 43101, 47003})


class WeChatChannel:
    """Subscribe messages through the official API. The access token is fetched with the app
    id and secret and kept until shortly before it expires (or the API says it expired)."""

    name = "wechat"

    def __init__(
        self, api_base: str, app_id: str, app_secret: str, *, client: httpx.Client | None = None
    ) -> None:
        self.base = api_base.rstrip("/")
        self.app_id, self.app_secret = app_id, app_secret
        self.client = client or httpx.Client(timeout=TIMEOUT_SECONDS)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _access_token(self, *, fresh: bool = False) -> str:
        with self._lock:
            if not fresh and self._token and self._token[1] > time.monotonic():
                return self._token[0]
            try:
                resp = self.client.get(
                    f"{self.base}/cgi-bin/token",
                    params={
                        "grant_type": "client_credential",
                        "appid": self.app_id,
                        "secret": self.app_secret,
                    },
                )
                data = resp.json()
            except (httpx.HTTPError, ValueError):
                raise ChannelError("wechat_token_unavailable", retryable=True) from None
            token = data.get("access_token")
            if not token:
                raise ChannelError(f"wechat:{data.get('errcode', 'token')}", retryable=True)
            life = max(int(data.get("expires_in", 7200)) - 300, 60)
            self._token = (str(token), time.monotonic() + life)
            return str(token)

    def send_batch(self, messages: Sequence[Outgoing]) -> list[Result]:
        return _each(messages, self._one)

    def _one(self, m: Outgoing) -> str:
        if not m.provider_code:
            raise ChannelError("no_provider_template", retryable=False)
        body = {
            "touser": m.address,
            "template_id": m.provider_code,
            "lang": "zh_CN" if m.locale == "zh-CN" else "en_US",
            "data": {k: {"value": v} for k, v in m.params.items()},
        }
        for fresh in (False, True):
            token = self._access_token(fresh=fresh)
            try:
                resp = self.client.post(
                    f"{self.base}/cgi-bin/message/subscribe/send",
                    params={"access_token": token},
                    content=json.dumps(body, ensure_ascii=False).encode(),
                    headers={"Content-Type": "application/json"},
                )
                data = resp.json()
            except httpx.HTTPError:
                raise ChannelError("connect_error", retryable=True) from None
            except ValueError:
                raise ChannelError(f"http_{resp.status_code}", retryable=True) from None
            code = int(data.get("errcode", 0))
            if code == 0:
                return str(data.get("msgid", ""))
            if code in _WECHAT_TOKEN_EXPIRED and not fresh:
                continue
            raise ChannelError(f"wechat:{code}", retryable=code not in _WECHAT_PERMANENT)
        raise ChannelError("wechat_token_rejected", retryable=True)  # pragma: no cover


# ---- app push through a webhook ---------------------------------------------------------------


class WebhookPushChannel:
    """POSTs ``{"message_id", "member_no", "address", "title", "body"}`` to the app's push
    gateway, signed like Patron's webhooks (``X-Patron-Signature``)."""

    name = "push"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.url, self.secret = url, secret
        self.client = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
        self.clock = clock

    def send_batch(self, messages: Sequence[Outgoing]) -> list[Result]:
        return _each(messages, self._one)

    def _one(self, m: Outgoing) -> str:
        payload = {
            "message_id": m.message_id,
            "member_no": m.member_no,
            "address": m.address,
            "title": m.subject,
            "body": m.body,
        }
        raw = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        ts = int(self.clock().timestamp())
        try:
            resp = self.client.post(
                self.url,
                content=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-Patron-Signature": sign(self.secret, ts, raw),
                },
            )
        except httpx.TimeoutException:
            raise ChannelError("timeout", retryable=True) from None
        except httpx.HTTPError:
            raise ChannelError("connect_error", retryable=True) from None
        if 200 <= resp.status_code < 300:
            try:
                return str(resp.json().get("id", m.message_id))
            except (ValueError, AttributeError):
                return str(m.message_id)
        retry = resp.status_code >= 500 or resp.status_code == 429
        raise ChannelError(f"http_{resp.status_code}", retryable=retry)


# ---- what a deployment has -------------------------------------------------------------------


def from_settings(
    settings: Settings, *, demo_sms: DemoSmsChannel | None = None
) -> dict[str, Channel]:
    """The channels the settings configure (a channel without settings is not available)."""
    out: dict[str, Channel] = {}
    if settings.smtp_host:
        out["email"] = SmtpEmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        )
    if (
        settings.sms_provider == "aliyun"
        and settings.aliyun_access_key_id
        and settings.aliyun_access_key_secret
    ):
        out["sms"] = AliyunSmsChannel(
            settings.aliyun_sms_endpoint,
            settings.aliyun_access_key_id,
            settings.aliyun_access_key_secret.get_secret_value(),
            settings.aliyun_sms_sign_name,
        )
    elif settings.sms_provider == "demo" and settings.env != "production":
        out["sms"] = DemoSms(demo_sms or DemoSmsChannel(), lambda: datetime.now(UTC))
    if settings.wechat_app_id and settings.wechat_app_secret:
        out["wechat"] = WeChatChannel(
            settings.wechat_api_base,
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
        )
    if settings.push_webhook_url and settings.push_webhook_secret:
        out["push"] = WebhookPushChannel(
            settings.push_webhook_url, settings.push_webhook_secret.get_secret_value()
        )
    return out
