"""What the sandbox's vendor accounts hold, and the seed format that fills them.

Seed format (JSON), every part optional; an account is named by its vendor key (AccessKeyId, AppId,
project id) or by its name in mediapurge's settings::

    {"aliyun": {"<account>": {"streams": {"<VideoId>": ["<JobId>", ...]},
                              "multipart_uploads": ["<MediaId>", ...]}},
     "zego":   {"<account>": {"files": {"Tencent" | "Ws" | "Huawei": ["<FileId>", ...]},
                              "locked": {"<Vendor>": ["<FileId>", ...]}}},
     "huawei": {"<account>": {"assets": ["<asset_id>", ...],
                              "processing": ["<asset_id>", ...]}}}

A locked ZEGO file or a processing Huawei asset is held (it need not be listed twice) and refuses
deletion; ``locked`` and ``processing`` may also map each id to the number of refusals before it becomes
deletable (null: never), the default being the config's ``busy_clears_after``.

Not thread-safe: the engine holds its lock around every use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

ZEGO_VENDORS = ("Tencent", "Ws", "Huawei")
VENDORS = ("aliyun", "zego", "huawei")

AccountKey = Callable[[str, str], str]  # (vendor, name or key) -> the vendor's account key


def _ids(value: Any, where: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{where} must be a list of ids")
    ids = [str(v) for v in value]
    if any(not i for i in ids):
        raise ValueError(f"{where} holds an empty id")
    return ids


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object")
    return value


class MediaStore:
    def __init__(self, busy_clears_after: int | None = None) -> None:
        self.busy_clears_after = busy_clears_after
        self.clear()

    def clear(self) -> None:
        self.streams: dict[tuple[str, str], set[str]] = {}  # (AccessKeyId, VideoId) -> live JobIds
        self.uploads: set[tuple[str, str]] = set()  # (AccessKeyId, MediaId)
        self.files: dict[tuple[str, str], set[str]] = {}  # (AppId, Vendor) -> FileIds
        self.locked: dict[tuple[str, str, str], int | None] = {}  # (AppId, Vendor, FileId) -> refusals left
        self.assets: dict[str, set[str]] = {}  # project id -> asset ids
        self.processing: dict[tuple[str, str], int | None] = {}  # (project id, asset id) -> refusals left

    # Seeding and dumping

    def seed(self, seed: Mapping[str, Any], account_key: AccountKey) -> dict[str, int]:
        """Add ``seed``'s media; returns how many ids were added per action. Refuses a bad seed as a whole."""
        seed = _mapping(seed, "the seed")
        unknown = set(seed) - set(VENDORS)
        if unknown:
            raise ValueError(f"unknown vendor(s) {sorted(unknown)} in the seed; known: {list(VENDORS)}")
        staged = MediaStore(self.busy_clears_after)
        for name, part in _mapping(seed.get("aliyun", {}), "aliyun").items():
            staged._seed_aliyun(account_key("aliyun", name), _mapping(part, f"aliyun.{name}"))
        for name, part in _mapping(seed.get("zego", {}), "zego").items():
            staged._seed_zego(account_key("zego", str(name)), _mapping(part, f"zego.{name}"))
        for name, part in _mapping(seed.get("huawei", {}), "huawei").items():
            staged._seed_huawei(account_key("huawei", name), _mapping(part, f"huawei.{name}"))
        return self._merge(staged)

    def _seed_aliyun(self, key: str, part: Mapping[str, Any]) -> None:
        for video, jobs in _mapping(part.get("streams", {}), f"aliyun.{key}.streams").items():
            self.streams.setdefault((key, str(video)), set()).update(_ids(jobs, f"aliyun.{key}.streams.{video}"))
        self.uploads.update((key, m) for m in _ids(part.get("multipart_uploads", []), f"aliyun.{key}.multipart_uploads"))

    def _seed_zego(self, key: str, part: Mapping[str, Any]) -> None:
        for section in ("files", "locked"):
            for vendor, ids in _mapping(part.get(section, {}), f"zego.{key}.{section}").items():
                if vendor not in ZEGO_VENDORS:
                    raise ValueError(f"zego.{key}.{section}: Vendor {vendor!r} is not one of {ZEGO_VENDORS}")
                where = f"zego.{key}.{section}.{vendor}"
                busy = self._busy(ids, where) if section == "locked" else dict.fromkeys(_ids(ids, where))
                self.files.setdefault((key, vendor), set()).update(busy)
                if section == "locked":
                    self.locked.update({(key, vendor, i): left for i, left in busy.items()})

    def _seed_huawei(self, key: str, part: Mapping[str, Any]) -> None:
        held = self.assets.setdefault(key, set())
        held.update(_ids(part.get("assets", []), f"huawei.{key}.assets"))
        busy = self._busy(part.get("processing", []), f"huawei.{key}.processing")
        held.update(busy)
        self.processing.update({(key, i): left for i, left in busy.items()})

    def _busy(self, value: Any, where: str) -> dict[str, int | None]:
        if isinstance(value, Mapping):
            return {str(i): None if left is None else int(left) for i, left in value.items()}
        return dict.fromkeys(_ids(value, where), self.busy_clears_after)

    def _merge(self, other: "MediaStore") -> dict[str, int]:
        added = {"aliyun.DeleteStream": 0, "aliyun.DeleteMultipartUpload": 0, "zego.DeleteMedia": 0, "huawei.DeleteAssets": 0}
        for key, jobs in other.streams.items():
            held = self.streams.setdefault(key, set())
            added["aliyun.DeleteStream"] += len(jobs - held)
            held |= jobs
        added["aliyun.DeleteMultipartUpload"] = len(other.uploads - self.uploads)
        self.uploads |= other.uploads
        for key, ids in other.files.items():
            held = self.files.setdefault(key, set())
            added["zego.DeleteMedia"] += len(ids - held)
            held |= ids
        for key, ids in other.assets.items():
            held = self.assets.setdefault(key, set())
            added["huawei.DeleteAssets"] += len(ids - held)
            held |= ids
        self.locked.update(other.locked)
        self.processing.update(other.processing)
        return added

    def dump(self) -> dict[str, Any]:
        """Everything held now, in the seed format (accounts by vendor key, ids sorted)."""
        out: dict[str, Any] = {"aliyun": {}, "zego": {}, "huawei": {}}
        for (key, video), jobs in sorted(self.streams.items()):
            out["aliyun"].setdefault(key, {"streams": {}, "multipart_uploads": []})["streams"][video] = sorted(jobs)
        for key, media in sorted(self.uploads):
            out["aliyun"].setdefault(key, {"streams": {}, "multipart_uploads": []})["multipart_uploads"].append(media)
        for (key, vendor), ids in sorted(self.files.items()):
            out["zego"].setdefault(key, {"files": {}, "locked": {}})["files"][vendor] = sorted(ids)
        for (key, vendor, file_id), left in sorted(self.locked.items()):
            out["zego"].setdefault(key, {"files": {}, "locked": {}})["locked"].setdefault(vendor, {})[file_id] = left
        for key, ids in sorted(self.assets.items()):
            out["huawei"][key] = {"assets": sorted(ids), "processing": {}}
        for (key, asset), left in sorted(self.processing.items()):
            out["huawei"].setdefault(key, {"assets": [], "processing": {}})["processing"][asset] = left
        return out

    def counts(self) -> dict[str, int]:
        return {
            "aliyun.DeleteStream": sum(len(jobs) for jobs in self.streams.values()),
            "aliyun.DeleteMultipartUpload": len(self.uploads),
            "zego.DeleteMedia": sum(len(ids) for ids in self.files.values()),
            "huawei.DeleteAssets": sum(len(ids) for ids in self.assets.values()),
        }

    # What the vendor apps ask

    @staticmethod
    def _still_busy(busy: dict[Any, int | None], key: Any) -> bool:
        """Whether ``key`` refuses this attempt; counts the refusal down, freeing it when none are left."""
        if key not in busy:
            return False
        left = busy[key]
        if left is None:
            return True
        if left <= 0:
            del busy[key]
            return False
        busy[key] = left - 1
        return True

    def has_video(self, key: str, video: str) -> bool:
        return (key, video) in self.streams

    def missing_streams(self, key: str, video: str, jobs: Iterable[str]) -> list[str]:
        live = self.streams.get((key, video), set())
        return [job for job in jobs if job not in live]

    def delete_streams(self, key: str, video: str, jobs: Iterable[str]) -> None:
        # The video itself stays: DeleteStream removes streams, not the video.
        self.streams[(key, video)].difference_update(jobs)

    def delete_upload(self, key: str, media: str) -> bool:
        if (key, media) not in self.uploads:
            return False
        self.uploads.discard((key, media))
        return True

    def delete_files(self, key: str, vendor: str, ids: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
        """(deleted, locked, missing) ZEGO file ids."""
        held = self.files.get((key, vendor), set())
        deleted, locked, missing = [], [], []
        for file_id in ids:
            if file_id not in held:
                missing.append(file_id)
            elif self._still_busy(self.locked, (key, vendor, file_id)):
                locked.append(file_id)
            else:
                held.discard(file_id)
                deleted.append(file_id)
        return deleted, locked, missing

    def missing_assets(self, key: str, ids: Iterable[str]) -> list[str]:
        held = self.assets.get(key, set())
        return [asset for asset in ids if asset not in held]

    def delete_assets(self, key: str, ids: Iterable[str]) -> list[tuple[str, bool]]:
        """(asset id, deleted) per id; an asset still processing stays and answers False."""
        held = self.assets[key]
        results = []
        for asset in ids:
            if self._still_busy(self.processing, (key, asset)):
                results.append((asset, False))
            else:
                held.discard(asset)
                results.append((asset, True))
        return results
