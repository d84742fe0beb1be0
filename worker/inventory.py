"""The media inventory: upstream systems register what they hold at the vendors, so retention policies
can delete it once it has aged out (worker/retention.py).

A medium is registered with the fields of a job item (``action``, ``account`` and the vendor's ids,
checked by the same ItemValidator), plus ``created_at`` (the vendor-side creation time, ISO 8601 with a
time zone) and optional ``tags``. Registration is all or nothing, like a job submission: every problem
is listed by line and field and nothing is written. Registering a medium again updates it (created
time, tags); it is never a duplicate. Files are read as a stream and written in chunks, so memory stays
flat however long the file is.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from models.inventory import InventoryMedia, InventoryTag
from models.tables import Item
from models.types import utcnow
from worker.errors import Problem
from worker.outcomes import ItemStatus
from worker.producer import Screening
from worker.readers import Row, detect_format, read_items
from worker.retention_policy import tag_problem
from worker.settings import Settings
from worker.validation import ItemValidator, ValidItem, all_fields, item_fields

UPSERT_CHUNK = 1_000
MAX_TAGS = 32
TAG_SEPARATOR = ";"
CREATED_AT_EXAMPLE = "2026-11-01T08:00:00Z"


class InventoryStatus(str, enum.Enum):
    """Where a registered medium stands."""

    PRESENT = "present"  # held at the vendor as far as we know; a policy may take it
    QUEUED = "queued"  # in a retention job that has not finished with it yet
    DELETED = "deleted"
    ALREADY_GONE = "already_gone"  # the vendor no longer had it when the job asked
    FAILED = "failed"  # the last job could not delete it; the next run of a policy tries again

    @property
    def is_gone(self) -> bool:
        return self in (InventoryStatus.DELETED, InventoryStatus.ALREADY_GONE)


# A retention run may take media in these states.
ELIGIBLE = (InventoryStatus.PRESENT.value, InventoryStatus.FAILED.value)


def inventory_columns() -> list[str]:
    """The CSV columns an inventory file may have: a job item's, plus ``created_at`` and ``tags``."""
    return [*all_fields(), "created_at", "tags"]


@dataclass(frozen=True, slots=True)
class ValidMedia:
    item: ValidItem
    created_at: datetime
    tags: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.item.action, self.item.account, self.item.group_key, self.item.media_id)


@dataclass(frozen=True)
class Registered:
    count: int  # media registered or updated (a medium listed twice counts twice)


