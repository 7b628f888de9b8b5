"""The activation files of InfoRidge's analysis: one Parquet file per run and checkpoint.

One row per (example, layer). Columns:

  run            str    "{task}/{method}/seed{seed}"
  task, method   str
  seed           int64  the run's training seed
  point, step    int64  checkpoint index (0 = before fine-tuning) and its optimizer step
  split          str    "test_id" or "test_ood"
  example_id     str
  layer          int64  0 = embedding output, l = output of decoder block l (1..L)
  final_norm     bool   True only on the extra row of layer L read after the model's final norm
                        (what Hugging Face returns as the last `hidden_states`); False rows are the
                        raw residual stream
  hidden         fixed_size_list<float32>[d]  state at the last input position
  residual       fixed_size_list<float32>[d]  hidden minus the raw state of layer - 1 (layer 0: the
                                              embedding itself)
  target         fixed_size_list<float32>[d]  input-embedding row of the true next token
  target_token   int64  id of the true next token (the answer's first token)
  early_exit_token int64  argmax of the LM head on final_norm(hidden) (on hidden itself for the
                        final-norm row): the logit-lens prediction of that layer

`scan` (the analyses: only the columns and rows asked for, as polars) and `read` (the whole table,
as Arrow) check the schema, vector widths and finiteness of what they read, naming the file and
column on failure.
"""

from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from infoflow import parquet
from infoflow.io import DataError, read_parquet

VECTOR_COLUMNS = ("hidden", "residual", "target")
SCALAR_COLUMNS = {
    "run": pa.string(),
    "task": pa.string(),
    "method": pa.string(),
    "seed": pa.int64(),
    "point": pa.int64(),
    "step": pa.int64(),
    "split": pa.string(),
    "example_id": pa.string(),
    "layer": pa.int64(),
    "final_norm": pa.bool_(),
    "target_token": pa.int64(),
    "early_exit_token": pa.int64(),
}


def schema(width):
    vector = pa.list_(pa.float32(), width)
    return pa.schema([*SCALAR_COLUMNS.items(), *((name, vector) for name in VECTOR_COLUMNS)])


@contextmanager
def writer(path, width):
    """Yield `write(columns)` streaming record batches of this schema into `path` (infoflow.parquet)."""
    with parquet.writer(path, schema(width)) as write:
        yield write


def check_schema(path, schema, columns):
    """Widths of the vector columns among `columns`; DataError naming the file and column for a
    missing column, a vector column of another type than a fixed-size list of float32, or vector
    columns of different widths."""
    for name in columns:
        if name not in schema.names:
            raise DataError(f"{path}: missing column '{name}'")
    widths = {}
    for name in (c for c in columns if c in VECTOR_COLUMNS):
        kind = schema.field(name).type
        if not pa.types.is_fixed_size_list(kind) or kind.value_type != pa.float32():
            raise DataError(f"{path}: column '{name}' is {kind}, expected a fixed-size list of float32")
        widths[name] = kind.list_size
    if len(set(widths.values())) > 1:
        raise DataError(f"{path}: vector widths differ: {widths}")
    return widths


def check_finite(path, name, vectors):
    """DataError naming the file and column if the [rows, width] array `vectors` has NaN or infinite values."""
    bad = int((~np.isfinite(vectors)).any(axis=1).sum())
    if bad:
        raise DataError(f"{path}: column '{name}' has NaN or infinite values in {bad} rows")


def scan(path, columns=None, where=None):
    """The `columns` (all without a list) of the rows of `path` where the polars expression `where`
    holds, as a polars DataFrame in file order; a vector column is an Array column, whose
    `.to_numpy()` is the [rows, width] float32 array.

    Only those columns and rows are read (infoflow.parquet.scan), and checked: DataError naming the
    file and column for a missing column, a vector column of another type or width than the others,
    or non-finite vectors among the rows read (with the count of bad rows).
    """
    columns = list(columns or [*SCALAR_COLUMNS, *VECTOR_COLUMNS])
    check_schema(path, parquet.schema(path), columns)
    frame = parquet.scan(path, columns, where)
    for name in (c for c in columns if c in VECTOR_COLUMNS):
        check_finite(path, name, frame[name].to_numpy())
    return frame


def read(path, columns=None):
    """The whole table at `path` (all columns or `columns`) as Arrow, checked as `scan` checks."""
    table = read_parquet(path, columns)
    wanted = columns or [*SCALAR_COLUMNS, *VECTOR_COLUMNS]
    check_schema(path, table.schema, wanted)
    for name in (c for c in wanted if c in VECTOR_COLUMNS):
        check_finite(path, name, parquet.vectors(table, name))
    return table
