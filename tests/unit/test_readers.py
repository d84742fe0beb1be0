import io

from worker.errors import Problem
from worker.readers import read_csv, read_jsonl
from worker.validation import all_fields


def rows(reader):
    return list(reader)


def test_jsonl_numbers_lines_and_skips_blank_ones():
    data = b'{"action": "a"}\n\n  \n{"action": "b"}\n'
    assert rows(read_jsonl(io.BytesIO(data))) == [(1, {"action": "a"}), (4, {"action": "b"})]


def test_jsonl_bad_lines_become_problems_with_their_number():
    data = b'{"action": "a"}\n[1, 2]\n{"action": \n\xff\xfe\n"\xef\xbb\xbf"\n'
    result = rows(read_jsonl(io.BytesIO(data)))
    assert result[0] == (1, {"action": "a"})
    kinds = [(n, p.reason.split(" ")[0]) for n, p in result[1:]]
    assert kinds == [(2, "expected"), (3, "not"), (4, "not")] + [(5, kinds[3][1])]
    assert all(isinstance(p, Problem) for _, p in result[1:])


def test_jsonl_utf8_bom_is_ignored():
    assert rows(read_jsonl(io.BytesIO(b'\xef\xbb\xbf{"action": "a"}\n'))) == [(1, {"action": "a"})]


def test_csv_empty_cells_are_absent_fields():
    data = "action,account,VideoId,JobId,asset_id\naliyun.DeleteStream,,v1,j1,\nhuawei.DeleteAssets,eu,,,a1\n".encode()
    assert rows(read_csv(io.BytesIO(data), all_fields())) == [
        (2, {"action": "aliyun.DeleteStream", "VideoId": "v1", "JobId": "j1"}),
        (3, {"action": "huawei.DeleteAssets", "account": "eu", "asset_id": "a1"}),
    ]


def test_csv_unknown_and_missing_columns_are_refused_at_line_1():
    result = rows(read_csv(io.BytesIO(b"action,Colour\nx,y\n"), all_fields()))
    assert [(n, p.field, p.reason) for n, p in result] == [(1, "Colour", "unknown column")]
    result = rows(read_csv(io.BytesIO(b"asset_id\na1\n"), all_fields()))
    assert [(n, p.field) for n, p in result] == [(1, "action")]


def test_csv_ragged_row_is_a_problem_of_its_line():
    result = rows(read_csv(io.BytesIO(b"action,asset_id\nhuawei.DeleteAssets,a,extra\n"), all_fields()))
    [(number, problem)] = result
    assert number == 2 and "3 cells" in problem.reason


def test_csv_quoted_newline_keeps_line_numbers_of_the_file():
    data = b'action,asset_id\nhuawei.DeleteAssets,"a\nb"\nhuawei.DeleteAssets,c\n'
    assert [n for n, _ in rows(read_csv(io.BytesIO(data), all_fields()))] == [3, 4]
