"""Read a submission file as a stream of (line number, item dict): JSON Lines or CSV.

Files are read line by line, never whole, so a million-item file costs the memory of one line. A line
that cannot be read becomes a ``Problem`` for that line, not an exception.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from worker.errors import Problem

class Row(NamedTuple):
    """One line of a file: its number, and the item read from it or why it could not be read."""

    number: int
    value: dict[str, Any] | Problem

FORMATS = ("jsonl", "csv")


def detect_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return "csv" if suffix == ".csv" else "jsonl"


def _decoded_lines(stream: IO[bytes]) -> Iterator[tuple[int, str | Problem]]:
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, Problem(number, None, f"not valid UTF-8 (byte {exc.start + 1} of the line)")


def read_jsonl(stream: IO[bytes]) -> Iterator[Row]:
    for number, line in _decoded_lines(stream):
        if isinstance(line, Problem):
            yield Row(number, line)
            continue
        if not line.strip():
            continue  # blank lines (a trailing newline, spacing) carry no item
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(number, Problem(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number, "[[[[..." nested too deep
            yield Row(number, Problem(number, None, f"not usable JSON ({type(exc).__name__}: {str(exc)[:100]})"))
            continue
        if not isinstance(value, dict):
            yield Row(number, Problem(number, None, f"expected a JSON object, got {type(value).__name__}"))
            continue
        yield Row(number, value)


def read_csv(stream: IO[bytes], known_columns: Iterable[str]) -> Iterator[Row]:
    """CSV with a header row; an empty cell means the field is absent.

    Lines are decoded one by one (not through a read-ahead text wrapper), so a line that is not UTF-8 is
    reported with its own number; it is then read as blank so the lines after it are checked too.
    """
    known = set(known_columns)
    undecodable: list[Problem] = []

    def text_lines() -> Iterator[str]:
        for number, line in _decoded_lines(stream):
            if isinstance(line, Problem):
                undecodable.append(line)
                yield "\n"
            elif line:  # a file holding only a byte-order mark is an empty file
                yield line

    reader = csv.reader(text_lines())

    def pending_problems() -> Iterator[Row]:
        while undecodable:
            problem = undecodable.pop(0)
            yield Row(problem.line, problem)

    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield Row(1, Problem(1, None, f"cannot read the CSV header: {exc}"))
        return
    if header is None or undecodable:
        yield from pending_problems()  # an unreadable header: its columns, and so every row, are unknown
        return
    header = [name.strip() for name in header]
    problems = [Problem(1, name or None, "unknown column") for name in header if name not in known]
    if len(set(header)) != len(header):
        problems.append(Problem(1, None, "a column name appears twice"))
    if "action" not in header:
        problems.append(Problem(1, "action", "the header has no 'action' column"))
    if problems:
        for problem in problems:
            yield Row(1, problem)
        return
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            yield from pending_problems()
            return
        except csv.Error as exc:
            yield from pending_problems()
            yield Row(reader.line_num, Problem(reader.line_num, None, f"malformed CSV ({exc})"))
            return
        yield from pending_problems()
        number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield Row(number, Problem(number, None, f"{len(cells)} cells where the header has {len(header)} columns"))
            continue
        yield Row(number, {name: cell for name, cell in zip(header, cells) if cell != ""})


def read_items(stream: IO[bytes], fmt: str, known_columns: Iterable[str]) -> Iterator[Row]:
    if fmt == "csv":
        return read_csv(stream, known_columns)
    if fmt == "jsonl":
        return read_jsonl(stream)
    raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
