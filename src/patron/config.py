"""Process settings from the environment (``PATRON_`` prefix).

Operator-editable business settings (tier ladder, expiry policy, earning rules) live in the
database (``patron.program``); this module holds what the process needs to start.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from patron.kit.crypto import FieldCipher

Environment = Literal["production", "development", "demo", "test"]

KEY_NAMES = ("data_key", "index_key", "token_key")


class ConfigError(RuntimeError):
    """The process cannot start with this configuration."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore")

    env: Environment = "development"
    database_url: str = "sqlite:///var/patron.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    business_timezone: str = "Asia/Shanghai"
    # Keys: base64 of 32 random bytes each. Outside production a key file is generated.
    key_file: Path = Path("var/keys.json")
    data_key: SecretStr | None = None
    index_key: SecretStr | None = None
    token_key: SecretStr | None = None
    #: data keys being rotated out (comma-separated base64): still read, never written
    previous_data_keys: SecretStr | None = None
    token_ttl_minutes: int = Field(default=30, ge=1, le=24 * 60)
    log_level: str = "INFO"
    log_json: bool = True
    idempotency_retention_hours: int = Field(default=72, ge=1)
    # An order that earns may be at most this many days old when it reaches the API (a till
    # that was offline catches up; older history is sent with "earn": false or imported).
    order_backdate_days: int = Field(default=90, ge=0, le=3650)
    # Staff sign-in: at most this many failed attempts from one client address within
    # login_lockout_minutes; then that address gets "wrong username or password" whatever it
    # sends until older failures age out. Per address, not per account, so nobody can lock
    # another person out (behind a reverse proxy, serve with --forwarded-allow-ips).
    login_max_failures: int = Field(default=10, ge=1, le=1000)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Run webhook delivery, pending-points release and expiry inside `patron serve`.
    scheduler: bool = True
    # Console sign-in lasts this long without activity; portal sign-in on a member's phone longer.
    # Session cookies only over HTTPS. Unset: on in production, off elsewhere (plain-HTTP demo).
    secure_cookies: bool | None = None
    # Strict-Transport-Security on every response. Unset: on in production (served over HTTPS).
    hsts: bool | None = None
    console_session_minutes: int = Field(default=60, ge=5, le=24 * 60)
    portal_session_minutes: int = Field(default=7 * 24 * 60, ge=5, le=90 * 24 * 60)
    # Portal sign-in by SMS code: one code per phone per resend interval, a daily cap per
    # phone (business day), a few attempts per code, a short life; and at most so many codes an
    # hour asked for from one client address, whatever the phones (behind a reverse proxy, let
    # uvicorn trust its X-Forwarded-For with --forwarded-allow-ips so this is the client's).
    otp_resend_seconds: int = Field(default=60, ge=1, le=3600)
    otp_daily_cap: int = Field(default=10, ge=1, le=1000)
    otp_max_attempts: int = Field(default=5, ge=1, le=20)
    otp_ttl_minutes: int = Field(default=5, ge=1, le=60)
    otp_source_hourly_cap: int = Field(default=20, ge=1, le=100000)
    # Where `npm ci` put the front-end packages (htmx, ECharts, jsQR); see package.json.
    assets_dir: Path = Path("node_modules")
    # Mount /bench/bare (benchmarks only).
    bench_endpoints: bool = False
    # Webhooks go to public addresses only; destinations inside these networks (CIDR, comma
    # separated, e.g. "10.20.0.0/16,127.0.0.1/32") are allowed anyway, for an ERP on the LAN.
    webhook_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # GET /metrics (Prometheus). Without a token only loopback and private addresses may scrape;
    # with one, the scraper sends it as "Authorization: Bearer <token>" from anywhere.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    # Analytics (the console dashboard) read from this PostgreSQL streaming replica when set;
    # reads that gate writes always use database_url (the primary).
    read_database_url: str | None = None
    # Where `patron backup` writes dumps and `patron backup drill` looks for the latest one.
    backup_dir: Path = Path("var/backups")
    # Outcome of the last backup, drill and check on this host, read by /metrics.
    status_dir: Path = Path("var/status")
    # Messaging (docs/messaging.md). Links in messages (clicks, unsubscribe) start with this
    # address, the one members reach the server at.
    public_base_url: str = "http://127.0.0.1:8000"
    # Email over SMTP; unset host: no email channel.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Patron <no-reply@example.com>"
    # SMS: "demo" logs messages (never in production); "aliyun" sends through Aliyun SMS.
    sms_provider: Literal["demo", "aliyun", "none"] = "demo"
    aliyun_sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    aliyun_access_key_id: str | None = None
    aliyun_access_key_secret: SecretStr | None = None
    aliyun_sms_sign_name: str = ""
    # WeChat subscribe messages (official account / mini-program credentials).
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    # App push: each message is POSTed, signed, to the app's push gateway.
    push_webhook_url: str | None = None
    push_webhook_secret: SecretStr | None = None
    # Send messages through a Redis stream (docs/messaging.md, "Sending through Redis"):
    # redis://host:6379/0 or rediss:// for TLS. The messages job then publishes what is due and
    # `patron messages consume` processes send it; unset, the job sends from the table itself.
    message_broker_url: SecretStr | None = None
    # The stream's key (deployments that share one Redis each need their own).
    message_broker_stream: str = Field(default="patron:messages", min_length=1, max_length=200)
    # Entries the publisher keeps in the stream at most (a claim's lease must outlast the wait).
    message_broker_backlog: int = Field(default=5000, ge=100, le=1_000_000)
    # Providers sign delivery status callbacks with this secret (X-Patron-Signature).
    messaging_callback_secret: SecretStr | None = None
    # Gift images of the mall: "disk" keeps them under mall_image_dir; "s3" in an S3-compatible
    # bucket (mall_image_bucket, under mall_image_prefix; mall_image_endpoint_url for a store
    # that is not AWS; credentials from the usual AWS environment variables or role).
    mall_image_backend: Literal["disk", "s3"] = "disk"
    mall_image_dir: Path = Path("var/mall-images")
    mall_image_bucket: str = ""
    mall_image_prefix: str = ""
    mall_image_endpoint_url: str | None = None
    # The largest upload accepted, in bytes.
    mall_image_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("message_broker_url")
    @classmethod
    def _broker_is_redis(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and value.get_secret_value().split("://", 1)[0] not in (
            "redis",
            "rediss",
            "unix",
        ):
            raise ValueError("message_broker_url must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _timezone_known(self) -> Settings:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(self.business_timezone)
        except Exception as exc:  # ZoneInfoNotFoundError or ValueError
            raise ValueError(f"unknown business_timezone {self.business_timezone!r}") from exc
        return self

    @property
    def hsts_enabled(self) -> bool:
        return self.hsts if self.hsts is not None else self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def keys(self) -> dict[str, bytes]:
        """Return the three 32-byte keys, loading or (outside production) creating the key file."""
        given = {n: getattr(self, n) for n in KEY_NAMES}
        if all(v is not None for v in given.values()):
            return {n: _decode_key(n, v.get_secret_value()) for n, v in given.items()}
        if self.key_file.exists():
            raw = json.loads(self.key_file.read_text())
            return {n: _decode_key(n, raw[n]) for n in KEY_NAMES}
        if self.env == "production":
            raise ConfigError(
                "production needs encryption keys: set PATRON_DATA_KEY, PATRON_INDEX_KEY and "
                "PATRON_TOKEN_KEY (base64 of 32 random bytes each) or provide PATRON_KEY_FILE; "
                "`patron keys generate` prints a fresh set"
            )
        generated = generate_keys()
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(generated, fh, indent=2)
        return {n: _decode_key(n, generated[n]) for n in KEY_NAMES}

    def previous_keys(self) -> tuple[bytes, ...]:
        """The data keys being rotated out (``PATRON_PREVIOUS_DATA_KEYS``, or the key file's
        ``previous_data_keys`` list)."""
        if self.previous_data_keys is not None:
            raw = [v for v in self.previous_data_keys.get_secret_value().split(",") if v.strip()]
        elif self.key_file.exists():
            raw = list(json.loads(self.key_file.read_text()).get("previous_data_keys", []))
        else:
            raw = []
        return tuple(_decode_key("previous_data_keys", v.strip()) for v in raw)

    def cipher(self) -> FieldCipher:
        keys = self.keys()
        return FieldCipher(keys["data_key"], keys["index_key"], self.previous_keys())


def generate_keys() -> dict[str, str]:
    return {n: base64.b64encode(secrets.token_bytes(32)).decode() for n in KEY_NAMES}


def _decode_key(name: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{name} is not valid base64") from exc
    if len(key) != 32:
        raise ConfigError(f"{name} must be 32 bytes (got {len(key)})")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
