"""Reading and writing the pipeline's files: atomic writes and validated example files."""

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

EXAMPLE_FIELDS = ("id", "split", "prompt", "answer")
# Bytes that are not UTF-8, as open_text reads them (errors='surrogateescape' maps byte b to U+DC00 + b).
UNDECODABLE = re.compile("[\udc80-\udcff]")


class DataError(ValueError):
    """A data file is malformed; the message names the file and row."""


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    Readers therefore never see a half-written file, and a failed job leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a job killed while writing
        stale.unlink()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def staged_folder(out_dir, last=None):
    """Yield a staging folder inside `out_dir`; if the block succeeds, move the files written there
    into `out_dir`, those named `*{last}` after the others, so each file appears only when complete."""
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(dir=out_dir, prefix=".partial-")
    try:
        yield staging
        for name in sorted(os.listdir(staging), key=lambda name: bool(last) and name.endswith(last)):
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path, rows):
    write_text(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def write_csv(path, frame):
    """Write a polars DataFrame as CSV: NaN and empty text as empty cells and booleans as True /
    False, the format of the pipeline's CSV files from before it used polars."""
    import polars as pl  # here, not at the top: the Snakefile imports io (through config) and needs no polars

    with atomic_path(path) as tmp:
        frame.with_columns(
            pl.col(pl.Float32, pl.Float64).fill_nan(None),
            pl.col(pl.String).replace("", None),  # polars would write '""'
            pl.col(pl.Boolean).replace_strict({True: "True", False: "False"}, return_dtype=pl.String),
        ).write_csv(tmp)


def open_text(path, **options):
    """A text file opened so that bytes which are not UTF-8 reach the reader (see utf8_problem)
    instead of failing the whole read, which could not name the row they are in."""
    return open(path, encoding="utf-8-sig", errors="surrogateescape", **options)


def utf8_problem(text):
    """'not UTF-8 text (byte 0x..)' if `text`, read by open_text, holds bytes that are not UTF-8; else None."""
    undecodable = UNDECODABLE.search(text)
    if undecodable is None:
        return None
    return f"not UTF-8 text (byte 0x{ord(undecodable.group()) - 0xDC00:02x}; save the file as UTF-8)"


def read_parquet(path, columns=None):
    """The table at `path` (all columns or `columns`); DataError naming the file if it is missing,
    truncated or not Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None


def _records(path):
    """(1-based row number, record) of a JSON-lines or Parquet file (real_data's common schema)."""
    if str(path).endswith(".parquet"):
        yield from enumerate(read_parquet(path).to_pylist(), start=1)
        return
    with open_text(path) as f:
        for row_number, line in enumerate(f, start=1):
            problem = utf8_problem(line)
            if problem:
                raise DataError(f"{path}, row {row_number}: {problem}")
            try:
                yield row_number, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}, row {row_number}: not valid JSON ({e.msg})") from None


def read_examples(path):
    """Read a JSON-lines or Parquet file of examples, each with the fields in EXAMPLE_FIELDS.

    Raises DataError naming the file and the 1-based row of the first bad record.
    """
    rows, seen = [], set()
    for row_number, row in _records(path):
        where = f"{path}, row {row_number}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object")
        for field in EXAMPLE_FIELDS:
            if field not in row:
                raise DataError(f"{where}: missing field '{field}'")
            if not isinstance(row[field], str) or not row[field].strip():
                raise DataError(f"{where}: field '{field}' must be a non-empty string")
        if row["id"] in seen:
            raise DataError(f"{where}: duplicate id '{row['id']}'")
        seen.add(row["id"])
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows
