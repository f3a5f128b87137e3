"""Provider adapters against local fake HTTP servers that check what a real provider checks:
Aliyun's request signature, WeChat's access token, Patron's push signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from patron.messaging.channels import (
    AliyunSmsChannel,
    ChannelError,
    Outgoing,
    WebhookPushChannel,
    WeChatChannel,
    aliyun_signature,
)
from patron.webhooks.service import verify

Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, Any]]]


@pytest.fixture
def fake_server() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            def _go(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, data = handle(self.command, self.path, dict(self.headers), body)
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _go

            def log_message(self, *args: Any) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _msg(**kw: Any) -> Outgoing:
    base = {
        "message_id": 7,
        "member_no": "M1",
        "address": "+8613900000001",
        "subject": "Hi",
        "body": "Hello",
        "locale": "zh-CN",
        "provider_code": "SMS_1",
        "params": {"name": "王"},
    }
    return Outgoing(**{**base, **kw})


def test_aliyun_signature_matches_the_documented_example():
    # The worked example of Aliyun's signature documentation (SendSms, key "testSecret").
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_signature(params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def _server_side_signature(query: dict[str, str], secret: str) -> str:
    """What the provider computes, written from its documentation independently of the client."""

    def enc(v: str) -> str:
        return quote(v, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    canon = "&".join(f"{enc(k)}={enc(query[k])}" for k in sorted(query))
    to_sign = "GET&%2F&" + enc(canon)
    return base64.b64encode(
        hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()


def test_aliyun_sms_sends_a_signed_request_and_reads_the_answer(fake_server):
    seen: list[dict[str, str]] = []

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
        sig = query.pop("Signature")
        if sig != _server_side_signature(query, "sekrit"):
            return 400, {"Code": "SignatureDoesNotMatch"}
        seen.append(query)
        if query["PhoneNumbers"] == "13900000009":
            return 200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit"}
        if query["PhoneNumbers"] == "13900000008":
            return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "bad"}
        return 200, {"Code": "OK", "BizId": "900619746936498440^0", "RequestId": "r"}

    url = fake_server(handle)
    ch = AliyunSmsChannel(url + "/", "key-id", "sekrit", "Patron")
    ok, throttled, bad = ch.send_batch(
        [
            _msg(),
            _msg(message_id=8, address="+8613900000009"),
            _msg(message_id=9, address="+8613900000008"),
        ]
    )
    assert ok == "900619746936498440^0"
    assert isinstance(throttled, ChannelError) and throttled.retryable
    assert isinstance(bad, ChannelError) and not bad.retryable
    q = seen[0]
    assert (q["Action"], q["PhoneNumbers"], q["TemplateCode"], q["OutId"]) == (
        "SendSms",
        "13900000001",
        "SMS_1",
        "7",
    )
    assert json.loads(q["TemplateParam"]) == {"name": "王"}
    # A wrong secret is refused by the server: the signature is what it checks.
    wrong = AliyunSmsChannel(url + "/", "key-id", "other", "Patron").send_batch([_msg()])[0]
    assert isinstance(wrong, ChannelError) and not wrong.retryable


def test_wechat_fetches_a_token_sends_and_refreshes_an_expired_token(fake_server):
    calls: list[str] = []
    tokens = iter(["T1", "T2"])
    state = {"valid": ""}

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        parts = urlsplit(path)
        query = dict(parse_qsl(parts.query))
        calls.append(parts.path)
        if parts.path == "/cgi-bin/token":
            if (query.get("appid"), query.get("secret")) != ("wxapp", "wxsecret"):
                return 200, {"errcode": 40013, "errmsg": "invalid appid"}
            state["valid"] = next(tokens)
            return 200, {"access_token": state["valid"], "expires_in": 7200}
        if parts.path == "/cgi-bin/message/subscribe/send":
            if query.get("access_token") != state["valid"]:
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            data = json.loads(body)
            assert data["touser"] == "openid-1" and data["template_id"] == "TPL"
            assert data["data"] == {"name": {"value": "王"}}
            return 200, {"errcode": 0, "errmsg": "ok", "msgid": 1234}
        return 404, {}

    url = fake_server(handle)
    ch = WeChatChannel(url, "wxapp", "wxsecret")
    msg = _msg(address="openid-1", provider_code="TPL")
    assert ch.send_batch([msg]) == ["1234"]
    state["valid"] = "rotated-elsewhere"  # the token expired on WeChat's side
    assert ch.send_batch([msg]) == ["1234"]
    assert calls.count("/cgi-bin/token") == 2


def test_push_posts_a_signed_message_to_the_gateway(fake_server):
    got: list[dict[str, Any]] = []

    def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if not verify("push-secret", headers.get("X-Patron-Signature", ""), body, int(time.time())):
            return 401, {}
        got.append(json.loads(body))
        return 200, {"id": "p-1"}

    url = fake_server(handle)
    ch = WebhookPushChannel(url + "/push", "push-secret", clock=lambda: datetime.now(UTC))
    assert ch.send_batch([_msg(address="device-1")]) == ["p-1"]
    assert got[0]["address"] == "device-1" and got[0]["body"] == "Hello"
    bad = WebhookPushChannel(url + "/push", "other").send_batch([_msg()])[0]
    assert isinstance(bad, ChannelError) and bad.kind == "http_401" and not bad.retryable


def test_smtp_sends_a_batch_over_parallel_sessions_and_answers_in_order(smtp):
    from patron.messaging.channels import SmtpEmailChannel

    sink, port = smtp
    ch = SmtpEmailChannel("127.0.0.1", port, sender="shop@example.com", connections=3)
    msgs = [_msg(message_id=i, address=f"m{i}@example.com") for i in range(1, 11)]
    results = ch.send_batch(msgs)
    assert all(isinstance(r, str) for r in results)
    assert [int(str(r).split("patron")[1].split("@")[0]) for r in results] == list(range(1, 11))
    assert sorted(m["To"] for m in sink.received) == sorted(m.address for m in msgs)
