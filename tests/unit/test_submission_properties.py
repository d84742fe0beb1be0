"""Properties of a submission, on a real SQLite database: accepted whole or refused whole, refusals name
exactly the bad lines (and fields), nothing is ever half written, no input raises anything but
SubmissionRejected, and an accepted id reaches the vendor request exactly as given.

The oracle below is written from the README's rules (an id is a non-empty string or non-negative
integer of at most 256 characters, without ``, & = [ ] %``, whitespace or control/invisible
characters), not from ``worker.validation``.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from models import Base, Item, make_engine, make_session_factory
from worker.errors import SubmissionRejected
from worker.producer import submit_job
from worker.readers import read_csv, read_jsonl
from worker.settings import AliyunAccount, HuaweiAccount, ZegoAccount
from worker.validation import ItemValidator, all_fields
from worker.vendors import OPERATIONS

ACCOUNTS = {"aliyun": {"default", "cn"}, "zego": {"default", "second"}, "huawei": {"default"}}
ID_LIMIT = 256
FORBIDDEN = set(",&=[]%")
CHOICES = {"aliyun.DeleteMultipartUpload": ("video",), "zego.DeleteMedia": ("Tencent", "Ws", "Huawei")}
COLUMNS = all_fields()

PROPERTY = settings(
    max_examples=100, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# The database: one SQLite file for the module, emptied before every example.


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('props') / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def reset(sessions) -> None:
    with sessions() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(delete(table))
        s.commit()


def row_counts(sessions) -> dict[str, int]:
    with sessions() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def stored_items(sessions) -> list[tuple[str, str, str, str, int]]:
    with sessions() as s:
        return list(s.execute(select(Item.action, Item.account, Item.group_key, Item.media_id, Item.line)).all())


# The oracle, from the README.


def id_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return None


def acceptable_id(text: str) -> bool:
    if not 1 <= len(text) <= ID_LIMIT:
        return False
    for char in text:
        category = unicodedata.category(char)
        if char in FORBIDDEN or char.isspace() or category[0] in "CZ":
            return False
    return True


def expected_fields(item: Any) -> set[str | None]:
    """The fields a refusal must name for this item (None: the item as a whole); empty when it is valid."""
    if not isinstance(item, dict):
        return {None}
    action = item.get("action")
    if not isinstance(action, str) or action not in OPERATIONS:
        return {"action"}
    op = OPERATIONS[action]
    bad: set[str] = set()
    account = item.get("account", "default")
    if not isinstance(account, str) or account not in ACCOUNTS[op.vendor]:
        bad.add("account")
    bad |= {name for name in item if name not in {"action", "account", *op.item_fields}}
    for name in op.item_fields:
        text = id_text(item[name]) if name in item else None
        if text is None:
            bad.add(name)
        elif action in CHOICES and name == op.group_field:
            if text not in CHOICES[action]:
                bad.add(name)
        elif not acceptable_id(text):
            bad.add(name)
    return bad


def expected_key(item: Mapping[str, Any]) -> tuple[str, str, str, str]:
    op = OPERATIONS[item["action"]]
    group = id_text(item[op.group_field]) if op.group_field else ""
    return (op.action, item.get("account", "default"), group, id_text(item[op.id_field]))


# Strategies.

SEPARATORS = ",&=[]%#?+;/\\ \"'"
CONTROLS = "\t\n\r\x00\x7f\x85\x1f\x0b"
INVISIBLE = "\u200b\ufeff\u2028\u2029\u00a0\u3000\u200e"
LETTERS = "aZ09-_.~éßΩж視\u0301😀"
SURROGATES = "\ud800\udfff"
NOT_TEXT = st.one_of(
    st.floats(allow_nan=True), st.booleans(), st.none(), st.integers(max_value=-1),
    st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def tricky_char(text_only: bool) -> st.SearchStrategy[str]:
    specials = SEPARATORS + CONTROLS + INVISIBLE + LETTERS + ("" if text_only else SURROGATES)
    return st.sampled_from(specials) | st.characters(blacklist_categories=("Cs",))


# Characters an id may hold: letters of any script, marks, symbols, and the separators the README does
# not forbid (they are percent-encoded on the way out).
VALID_CHAR = st.sampled_from("#?+;/\\\"'~-_.éß視😀\u0301") | st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"), blacklist_characters=",&=[]%"
)


def valid_ids(text_only: bool = False) -> st.SearchStrategy[Any]:
    texts = st.one_of(
        st.sampled_from(["a", "b", "1", "視"]),  # collisions, so duplicates happen
        st.text(VALID_CHAR, min_size=1, max_size=16),
        st.text(VALID_CHAR, min_size=ID_LIMIT, max_size=ID_LIMIT),
    )
    return texts if text_only else texts | st.integers(min_value=0, max_value=10**30)


def any_ids(text_only: bool = False) -> st.SearchStrategy[Any]:
    texts = st.one_of(
        st.text(tricky_char(text_only), min_size=1, max_size=12),
        st.text(VALID_CHAR, min_size=ID_LIMIT - 2, max_size=ID_LIMIT + 6),
        st.text(tricky_char(text_only), min_size=ID_LIMIT + 1, max_size=ID_LIMIT + 40),
        valid_ids(text_only=True),
    )
    if text_only:
        return texts
    return st.one_of(texts, st.just(""), st.integers(min_value=-3, max_value=10**30), NOT_TEXT)


BAD_ACTIONS = ["aliyun.DeleteVideo", "ZEGO.DeleteMedia", "huawei.deleteassets", "DeleteStream", "aliyun.DeleteStream "]
BAD_ACCOUNTS = ["eu", "DEFAULT", "default ", "x" * 65]
BAD_CHOICES = ["audio", "VIDEO", "tencent", "Ws ", "Aws", "video\x00"]


@st.composite
def items(draw, *, valid: bool, text_only: bool = False) -> dict[str, Any]:
    """One item. ``valid``: always acceptable. ``text_only``: every value a non-empty string (CSV)."""
    if not valid and draw(st.integers(0, 9)) == 0:
        action = draw(st.sampled_from(BAD_ACTIONS) | (st.just(None) if text_only else NOT_TEXT | st.just("")))
    else:
        action = draw(st.sampled_from(sorted(OPERATIONS)))
    item: dict[str, Any] = {} if action is None else {"action": action}
    op = OPERATIONS.get(action) if isinstance(action, str) else None
    vendor = op.vendor if op else draw(st.sampled_from(sorted(ACCOUNTS)))
    accounts = st.sampled_from(sorted(ACCOUNTS[vendor]))
    if not valid:
        accounts = accounts | st.sampled_from(BAD_ACCOUNTS) | (st.nothing() if text_only else NOT_TEXT | st.just(""))
    if draw(st.booleans()):
        item["account"] = draw(accounts)
    fields = op.item_fields if op else draw(st.lists(st.sampled_from(COLUMNS[2:]), max_size=2, unique=True))
    for name in fields:
        choices = CHOICES.get(action) if name == (op.group_field if op else None) else None
        good = st.sampled_from(choices) if choices else valid_ids(text_only)
        if valid:
            item[name] = draw(good)
            continue
        kind = draw(st.sampled_from(["good", "good", "good", "missing", "bad"]))
        if kind == "good":
            item[name] = draw(good)
        elif kind == "bad":
            item[name] = draw(any_ids(text_only) | st.sampled_from(BAD_CHOICES) if choices else any_ids(text_only))
    if not valid and draw(st.integers(0, 5)) == 0:
        extra = st.sampled_from(COLUMNS[2:]) if text_only else st.sampled_from([*COLUMNS[2:], "extra", "fileid", "FileId[]", ""])
        for name in draw(st.lists(extra, max_size=2, unique=True)):
            if name not in item:
                item[name] = draw(any_ids(text_only))
    return item


# What a line may hold that is not an object at all.
NON_OBJECTS = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.floats(), st.lists(st.integers(), max_size=2))


def submissions(*, text_only: bool = False) -> st.SearchStrategy[list[Any]]:
    """Wholly valid submissions half the time (else almost every one would be refused), mixed otherwise."""
    mixed = items(valid=False, text_only=text_only)
    if not text_only:
        mixed = st.one_of(mixed, mixed, mixed, mixed, NON_OBJECTS)
    return st.one_of(
        st.lists(items(valid=True, text_only=text_only), min_size=1, max_size=15),
        st.lists(mixed, min_size=1, max_size=15),
    )


# The check every submission path shares.


def note_event(name: str) -> None:
    """For --hypothesis-show-statistics: both outcomes must be common, or a branch goes untested."""
    if currently_in_test_context():
        event(name)


def submit(sessions, rows: Iterable) -> tuple[Any, list[int]]:
    enqueued: list[int] = []
    return submit_job(sessions, rows, ItemValidator(ACCOUNTS), enqueued.append), enqueued


def check_whole_or_nothing(sessions, rows: Iterable, entries: list[tuple[range, dict[str, Any]]]) -> None:
    """``entries``: each item with the file lines it spans (one line, or several for a quoted CSV newline)."""
    reset(sessions)
    expected = [expected_fields(item) for _, item in entries]
    invalid = {index for index, fields in enumerate(expected) if fields}
    try:
        submitted, enqueued = submit(sessions, rows)
    except SubmissionRejected as refusal:
        note_event("refused")
        assert invalid or not entries, f"a valid submission was refused: {refusal}"
        assert all(count == 0 for count in row_counts(sessions).values()), row_counts(sessions)
        if not entries:
            assert [(p.line, p.field) for p in refusal.problems] == [(0, None)]
            return
        assert refusal.total == len(refusal.problems)  # small submissions: nothing cut off
        named: dict[int, set] = {}
        for problem in refusal.problems:
            [index] = [i for i, (span, _) in enumerate(entries) if problem.line in span] or [None]
            assert index is not None, f"{problem!r} names a line holding no item"
            named.setdefault(index, set()).add(problem.field)
        assert set(named) == invalid, (sorted(named), sorted(invalid), refusal.problems)
        for index in invalid:
            assert named[index] == expected[index], (entries[index], refusal.problems)
        return
    note_event("accepted")
    assert not invalid, f"accepted although these are invalid: {[entries[i] for i in invalid]}"
    keys = [expected_key(item) for _, item in entries]
    stored = stored_items(sessions)
    assert sorted(row[:4] for row in stored) == sorted(set(keys))
    assert (submitted.item_count, submitted.duplicate_count) == (len(set(keys)), len(keys) - len(set(keys)))
    assert enqueued == [submitted.job_id]
    lines_of = {}
    for (span, _), key in zip(entries, keys):
        lines_of.setdefault(key, set()).update(span)
    for *key, line in stored:
        assert line in lines_of[tuple(key)]


# 1. Items: from Python, from JSON Lines, from CSV.


@PROPERTY
@given(submissions())
def test_python_items_are_accepted_whole_or_refused_whole(sessions, submitted):
    check_whole_or_nothing(sessions, submitted, [(range(n, n + 1), item) for n, item in enumerate(submitted, start=1)])


def jsonl_line(item: Any, ascii_only: bool, ending: str) -> bytes:
    try:
        return (json.dumps(item, ensure_ascii=ascii_only) + ending).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its \\u escape can be written
        return (json.dumps(item) + ending).encode("utf-8")


@PROPERTY
@given(submissions(), st.data())
def test_jsonl_items_are_accepted_whole_or_refused_whole(sessions, submitted, data):
    chunks, entries, line = [], [], 0
    for item in submitted:
        for _ in range(data.draw(st.integers(0, 1))):
            line += 1
            chunks.append(data.draw(st.sampled_from([b"\n", b"  \n", b"\r\n", b"\t \r\n"])))
        line += 1
        chunks.append(jsonl_line(item, data.draw(st.booleans()), data.draw(st.sampled_from(["\n", "\r\n"]))))
        entries.append((range(line, line + 1), item))
    if data.draw(st.booleans()):
        chunks[-1] = chunks[-1].rstrip(b"\r\n")  # no newline at the end of the file
    check_whole_or_nothing(sessions, read_jsonl(io.BytesIO(b"".join(chunks))), entries)


def csv_record(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()


def physical_lines(text: str) -> int:
    return max(1, text.count("\n"))  # lines end at \n, as the reader (and the JSON Lines reader) counts them


@PROPERTY
@given(submissions(text_only=True), st.permutations(COLUMNS), st.booleans())
def test_csv_items_are_accepted_whole_or_refused_whole(sessions, submitted, header, bom):
    text, entries, line = csv_record(header), [], 1
    for item in submitted:
        cells = [item.get(name, "") for name in header]
        record = csv_record(cells)
        span = range(line + 1, line + 1 + physical_lines(record))
        line = span[-1]
        text += record
        if any(cell.strip() for cell in cells):  # a row of blank cells is a blank line
            entries.append((span, item))
    data = ("\ufeff" if bom else "") + text
    check_whole_or_nothing(sessions, read_csv(io.BytesIO(data.encode("utf-8")), COLUMNS), entries)


def test_an_empty_submission_is_refused_as_a_whole(sessions):
    check_whole_or_nothing(sessions, [], [])


# 2. Bytes: whatever a file holds, the answer is SubmissionRejected or an accepted job, never half of one.


def wrong_encodings() -> st.SearchStrategy[bytes]:
    text = st.lists(items(valid=True, text_only=True), min_size=1, max_size=4).map(
        lambda found: "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in found)
    )
    return st.one_of(
        text.map(lambda t: t.encode("utf-16")), text.map(lambda t: t.encode("utf-16-be")),
        text.map(lambda t: t.encode("utf-32")), text.map(lambda t: b"\xff\xfe" + t.encode("utf-8")),
        text.map(lambda t: t.encode("latin-1", errors="replace") + "é視\n".encode("latin-1", errors="replace")),
        text.map(lambda t: ("é" + t).encode("cp1252", errors="replace")),
        st.tuples(text, st.integers(1, 3)).map(lambda p: p[0].encode() + "視".encode()[: p[1]]),  # cut UTF-8
        st.tuples(text, st.binary(min_size=1, max_size=8)).map(lambda p: p[1] + b"\n" + p[0].encode()),
    )


GARBAGE_LINES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8")),
    st.sampled_from([b"{", b"}", b"[]", b"[1, 2]", b"null", b"true", b"3", b'"x"', b"{}", b'{"action"}', b"\xef\xbb\xbf{}",
                     b'{"action": "huawei.DeleteAssets", "asset_id": "a"', b"\x00", b"\xc3", b"\xed\xa0\x80"]),
)


def files() -> st.SearchStrategy[bytes]:
    any_lines = st.lists(st.one_of(GARBAGE_LINES, items(valid=False).map(lambda i: jsonl_line(i, True, "").rstrip())), max_size=12)
    return st.one_of(
        st.binary(max_size=600),
        wrong_encodings(),
        any_lines.map(lambda lines: b"\n".join(lines)),
        any_lines.map(lambda lines: b"\r\n".join(lines) + b"\r\n"),
        st.sampled_from([b"", b"\n", b"\n\n\r\n  \t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n", b"\r", b" "]),
    )


def csv_files() -> st.SearchStrategy[bytes]:
    tokens = st.sampled_from([*COLUMNS, *OPERATIONS, "default", "video", "Ws", "a1", "a 1", "x,y", '"', ",", ",,", "\n", "\r\n",
                              "\r", '"a\nb"', '"a""b"', "", " ", "Colour", "\x00", "é"])
    return st.one_of(
        st.lists(tokens, max_size=30).map(lambda t: "".join(t).encode("utf-8")),
        st.tuples(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=10), st.lists(tokens, max_size=30)).map(
            lambda p: (",".join(p[0]) + "\n" + "".join(p[1])).encode("utf-8")
        ),
        files(),
    )


def check_never_half_written(sessions, rows: Iterable) -> None:
    reset(sessions)
    try:
        submitted, enqueued = submit(sessions, rows)
    except SubmissionRejected as refusal:
        assert refusal.problems and all(isinstance(p.line, int) and p.line >= 0 for p in refusal.problems)
        assert all(count == 0 for count in row_counts(sessions).values()), row_counts(sessions)
    else:
        assert row_counts(sessions)["items"] == submitted.item_count >= 1 and enqueued == [submitted.job_id]


@PROPERTY
@given(files())
def test_any_bytes_as_jsonl_are_refused_or_accepted_whole(sessions, data):
    check_never_half_written(sessions, read_jsonl(io.BytesIO(data)))


@PROPERTY
@given(csv_files())
def test_any_bytes_as_csv_are_refused_or_accepted_whole(sessions, data):
    check_never_half_written(sessions, read_csv(io.BytesIO(data), COLUMNS))


@PROPERTY
@given(st.lists(st.tuples(st.booleans(), items(valid=True)), min_size=1, max_size=12), st.data())
def test_garbage_lines_are_named_and_only_they(sessions, lines, data):
    """Good items mixed with unreadable lines: the refusal names exactly the unreadable lines."""
    chunks, garbage = [], set()
    for number, (is_garbage, item) in enumerate(lines, start=1):
        if is_garbage:
            # Lines that can be neither blank nor a JSON object: invalid UTF-8, or text opening with '}'.
            chunks.append(data.draw(st.one_of(
                st.binary(max_size=20).map(lambda b: b"\xff" + b.replace(b"\n", b"")),
                st.text(max_size=20).map(lambda t: ("}" + t).encode("utf-8", "surrogatepass").replace(b"\n", b"")),
                st.sampled_from([b"[1, 2]", b"null", b"3", b'"x"', b'{"action": '])
            )))
            garbage.add(number)
        else:
            chunks.append(jsonl_line(item, True, ""))
    reset(sessions)
    try:
        submit(sessions, read_jsonl(io.BytesIO(b"\n".join(chunks) + b"\n")))
    except SubmissionRejected as refusal:
        assert {p.line for p in refusal.problems} == garbage
        assert all(p.field is None for p in refusal.problems)
        assert row_counts(sessions)["jobs"] == row_counts(sessions)["items"] == 0
    else:
        assert not garbage


@pytest.mark.parametrize(
    "data, named",
    [
        (b"", [(0, None)]),
        (b"\xef\xbb\xbf", [(0, None)]),
        (b"\n  \n\r\n\t\n", [(1, "action")]),  # blank lines: the first is an empty header
        (b"action,account,asset_id\n", [(0, None)]),  # a header and no row
        (b"asset_id\na1\n", [(1, "action")]),  # no action column
        (b"action,asset_id,Colour\nhuawei.DeleteAssets,a1,red\n", [(1, "Colour")]),  # an unknown column
        (b"action,asset_id,asset_id\nhuawei.DeleteAssets,a1,a2\n", [(1, None)]),  # a column twice
        (b"huawei.DeleteAssets,a1\n", [(1, "huawei.DeleteAssets"), (1, "a1"), (1, "action")]),  # no header
        (b"action,asset_id\nhuawei.DeleteAssets\nhuawei.DeleteAssets,a2\nhuawei.DeleteAssets,a3,x\n", [(2, None), (4, None)]),
        # A record spanning lines 3-4 (a quoted newline): it is named by a line of its own, either one.
        (b"action,asset_id\nhuawei.DeleteAssets,a1\nhuawei.DeleteAssets,\"a\nb\"\n", [(range(3, 5), "asset_id")]),
        (b"action,asset_id\nhuawei.DeleteAssets,\"a,b\"\nhuawei.DeleteAssets,\"ok\"\"\"\n", [(2, "asset_id")]),
        ("action,asset_id\nhuawei.DeleteAssets,a1\n".encode("utf-16"), [(1, None)]),
    ],
)
def test_csv_shapes_are_refused_by_line(sessions, data, named):
    reset(sessions)
    with pytest.raises(SubmissionRejected) as refusal:
        submit(sessions, read_csv(io.BytesIO(data), COLUMNS))
    got = [(p.line, p.field) for p in refusal.value.problems]
    assert len(got) == len(named), got
    for (line, field), (lines, expected_field) in zip(got, named):
        assert (line in lines if isinstance(lines, range) else line == lines) and field == expected_field, got
    assert all(count == 0 for count in row_counts(sessions).values())


def test_huge_lines(sessions):
    long_ok = {"action": "huawei.DeleteAssets", "asset_id": "x" * ID_LIMIT}
    huge = {"action": "huawei.DeleteAssets", "asset_id": "y" * 300_000}
    data = b"".join(jsonl_line(i, True, "\n") for i in (long_ok, huge)) + b"z" * 1_000_000 + b"\n"
    reset(sessions)
    with pytest.raises(SubmissionRejected) as refusal:
        submit(sessions, read_jsonl(io.BytesIO(data)))
    assert [(p.line, p.field) for p in refusal.value.problems] == [(2, "asset_id"), (3, None)]
    reset(sessions)
    submitted, _ = submit(sessions, read_jsonl(io.BytesIO(jsonl_line(long_ok, True, "\n"))))
    assert [row[3] for row in stored_items(sessions)] == ["x" * ID_LIMIT]


# Inputs that escape as other exceptions (see the reasons): each names its line, once fixed.

BUGS = "product bug: worker/readers.py read_jsonl catches only json.JSONDecodeError, "


def test_a_jsonl_line_with_a_huge_integer_is_a_problem_of_its_line(sessions):
    data = b'{"action": "huawei.DeleteAssets", "asset_id": "a"}\n{"action": "huawei.DeleteAssets", "asset_id": ' + b"1" * 5000 + b"}\n"
    reset(sessions)
    with pytest.raises(SubmissionRejected) as refusal:
        submit(sessions, read_jsonl(io.BytesIO(data)))
    assert [p.line for p in refusal.value.problems] == [2]


def test_a_deeply_nested_jsonl_line_is_a_problem_of_its_line(sessions):
    data = b'{"action": "huawei.DeleteAssets", "asset_id": "a"}\n' + b"[" * 100_000 + b"\n"
    reset(sessions)
    with pytest.raises(SubmissionRejected) as refusal:
        submit(sessions, read_jsonl(io.BytesIO(data)))
    assert [p.line for p in refusal.value.problems] == [2]


@pytest.mark.parametrize("rows, bad", [(2, 3), (1000, 901)])
def test_invalid_utf8_in_a_csv_row_is_a_problem_of_its_line(sessions, rows, bad):
    lines = [b"action,asset_id"] + [b"huawei.DeleteAssets,a%d" % n for n in range(2, rows + 2)]
    lines[bad - 1] = b"huawei.DeleteAssets,\xff\xfe"
    reset(sessions)
    with pytest.raises(SubmissionRejected) as refusal:
        submit(sessions, read_csv(io.BytesIO(b"\n".join(lines) + b"\n"), COLUMNS))
    assert [p.line for p in refusal.value.problems] == [bad]


@pytest.mark.parametrize("item", [("huawei.DeleteAssets", "a1"), (1, 2, 3), (), (7, {"action": "huawei.DeleteAssets", "asset_id": "a"})])
def test_a_tuple_item_from_python_is_refused_on_its_line(sessions, item):
    reset(sessions)
    with pytest.raises(SubmissionRejected) as refusal:
        submit(sessions, [{"action": "huawei.DeleteAssets", "asset_id": "a0"}, item])
    assert [(p.line, p.field) for p in refusal.value.problems] == [(2, None)]
    assert all(count == 0 for count in row_counts(sessions).values())


def test_a_huge_integer_id_from_python_is_a_problem_of_its_field(sessions):
    reset(sessions)
    with pytest.raises(SubmissionRejected) as refusal:
        submit(sessions, [{"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": 10**5000}])
    assert [(p.line, p.field) for p in refusal.value.problems] == [(1, "FileId")]


# 3. An accepted id is sent exactly as given, or not at all.

TEST_ACCOUNTS = {
    "aliyun": {name: AliyunAccount(access_key_id=f"LTAI{name}", access_key_secret="s3cret", security_token="tok,&=%")
               for name in ACCOUNTS["aliyun"]},
    "zego": {name: ZegoAccount(app_id=1234, server_secret="s3cret") for name in ACCOUNTS["zego"]},
    "huawei": {name: HuaweiAccount(project_id="proj01", access_key="AK", secret_key="s3cret") for name in ACCOUNTS["huawei"]},
}
# Every parameter a request may carry besides its ids; each appears once.
FIXED_PARAMS = {
    "aliyun": {"Action", "Version", "Format", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce",
               "Timestamp", "SecurityToken", "Signature"},
    "zego": {"Action", "AppId", "SignatureNonce", "Timestamp", "SignatureVersion", "Signature"},
    "huawei": set(),
}
ID_PARAM = {"aliyun.DeleteStream": "JobIds", "aliyun.DeleteMultipartUpload": "MediaId", "zego.DeleteMedia": "FileId[]",
            "huawei.DeleteAssets": "asset_id"}
GROUP_PARAM = {"aliyun.DeleteStream": "VideoId", "aliyun.DeleteMultipartUpload": "MediaType", "zego.DeleteMedia": "Vendor"}


def named_in_request(action: str, account: str, group: str, ids: list[str]) -> tuple[str, list[str]]:
    """(the group, the ids) a real signed request for ``ids`` names, read back from its query."""
    op = OPERATIONS[action]
    request = op.build_request(TEST_ACCOUNTS[op.vendor][account], group, ids, datetime.now(timezone.utc), uuid4().hex)
    raw = request.url.query
    assert all(b in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%&=[]" for b in raw), raw
    pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True, errors="strict")
    names = Counter(name for name, _ in pairs)
    expected_names = FIXED_PARAMS[op.vendor] | {ID_PARAM[action]} | ({GROUP_PARAM[action]} if action in GROUP_PARAM else set())
    assert set(names) == expected_names, pairs
    assert all(names[n] == 1 for n in names if n != ID_PARAM[action]), pairs
    values = [value for name, value in pairs if name == ID_PARAM[action]]
    named = values[0].split(",") if action == "aliyun.DeleteStream" else values
    if op.vendor == "huawei":
        assert request.url.path == "/v1.0/proj01/asset"
    else:
        assert request.url.path == "/"
    return dict(pairs).get(GROUP_PARAM.get(action, ""), ""), named


@PROPERTY
@given(st.lists(items(valid=True), min_size=1, max_size=40))
def test_an_accepted_id_is_sent_exactly_as_given(sessions, submitted):
    reset(sessions)
    submit(sessions, submitted)
    stored = stored_items(sessions)
    assert {row[:4] for row in stored} == {expected_key(item) for item in submitted}
    groups: dict[tuple[str, str, str], list[str]] = {}
    for action, account, group, media_id, _ in stored:
        assert named_in_request(action, account, group, [media_id]) == (group, [media_id])
        groups.setdefault((action, account, group), []).append(media_id)
    # Whole batches too: a call names exactly its ids, in order, none split or merged.
    for (action, account, group), ids in groups.items():
        size = OPERATIONS[action].max_batch
        for start in range(0, len(ids), size):
            assert named_in_request(action, account, group, ids[start:start + size]) == (group, ids[start:start + size])
