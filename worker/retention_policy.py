"""What a retention policy says, as settings: which media (action, account, tags), how old before they
go (``older_than``), and how often the policy runs (``every``).

Kept apart from worker/retention.py, which runs policies, so the settings can hold policies without
importing the database code.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from models.inventory import POLICY_NAME_LENGTH, TAG_LENGTH

_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
POLICY_NAME = re.compile(rf"^[A-Za-z0-9_.-]{{1,{POLICY_NAME_LENGTH}}}$")
TAG_FORBIDDEN = {",": "comma", ";": "semicolon"}


def parse_duration(text: str) -> timedelta:
    """``"7d"`` -> 7 days; ``"1h30m"`` -> 90 minutes. Units: w, d, h, m, s. Raises ValueError."""
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(f"{n}{u}" for n, u in parts) != compact.replace(" ", ""):
        raise ValueError(f"{text!r} is not a duration like '7d', '24h', '30m', '90s' or '1h30m'")
    seconds = sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """The inverse of parse_duration, in days and smaller units: 90 minutes -> ``"1h30m"``, 7 days -> ``"7d"``."""
    seconds = int(duration.total_seconds())
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        if unit == "w":
            continue  # "14d" reads better than "2w"
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta) and value.total_seconds() <= 0:
        raise ValueError("must be longer than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def tag_problem(tag: Any) -> str | None:
    """Why this tag cannot be stored, or None. Tags are short words: no whitespace, comma or semicolon
    (the CSV form separates tags with ';')."""
    if not isinstance(tag, str):
        return f"a tag must be a string, got {type(tag).__name__}"
    if not tag or len(tag) > TAG_LENGTH:
        return f"a tag must be 1 to {TAG_LENGTH} characters, got {len(tag)}"
    for char in tag:
        if char in TAG_FORBIDDEN:
            return f"tag {tag!r} contains a {TAG_FORBIDDEN[char]}"
        if char.isspace() or unicodedata.category(char)[0] in "CZ":
            return f"tag {tag!r} contains whitespace or a control character"
    return None


class RetentionPolicy(BaseModel):
    """Delete media of ``action`` (in ``account``, carrying every one of ``tags``) once they are
    ``older_than`` old; checked once per ``every``, at most ``max_items`` per run."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="The deletion action, e.g. 'zego.DeleteMedia'.")
    account: str | None = Field(default=None, description="Only this account's media (default: every account).")
    tags: list[str] = Field(default_factory=list, description="Only media carrying all of these tags.")
    older_than: Duration = Field(description="Age (from the vendor-side created time) after which media go: '7d', '24h'.")
    every: Duration = Field(default=timedelta(days=1), description="How often the policy runs: '1h', '1d'.")
    enabled: bool = True
    max_items: Annotated[int | None, Field(ge=1)] = None

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        from worker.vendors import OPERATIONS  # the vendors import the settings: not at module load

        if value not in OPERATIONS:
            raise ValueError(f"unknown action {value!r} (expected one of {', '.join(sorted(OPERATIONS))})")
        return value

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if reason := tag_problem(tag):
                raise ValueError(reason)
        return sorted(set(value))

    @field_validator("every")
    @classmethod
    def _whole_seconds(cls, value: timedelta) -> timedelta:
        if value.total_seconds() != int(value.total_seconds()):
            raise ValueError("must be a whole number of seconds")
        return value

    @property
    def vendor(self) -> str:
        return self.action.split(".", 1)[0]

    def describe(self) -> dict[str, Any]:
        return {
            "action": self.action, "account": self.account, "tags": self.tags,
            "older_than": format_duration(self.older_than), "every": format_duration(self.every),
            "enabled": self.enabled, "max_items": self.max_items,
        }
