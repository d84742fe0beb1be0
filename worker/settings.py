"""Typed settings, built once at start and passed in.

Sources, later ones overridden by earlier: defaults, a TOML file named by ``MEDIAPURGE_CONFIG`` (or the
CLI's ``--config``), environment variables prefixed ``MEDIAPURGE_`` (nested with ``__``, e.g.
``MEDIAPURGE_ACCOUNTS__ZEGO__DEFAULT__APP_ID``). pydantic-settings does the layering and type checks,
so a wrong value is refused with the field's dotted name rather than failing deep in a task.

Every secret is a ``SecretStr`` (its repr is ``**********``) and can instead be read from a file
(``<name>_file``, the docker-secrets convention), so it never has to sit in the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from worker.errors import ConfigurationError
from worker.retention_policy import POLICY_NAME, RetentionPolicy

CONFIG_ENV = "MEDIAPURGE_CONFIG"

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(text: str) -> tuple[float, float]:
    """``"20/s"`` -> (20, 1.0); ``"100/min"`` -> (100, 60.0)."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a rate like '20/s' or '100/min'")
    return float(match.group(1)), float(_PERIODS[match.group(2)])


def _read_secret_file(path: Path | None) -> SecretStr | None:
    if path is None:
        return None
    try:
        return SecretStr(Path(path).read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None


class _Account(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(default=None, description="Override the vendor's URL (a sandbox, a regional host).")
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description="Per-operation overrides of the published limits, e.g. {'DeleteMedia': '10/s'}.",
    )

    @field_validator("rate_limits")
    @classmethod
    def _rates_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for rate in value.values():
            parse_rate(rate)
        return value

    def _fill_secret(self, name: str) -> None:
        from_file = _read_secret_file(getattr(self, f"{name}_file"))
        if from_file is not None:
            setattr(self, name, from_file)
        if getattr(self, name) is None:
            raise ValueError(f"{name} (or {name}_file) is required")


class AliyunAccount(_Account):
    region: str = "cn-shanghai"
    access_key_id: str
    access_key_secret: SecretStr | None = None
    access_key_secret_file: Path | None = None
    security_token: SecretStr | None = None

    @model_validator(mode="after")
    def _secret(self) -> "AliyunAccount":
        self._fill_secret("access_key_secret")
        return self

    @property
    def base_url(self) -> str:
        return (self.endpoint or f"https://vod.{self.region}.aliyuncs.com").rstrip("/")

    @property
    def quota_identity(self) -> str:
        """Whose quota a call spends: Alibaba Cloud limits are per account, which the key stands for."""
        return self.access_key_id


class ZegoAccount(_Account):
    app_id: Annotated[int, Field(ge=0, le=2**32 - 1)]
    server_secret: SecretStr | None = None
    server_secret_file: Path | None = None
    is_test: bool = False

    @model_validator(mode="after")
    def _secret(self) -> "ZegoAccount":
        self._fill_secret("server_secret")
        return self

    @property
    def base_url(self) -> str:
        return (self.endpoint or "https://rtc-api.zego.im").rstrip("/")

    @property
    def quota_identity(self) -> str:
        """ZEGO limits are per AppId."""
        return str(self.app_id)


class HuaweiAccount(_Account):
    region: str = "cn-north-4"
    project_id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    access_key: str
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    delete_type: str | None = Field(default=None, description="'origin' deletes the source only, keeping transcodes.")

    @model_validator(mode="after")
    def _secret(self) -> "HuaweiAccount":
        self._fill_secret("secret_key")
        if self.delete_type not in (None, "origin"):
            raise ValueError("delete_type must be 'origin' or unset")
        return self

    @property
    def base_url(self) -> str:
        return (self.endpoint or f"https://vod.{self.region}.myhuaweicloud.com").rstrip("/")

    @property
    def quota_identity(self) -> str:
        """Huawei VOD limits are per tenant project."""
        return self.project_id


class Accounts(BaseModel):
    """Vendor accounts by vendor, then by the name items use in their ``account`` field."""

    model_config = ConfigDict(extra="forbid")

    aliyun: dict[str, AliyunAccount] = Field(default_factory=dict)
    zego: dict[str, ZegoAccount] = Field(default_factory=dict)
    huawei: dict[str, HuaweiAccount] = Field(default_factory=dict)

    def get(self, vendor: str, name: str) -> _Account:
        accounts: dict[str, _Account] = getattr(self, vendor)
        try:
            return accounts[name]
        except KeyError:
            raise ConfigurationError(f"no {vendor} account named {name!r} is configured") from None

    def names(self, vendor: str) -> set[str]:
        return set(getattr(self, vendor))


class RetryPolicy(BaseModel):
    """Exponential backoff with full jitter (botocore's standard mode): delay = rand(0,1) x min(base x 2^(n-1), cap)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    backoff_base: Annotated[float, Field(gt=0)] = 0.5
    backoff_cap: Annotated[float, Field(gt=0)] = 20.0


class AdaptivePolicy(BaseModel):
    """How a limit slows down when the vendor throttles below it, and climbs back (see worker/ratelimit)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # After a throttling answer the rate drops to this fraction of the rate that was throttled.
    decrease: Annotated[float, Field(gt=0, lt=1)] = 0.7
    # The climb back to that rate takes about this many calls' worth of time: the longer, the rarer
    # the throttling answers in steady state (about 2 per cut).
    recovery_calls: Annotated[float, Field(gt=0)] = 200.0
    min_recovery_seconds: Annotated[float, Field(gt=0)] = 2.0
    floor: Annotated[float, Field(gt=0, le=1)] = 0.05
    # At the configured rate, cut only on the second throttling answer within one period of the limit: a
    # lone one is usually a call delayed on its way, landing one over in the vendor's window, not someone
    # sharing the quota. Below it (climbing back after a cut) the first throttling answer cuts.
    forgive_lone_throttle: bool = True
    # Slow down the same way when calls fail as a whole (5xx, timeouts): retrying a failing operation
    # at full speed helps nobody, and takes the workers' CPU and connections from the vendors that work.
    slow_down_when_unavailable: bool = True
    # ... once this many calls in a row have failed so: a vendor failing one call in three is retried
    # at full pace (a cut on every failure would sink it to the floor), one in a storm is slowed.
    unavailable_streak: Annotated[int, Field(ge=1)] = 5
TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class ApiSettings(BaseModel):
    """The producer HTTP API (``mediapurge api``)."""

    model_config = ConfigDict(extra="forbid")

    # Bearer tokens are stored only as hashes: ``mediapurge api hash-token`` prints one.
    token_hashes: list[str] = Field(default_factory=list, description="'sha256:<64 hex>' per accepted bearer token.")
    max_body_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024  # a JSON request body
    max_stream_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024 * 1024 * 1024  # a streamed JSON Lines submission
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000

    @field_validator("token_hashes")
    @classmethod
    def _hashes_well_formed(cls, value: list[str]) -> list[str]:
        for position, entry in enumerate(value):
            if not TOKEN_HASH.match(entry):
                # Never echo the entry: someone may have pasted the token itself here.
                raise ValueError(f"entry {position} is not 'sha256:' followed by 64 lowercase hex digits (see `mediapurge api hash-token`)")
        return value


class CallbackSettings(BaseModel):
    """End-of-job callbacks: a signed POST to the URL a job was submitted with (worker/callbacks.py)."""

    model_config = ConfigDict(extra="forbid")

    signing_secret: SecretStr | None = None
    signing_secret_file: Path | None = None
    timeout: Annotated[float, Field(gt=0)] = 10.0
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    backoff_base: Annotated[float, Field(gt=0)] = 2.0
    backoff_cap: Annotated[float, Field(gt=0, le=900)] = 300.0  # short countdowns only (celery-notes)

    @model_validator(mode="after")
    def _secret(self) -> "CallbackSettings":
        from_file = _read_secret_file(self.signing_secret_file)
        if from_file is not None:
            self.signing_secret = from_file
        if self.signing_secret is not None and not self.signing_secret.get_secret_value():
            self.signing_secret = None  # an empty secret file: callbacks are off, and submissions say so
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEDIAPURGE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    database_url: str = "sqlite:///mediapurge.sqlite"
    broker_url: str = "redis://127.0.0.1:6379/0"
    redis_url: str | None = Field(default=None, description="Rate-limit store; defaults to the broker when it is Redis.")
    accounts: Accounts = Field(default_factory=Accounts)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    http_timeout: Annotated[float, Field(gt=0)] = 10.0
    # Slots are spaced for this fraction of a limit: the average rate. What keeps every vendor window
    # at or under the limit is admission (below); the headroom leaves it room, so that it only delays
    # the call after a late one. 0.99 of 20/s: 19.8 calls/s, 20 calls spanning 1.010 s.
    rate_limit_headroom: Annotated[float, Field(gt=0, le=1)] = 0.99
    # A call is admitted only when the window of the vendor's period, widened by this guard, holds
    # fewer than the limit's calls (worker/ratelimit/gcra.py): it covers the time from admission to the
    # vendor's arrival stamp, less any lateness restamped (over 3 ms): what is left is the jitter of the
    # path, well under a millisecond on loopback. Keep it at most period x (1/headroom - 1), 10 ms at
    # 20/s and 0.99, or admission, not the slots, sets the pace; over a long or jittery path to the
    # vendor, raise both (0.985 and 15 ms, say) rather than let its windows see calls bunched.
    rate_limit_guard: Annotated[float, Field(ge=0, le=1)] = 0.010
    # Two calls under one limit are admitted at least this fraction of the slot spacing apart (25 ms at
    # 20/s): batches that reached their slots late catch up at twice the rate, not in one burst.
    rate_limit_smoothing: Annotated[float, Field(ge=0, le=1)] = 0.5
    adaptive: AdaptivePolicy = Field(default_factory=AdaptivePolicy)
    # A batch whose next permit is further away than this gives its worker slot back and is requeued
    # with a countdown, instead of sleeping in the slot. Every sleeping batch holds a pool process: at
    # 0.5 s (with a 0.2 s lead) a mixed job's sleepers and culprit searches held 15 of 16 processes
    # and starved the other keys (Huawei at 45% of its limit); at 0.15 s it got 80%, fidelity the same.
    max_inline_wait: Annotated[float, Field(ge=0)] = 0.15
    # A batch requeued for a reserved slot, or for its place in the line of batches without one, comes
    # back this long before the slot and sleeps the rest: what a late countdown may cost without
    # losing the slot. (A later one is still sent: admission keeps the vendor's windows.)
    permit_lead: Annotated[float, Field(ge=0)] = 0.05
    # A batch reserves its slot up to this far ahead; further out it reserves nothing and takes a place
    # in the line (worker/ratelimit/gcra.py), so that it comes back about when a slot is free for it:
    # one visit per call instead of one per horizon. Slots already reserved keep the rate they were
    # spaced at, so this is also how long a change of rate (an adaptive cut or climb) takes to show.
    # At max_inline_wait, every slot granted is slept for: two visits per call (its place in the line,
    # then the call). At 1 s, batches back from the line found the next free slot a horizon away and
    # came back once more with it: three visits per call, at the same 98.8% of the limit.
    max_reserve_ahead: Annotated[float, Field(gt=0)] = 0.15
    # The longest countdown a message is given (a longer wait comes back this soon and asks again):
    # a countdown beyond the broker's visibility timeout (3600 s) would be delivered twice.
    max_countdown: Annotated[float, Field(gt=0, le=1800)] = 600.0
    lease_seconds: Annotated[float, Field(gt=0)] = 300.0
    # The sweeper (a beat task) re-sends what the broker lost; see worker/sweeper.py.
    sweep_interval: Annotated[float, Field(gt=0)] = 30.0
    sweep_grace: Annotated[float, Field(gt=0)] = 60.0
    sweep_queue_threshold: Annotated[int, Field(ge=1)] = 1_000
    worker_concurrency: Annotated[int, Field(ge=1)] = 4
    # Retention purges, by policy name (worker/retention.py): [retention_policies.<name>] in TOML.
    retention_policies: dict[str, RetentionPolicy] = Field(default_factory=dict)
    api: ApiSettings = Field(default_factory=ApiSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)

    @field_validator("retention_policies")
    @classmethod
    def _policy_names(cls, value: dict[str, RetentionPolicy]) -> dict[str, RetentionPolicy]:
        for name in value:
            if not POLICY_NAME.match(name):
                raise ValueError(f"policy name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _policy_accounts(self) -> "Settings":
        for name, policy in self.retention_policies.items():
            if policy.account is not None and policy.account not in self.accounts.names(policy.vendor):
                configured = ", ".join(sorted(self.accounts.names(policy.vendor))) or "none"
                raise ValueError(
                    f"retention_policies.{name}.account: no {policy.vendor} account named {policy.account!r} "
                    f"is configured (configured: {configured})"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get(CONFIG_ENV)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def rate_limit_store_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        raise ConfigurationError("redis_url is required when the broker is not Redis (it holds the shared rate limits)")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning pydantic's error into one that names every bad field."""
    from pydantic import ValidationError

    config_file = os.environ.get(CONFIG_ENV)
    if config_file and not Path(config_file).is_file():
        raise ConfigurationError(f"{CONFIG_ENV}={config_file}: no such file")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"])
            lines.append(f"  {where}: {err['msg']}" if where else f"  {err['msg']}")
        raise ConfigurationError("invalid settings:\n" + "\n".join(lines)) from None
