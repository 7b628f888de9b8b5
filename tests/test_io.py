import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infoflow.io import DataError, read_examples

GOOD = {"id": "a", "split": "test", "prompt": "2 + 2 =", "answer": "4"}


def jsonl(*rows):
    """A JSON-lines file's bytes: each row a record, or bytes standing as the line itself."""
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


def parquet(path, records):
    pq.write_table(pa.Table.from_pylist(records), path)


def truncated_parquet(path):
    parquet(path, [{**GOOD, "id": str(k)} for k in range(20)])
    path.write_bytes(path.read_bytes()[:-30])


# (case, file name, how to write it, message after the file name)
BAD_FILES = [
    ("missing_field", "e.jsonl", jsonl(GOOD, {"id": "b", "split": "test", "prompt": "p"}), r", row 2: missing field 'answer'"),
    ("empty_answer", "e.jsonl", jsonl(GOOD, {**GOOD, "id": "b", "answer": " "}), r", row 2: field 'answer' must be a non-empty string"),
    ("number_for_text", "e.jsonl", jsonl(GOOD, {**GOOD, "id": "b", "answer": 4}), r", row 2: field 'answer' must be a non-empty string"),
    ("duplicate_id", "e.jsonl", jsonl(GOOD, GOOD), r", row 2: duplicate id 'a'"),
    ("not_json", "e.jsonl", jsonl(GOOD, b'{"id": "b",'), r", row 2: not valid JSON"),
    ("not_an_object", "e.jsonl", jsonl(GOOD, b'["b"]'), r", row 2: expected a JSON object"),
    ("latin1", "e.jsonl", jsonl(GOOD, json.dumps({**GOOD, "id": "b", "prompt": "caf\xe9"}, ensure_ascii=False).encode("latin-1")),
     r", row 2: not UTF-8 text \(byte 0xe9; save the file as UTF-8\)"),
    ("empty", "e.jsonl", b"", r": no examples"),
    ("number_column_in_parquet", "e.parquet", lambda path: parquet(path, [{**GOOD, "answer": 4}]),
     r", row 1: field 'answer' must be a non-empty string"),
    ("truncated_parquet", "e.parquet", truncated_parquet, r": not a readable Parquet file"),
]


@pytest.mark.parametrize("case, name, content, message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_example_file_is_a_one_line_error_naming_file_and_row(tmp_path, case, name, content, message):
    path = tmp_path / name
    content(path) if callable(content) else path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}{message}") as error:
        read_examples(path)
    assert "\n" not in str(error.value)

