"""What a sandbox knows at start: the accounts it accepts (with their secrets), limits, faults, clocks.

Secrets are plain strings held only in memory, left out of every repr, and never recorded or logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.settings import Settings


@dataclass(frozen=True)
class AliyunCredential:
    name: str
    access_key_id: str
    access_key_secret: str = field(repr=False)


@dataclass(frozen=True)
class ZegoCredential:
    name: str
    app_id: int
    server_secret: str = field(repr=False)


@dataclass(frozen=True)
class HuaweiCredential:
    name: str
    project_id: str
    access_key: str
    secret_key: str = field(repr=False)
    tokens: tuple[str, ...] = field(default=(), repr=False)  # X-Auth-Token values accepted for the project


@dataclass
class SandboxConfig:
    aliyun: list[AliyunCredential] = field(default_factory=list)
    zego: list[ZegoCredential] = field(default_factory=list)
    huawei: list[HuaweiCredential] = field(default_factory=list)
    # Overrides of windows.DEFAULT_LIMITS by scope ("zego.DeleteMedia", "zego.DeleteMedia@<AppId>", "*"),
    # each a limit ("20/s", [20, 1.0]) or None to disable it.
    limits: Mapping[str, Any] = field(default_factory=dict)
    # Fault rules by scope ("*", "zego", "aliyun.DeleteStream"): faults.FaultSpec or its fields as a dict.
    faults: Mapping[str, Any] = field(default_factory=dict)
    fault_seed: int | None = 0
    # Refusals before a locked ZEGO file / processing Huawei asset becomes deletable; None: never.
    busy_clears_after: int | None = None
    # How far a request's timestamp may be from the sandbox's clock, and how long a nonce stays used.
    aliyun_time_window: float = 900.0
    zego_time_window: float = 600.0
    huawei_time_window: float = 900.0
    nonce_ttl: float = 900.0

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> "SandboxConfig":
        """Every account configured in ``settings``, its secrets included; ``options`` set the other fields."""
        accounts = settings.accounts
        return cls(
            aliyun=[
                AliyunCredential(name, a.access_key_id, a.access_key_secret.get_secret_value())  # type: ignore[union-attr]
                for name, a in accounts.aliyun.items()
            ],
            zego=[
                ZegoCredential(name, a.app_id, a.server_secret.get_secret_value())  # type: ignore[union-attr]
                for name, a in accounts.zego.items()
            ],
            huawei=[
                HuaweiCredential(name, a.project_id, a.access_key, a.secret_key.get_secret_value())  # type: ignore[union-attr]
                for name, a in accounts.huawei.items()
            ],
            **options,
        )

    def account_keys(self, vendor: str) -> dict[str, str]:
        """Account name -> the vendor's account key (AccessKeyId, AppId as text, project id)."""
        if vendor == "aliyun":
            return {c.name: c.access_key_id for c in self.aliyun}
        if vendor == "zego":
            return {c.name: str(c.app_id) for c in self.zego}
        if vendor == "huawei":
            return {c.name: c.project_id for c in self.huawei}
        raise ValueError(f"unknown vendor {vendor!r}")

    def account_key(self, vendor: str, name_or_key: str) -> str:
        """The vendor key for an account named either way; an unknown name is taken as a key."""
        keys = self.account_keys(vendor)
        if name_or_key in keys.values():
            return name_or_key
        return keys.get(name_or_key, name_or_key)

    def account_name(self, vendor: str, key: str | None) -> str | None:
        for name, known in self.account_keys(vendor).items():
            if known == key:
                return name
        return None
