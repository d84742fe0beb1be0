"""Matching test data: a deletion-job item list and the sandbox seed holding (most of) those items.

Deterministic for a given ``rng_seed``. Exactly ``round(count * missing_fraction)`` items of each action
are "missing": listed but not held, so the vendor answers not-found (already gone). A DeleteStream video
whose every JobId is missing is not held at all (InvalidVideo.NotFound).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from worker.sandbox.config import SandboxConfig
from worker.sandbox.state import ZEGO_VENDORS

ACTIONS = ("aliyun.DeleteStream", "aliyun.DeleteMultipartUpload", "zego.DeleteMedia", "huawei.DeleteAssets")
AccountsArg = SandboxConfig | Mapping[str, Mapping[str, str | int]]


def _accounts(accounts: AccountsArg, vendor: str) -> list[tuple[str, str]]:
    """(account name, vendor key) pairs of ``vendor``."""
    if isinstance(accounts, SandboxConfig):
        pairs = list(accounts.account_keys(vendor).items())
    else:
        pairs = [(name, str(key)) for name, key in accounts.get(vendor, {}).items()]
    if not pairs:
        raise ValueError(f"no {vendor} account to generate items for")
    return pairs


def _zego_file_id(rng: random.Random, vendor: str) -> str:
    # Each CDN names files its own way: Tencent a numeric FileID, Ws a PersistentId, Huawei an OBS object key.
    if vendor == "Tencent":
        return str(rng.randrange(10**18, 10**19))
    if vendor == "Ws":
        return f"{rng.getrandbits(96):024x}"
    return f"record/{rng.getrandbits(64):016x}.flv"


def generate_media(
    counts: Mapping[str, int],
    missing_fraction: float = 0.0,
    rng_seed: int = 0,
    accounts: AccountsArg | None = None,
    *,
    streams_per_video: int = 5,
    locked_fraction: float = 0.0,
    processing_fraction: float = 0.0,
    shuffle: bool = False,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(seed, items) for ``counts`` items per action, spread round-robin over each vendor's accounts.

    ``accounts`` is a SandboxConfig or ``{vendor: {account name: vendor key}}``; items name accounts by
    name, the seed by vendor key. ``locked_fraction`` of the held ZEGO files are locked and
    ``processing_fraction`` of the held Huawei assets are processing (both refuse deletion).
    """
    unknown = set(counts) - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown action(s) {sorted(unknown)}; known: {list(ACTIONS)}")
    for name, fraction in (("missing", missing_fraction), ("locked", locked_fraction), ("processing", processing_fraction)):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"{name}_fraction must be between 0 and 1")
    if accounts is None:
        raise ValueError("accounts is required: a SandboxConfig or {vendor: {name: key}}")
    rng = random.Random(rng_seed)
    seed: dict[str, Any] = {"aliyun": {}, "zego": {}, "huawei": {}}
    items: list[dict[str, str]] = []
    for action in ACTIONS:
        count = int(counts.get(action, 0))
        if count <= 0:
            continue
        vendor = action.split(".")[0]
        pairs = _accounts(accounts, vendor)
        missing = set(rng.sample(range(count), round(count * missing_fraction)))
        videos: dict[tuple[str, int], str] = {}
        for i in range(count):
            name, key = pairs[i % len(pairs)]
            held = i not in missing
            part = seed[vendor].setdefault(key, {})
            if action == "aliyun.DeleteStream":
                video_slot = (key, (i // len(pairs)) // streams_per_video)
                video = videos.setdefault(video_slot, f"{rng.getrandbits(128):032x}")
                job = f"{rng.getrandbits(128):032x}"
                items.append({"action": action, "account": name, "VideoId": video, "JobId": job})
                if held:
                    part.setdefault("streams", {}).setdefault(video, []).append(job)
            elif action == "aliyun.DeleteMultipartUpload":
                media = f"{rng.getrandbits(128):032x}"
                items.append({"action": action, "account": name, "MediaId": media, "MediaType": "video"})
                if held:
                    part.setdefault("multipart_uploads", []).append(media)
            elif action == "zego.DeleteMedia":
                cdn = ZEGO_VENDORS[rng.randrange(len(ZEGO_VENDORS))]
                file_id = _zego_file_id(rng, cdn)
                items.append({"action": action, "account": name, "Vendor": cdn, "FileId": file_id})
                if held:
                    section = "locked" if rng.random() < locked_fraction else "files"
                    part.setdefault(section, {}).setdefault(cdn, []).append(file_id)
            else:
                asset = f"{rng.getrandbits(128):032x}"
                items.append({"action": action, "account": name, "asset_id": asset})
                if held:
                    section = "processing" if rng.random() < processing_fraction else "assets"
                    part.setdefault(section, []).append(asset)
    if shuffle:
        rng.shuffle(items)
    return seed, items