def parse_created_at(line: int, value: Any) -> datetime | Problem:
    """An ISO 8601 time with a time zone; a naive time would be read in whatever zone a host is in."""
    if value is None:
        return Problem(line, "created_at", f"missing (when the vendor created the medium, ISO 8601 with a time zone, e.g. {CREATED_AT_EXAMPLE})")
    if not isinstance(value, str):
        return Problem(line, "created_at", f"must be an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return Problem(line, "created_at", f"{value[:60]!r} is not an ISO 8601 time (e.g. {CREATED_AT_EXAMPLE})")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return Problem(line, "created_at", f"{value!r} has no time zone (add Z for UTC, or an offset like +08:00)")
    return parsed


def parse_tags(line: int, value: Any) -> tuple[str, ...] | list[Problem]:
    """A list of tags, or one string of tags separated by ';' (the CSV form). Duplicates are kept once."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(TAG_SEPARATOR) if part.strip()]
    if not isinstance(value, list):
        return [Problem(line, "tags", f"must be a list of strings (or one string separated by '{TAG_SEPARATOR}'), got {type(value).__name__}")]
    problems = [Problem(line, "tags", reason) for tag in value if (reason := tag_problem(tag))]
    if not problems and len(set(value)) > MAX_TAGS:
        problems.append(Problem(line, "tags", f"{len(set(value))} tags, at most {MAX_TAGS} are kept per medium"))
    return problems or tuple(sorted(set(value)))


class MediaValidator:
    """A job item's checks (ItemValidator) plus the inventory's own fields."""

    def __init__(self, items: ItemValidator) -> None:
        self._items = items

    def validate(self, line: int, record: Mapping[str, Any]) -> ValidMedia | list[Problem]:
        fields = {name: value for name, value in record.items() if name not in ("created_at", "tags")}
        item = self._items.validate(line, fields)
        created_at = parse_created_at(line, record.get("created_at"))
        tags = parse_tags(line, record.get("tags"))
        problems = [*(item if isinstance(item, list) else []), *([created_at] if isinstance(created_at, Problem) else [])]
        problems += tags if isinstance(tags, list) else []
        if problems:
            return problems
        assert isinstance(item, ValidItem) and isinstance(created_at, datetime) and isinstance(tags, tuple)
        return ValidMedia(item, created_at, tags)


def _upsert(session: Session):
    """INSERT ... ON CONFLICT (the medium's ids) DO UPDATE: registering again refreshes the created time
    and registration time; a medium already deleted stays deleted."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite if dialect == "sqlite" else None
    if module is None:
        raise NotImplementedError(f"inventory upserts need PostgreSQL or SQLite, not {dialect}")
    statement = module.insert(InventoryMedia)
    statement = statement.on_conflict_do_update(
        index_elements=["action", "account", "group_key", "media_id"],
        set_={"created_at": statement.excluded.created_at, "registered_at": statement.excluded.registered_at},
    )
    return statement.returning(InventoryMedia.id, sort_by_parameter_order=True)


def _write_chunk(session: Session, chunk: Sequence[ValidMedia], now: datetime) -> None:
    # PostgreSQL refuses to update one row twice in one statement: the last registration in a chunk wins.
    latest = {media.key: media for media in chunk}
    rows = [
        {
            "action": m.item.action, "account": m.item.account, "group_key": m.item.group_key,
            "media_id": m.item.media_id, "created_at": m.created_at, "registered_at": now,
            "status": InventoryStatus.PRESENT.value,
        }
        for m in latest.values()
    ]
    ids = session.scalars(_upsert(session), rows).all()
    # Tags are replaced, not merged: what was registered last is what the medium carries.
    session.execute(delete(InventoryTag).where(InventoryTag.inventory_id.in_(ids)))
    tag_rows = [{"inventory_id": id_, "tag": tag} for id_, media in zip(ids, latest.values()) for tag in media.tags]
    if tag_rows:
        session.execute(insert(InventoryTag), tag_rows)


def register_media(
    sessions: sessionmaker[Session],
    lines: Iterable[Row] | Iterable[dict[str, Any]],
    validator: MediaValidator,
    *,
    now: datetime | None = None,
) -> Registered:
    """Register (insert or update) every medium, in one transaction. Raises SubmissionRejected listing
    every problem by line and field, writing nothing, if any line is bad."""
    now = now or utcnow()
    screening = Screening(lines, validator.validate, ValidMedia)
    with sessions() as session:
        media = iter(screening)
        while chunk := list(islice(media, UPSERT_CHUNK)):
            _write_chunk(session, chunk, now)
        if rejection := screening.rejection("the registration holds no media"):
            session.rollback()
            raise rejection
        session.commit()
    return Registered(screening.accepted)


def register(
    media: Iterable[dict[str, Any]] | str | Path,
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    fmt: str | None = None,
) -> Registered:
    """Register media from a list of dicts or a JSON Lines / CSV file (the Python entrance)."""
    from worker.jobs import validator_for

    validator = MediaValidator(validator_for(settings))
    if isinstance(media, (str, Path)):
        path = Path(media)
        with path.open("rb") as stream:
            return register_media(sessions, read_items(stream, fmt or detect_format(path), inventory_columns()), validator)
    return register_media(sessions, media, validator)


def _same_item():
    """The job item an inventory row was sent as (the items' unique key makes this an index probe)."""
    return (
        (Item.job_id == InventoryMedia.job_id) & (Item.action == InventoryMedia.action)
        & (Item.account == InventoryMedia.account) & (Item.group_key == InventoryMedia.group_key)
        & (Item.media_id == InventoryMedia.media_id)
    )


def reconcile(session: Session) -> int:
    """Copy the final status of each queued medium's job item onto it (deleted, already gone, failed),
    and free media whose job was removed. Returns how many media changed. Commits."""
    finished = _same_item() & (Item.status != ItemStatus.PENDING.value)
    gone = _same_item() & Item.status.in_([ItemStatus.DELETED.value, ItemStatus.ALREADY_GONE.value])
    changed = session.execute(
        update(InventoryMedia)
        .where(InventoryMedia.status == InventoryStatus.QUEUED.value, exists().where(finished))
        .values(
            status=select(Item.status).where(finished).scalar_subquery(),
            deleted_at=select(Item.finished_at).where(gone).scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    orphaned = session.execute(
        update(InventoryMedia)
        .where(InventoryMedia.status == InventoryStatus.QUEUED.value, InventoryMedia.job_id.is_(None))
        .values(status=InventoryStatus.PRESENT.value)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return changed + orphaned


def has_all_tags(tags: Sequence[str]):
    """A condition on InventoryMedia: it carries every one of ``tags``."""
    return [
        exists().where(InventoryTag.inventory_id == InventoryMedia.id, InventoryTag.tag == tag) for tag in tags
    ]


def list_media(
    session: Session,
    *,
    action: str | None = None,
    account: str | None = None,
    tags: Sequence[str] = (),
    status: InventoryStatus | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Registered media, oldest first, in their submission form plus what the inventory knows."""
    query = select(InventoryMedia).where(*has_all_tags(tags)).order_by(InventoryMedia.created_at, InventoryMedia.id)
    if action is not None:
        query = query.where(InventoryMedia.action == action)
    if account is not None:
        query = query.where(InventoryMedia.account == account)
    if status is not None:
        query = query.where(InventoryMedia.status == status.value)
    media = session.scalars(query.limit(limit)).all()
    tags_by_id: dict[int, list[str]] = {m.id: [] for m in media}
    if media:
        for inventory_id, tag in session.execute(
            select(InventoryTag.inventory_id, InventoryTag.tag)
            .where(InventoryTag.inventory_id.in_(list(tags_by_id)))
            .order_by(InventoryTag.tag)
        ):
            tags_by_id[inventory_id].append(tag)
    return [
        {
            **item_fields(m.action, m.account, m.group_key, m.media_id),
            "created_at": m.created_at.isoformat(), "tags": tags_by_id[m.id], "status": m.status, "job_id": m.job_id,
            "registered_at": m.registered_at.isoformat(), "deleted_at": m.deleted_at.isoformat() if m.deleted_at else None,
        }
        for m in media
    ]
