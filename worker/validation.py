"""Check submitted items against what each vendor operation accepts.

An id is sent to the vendor exactly as given, so ids that could change a request's meaning are refused
here rather than escaped: a comma would split a DeleteStream JobIds list or a Huawei asset_id list,
``&``/``=`` would add a query parameter if anything ever skipped encoding, brackets collide with ZEGO's
``FileId[]``, and ``%`` invites a double decode on the vendor side.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.tables import ID_LENGTH
from worker.errors import Problem
from worker.vendors import OPERATIONS, Operation

DEFAULT_ACCOUNT = "default"
ACCOUNT_LENGTH = 64
_FORBIDDEN = {",": "a comma", "&": "an ampersand", "=": "an equals sign", "[": "a bracket", "]": "a bracket", "%": "a percent sign"}
# Printable ASCII without a forbidden character: nearly every real id. One regex match accepts it,
# instead of a Unicode category lookup per character (most of a million-item submission's time).
_PLAIN_ID = re.compile("[" + "".join(re.escape(chr(c)) for c in range(0x21, 0x7F) if chr(c) not in _FORBIDDEN) + "]+")


@dataclass(frozen=True, slots=True)
class ValidItem:
    line: int
    action: str
    account: str
    group_key: str
    media_id: str


def all_fields() -> list[str]:
    """Every field name an item may carry, in a stable order (the CSV columns)."""
    names = ["action", "account"]
    for op in OPERATIONS.values():
        names.extend(f for f in op.item_fields if f not in names)
    return names


def id_problem(value: str) -> str | None:
    """Why this id cannot be sent as is, or None."""
    if value == "":
        return "must not be empty"
    if len(value) > ID_LENGTH:
        return f"is {len(value)} characters long, the limit is {ID_LENGTH}"
    if _PLAIN_ID.fullmatch(value):
        return None
    for char in value:
        if char in _FORBIDDEN:
            return f"contains {_FORBIDDEN[char]} ({char!r}), which would change the request's meaning"
        category = unicodedata.category(char)
        if char.isspace() or category[0] == "Z":
            return f"contains whitespace ({char!r})"
        if category[0] == "C":
            return f"contains a control or invisible character (U+{ord(char):04X})"
    return None


def _as_text(value: Any) -> str | None:
    """Ids may be given as JSON strings or integers (ZEGO's numeric FileIds); nothing else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        try:
            return str(value)
        except ValueError:  # more digits than Python will print: no vendor id is that long anyway
            return None
    return None


class ItemValidator:
    """Validates items for the configured accounts of each vendor."""

    def __init__(self, accounts_by_vendor: Mapping[str, set[str]]) -> None:
        self._accounts = accounts_by_vendor

    def validate(self, line: int, item: Mapping[str, Any]) -> ValidItem | list[Problem]:
        problems: list[Problem] = []
        action = item.get("action")
        if action is None:
            return [Problem(line, "action", "missing")]
        op: Operation | None = OPERATIONS.get(action) if isinstance(action, str) else None
        if op is None:
            known = ", ".join(sorted(OPERATIONS))
            return [Problem(line, "action", f"unknown action {action!r} (expected one of {known})")]

        account = item.get("account", DEFAULT_ACCOUNT)
        if not isinstance(account, str) or not account or len(account) > ACCOUNT_LENGTH:
            problems.append(Problem(line, "account", f"must be a non-empty string of at most {ACCOUNT_LENGTH} characters"))
        elif account not in self._accounts.get(op.vendor, set()):
            configured = ", ".join(sorted(self._accounts.get(op.vendor, set()))) or "none"
            problems.append(Problem(line, "account", f"no {op.vendor} account named {account!r} is configured (configured: {configured})"))

        allowed = {"action", "account", *op.item_fields}
        for name in item:
            if name not in allowed:
                problems.append(Problem(line, str(name), f"unexpected field for {op.action} (it takes {', '.join(op.item_fields)})"))

        values: dict[str, str] = {}
        for name in op.item_fields:
            if name not in item:
                problems.append(Problem(line, name, "missing"))
                continue
            text = _as_text(item[name])
            if text is None:
                problems.append(Problem(line, name, f"must be a string, got {type(item[name]).__name__}"))
                continue
            choices = op.group_choices if name == op.group_field else None
            if choices is not None:
                if text not in choices:
                    problems.append(Problem(line, name, f"must be one of {', '.join(choices)}, got {text!r}"))
                    continue
            else:
                reason = id_problem(text)
                if reason:
                    problems.append(Problem(line, name, reason))
                    continue
            values[name] = text

        if problems:
            return problems
        group_key = values[op.group_field] if op.group_field else ""
        return ValidItem(line, op.action, account, group_key, values[op.id_field])


def item_fields(action: str, account: str, group_key: str, media_id: str) -> dict[str, str]:
    """The submission form of stored ids, the inverse of ``ItemValidator.validate``: the item an
    inventory row or a report row stands for, ready to submit again."""
    op = OPERATIONS[action]
    fields = {"action": action, "account": account}
    if op.group_field:
        fields[op.group_field] = group_key
    fields[op.id_field] = media_id
    return fields
