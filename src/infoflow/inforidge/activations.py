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
  hidden         fixed_size_list<float32 or float16>[d]  state at the last input position
  residual       fixed_size_list<float32 or float16>[d]  hidden minus the raw state of layer - 1
                                                         (layer 0: the embedding itself)
  target         fixed_size_list<float32 or float16>[d]  input-embedding row of the true next token
  target_token   int64  id of the true next token (the answer's first token)
  early_exit_token int64  argmax of the LM head on final_norm(hidden) (on hidden itself for the
                        final-norm row): the logit-lens prediction of that layer

The vectors are stored in one of DTYPES (inforidge.extraction.dtype): float32, float16, or
bfloat16, which Parquet lacks and which is written as float32 values rounded to bfloat16 (their
low 16 bits are zero, and byte-stream-split encoding with zstd stores them in about 2 bytes).
`scan` (the analyses: only the columns and rows asked for, as polars) and `read` (the whole table,
as Arrow) return float32 vectors whatever the storage, and check the schema, vector widths and
finiteness of what they read, naming the file and column on failure.
"""

from contextlib import contextmanager

import numpy as np
import polars as pl
import pyarrow as pa
import torch

from infoflow import parquet
from infoflow.cli import StageFailure
from infoflow.io import DataError, read_parquet

DTYPES = ("float32", "float16", "bfloat16")
STORED_TYPES = {"float32": pa.float32(), "float16": pa.float16(), "bfloat16": pa.float32()}
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


def schema(width, dtype="float32"):
    vector = pa.list_(STORED_TYPES[dtype], width)
    return pa.schema([*SCALAR_COLUMNS.items(), *((name, vector) for name in VECTOR_COLUMNS)])


def stored(path, name, vectors, dtype):
    """The [rows, width] float `vectors` as written under `dtype`; StageFailure naming the file, the
    column and inforidge.extraction.dtype if finite values are out of that type's range."""
    if dtype == "float32":
        return vectors
    vectors = np.asarray(vectors, np.float32)
    values = torch.as_tensor(vectors)
    values = values.half() if dtype == "float16" else values.bfloat16().float()
    overflow = (~torch.isfinite(values)).numpy() & np.isfinite(vectors)
    if overflow.any():
        raise StageFailure(f"{path}: column '{name}' has values beyond {dtype}'s range in {int(overflow.any(1).sum())} rows "
                           f"(largest magnitude {np.abs(vectors[overflow]).max():.3g}); set inforidge.extraction.dtype to float32")
    return values.numpy()


@contextmanager
def writer(path, width, dtype="float32"):
    """Yield `write(columns)` streaming record batches of this schema, with vectors stored as `dtype`
    (one of DTYPES), into `path` (infoflow.parquet)."""
    # Byte-stream split puts each byte of the floats in its own stream, so zstd can compress the
    # exponent bytes (and bfloat16's zero halves): files a quarter smaller than with snappy at float32,
    # a fifth at float16 (benchmarks/activation_dtype.py).
    encoding = {f"{name}.list.element": "BYTE_STREAM_SPLIT" for name in VECTOR_COLUMNS}
    with parquet.writer(path, schema(width, dtype), compression="zstd", column_encoding=encoding) as write:
        yield lambda columns: write({**columns, **{name: stored(path, name, columns[name], dtype) for name in VECTOR_COLUMNS}})


def check_schema(path, schema, columns):
    """Widths of the vector columns among `columns`; DataError naming the file and column for a
    missing column, a vector column of another type than a fixed-size list of float32 or float16, or
    vector columns of different widths."""
    for name in columns:
        if name not in schema.names:
            raise DataError(f"{path}: missing column '{name}'")
    widths = {}
    for name in (c for c in columns if c in VECTOR_COLUMNS):
        kind = schema.field(name).type
        if not pa.types.is_fixed_size_list(kind) or kind.value_type not in (pa.float32(), pa.float16()):
            raise DataError(f"{path}: column '{name}' is {kind}, expected a fixed-size list of float32 or float16")
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
    widths = check_schema(path, parquet.schema(path), columns)
    frame = parquet.scan(path, columns, where).with_columns(
        pl.col(name).cast(pl.Array(pl.Float32, width)) for name, width in widths.items())
    for name in (c for c in columns if c in VECTOR_COLUMNS):
        check_finite(path, name, frame[name].to_numpy())
    return frame


def read(path, columns=None):
    """The whole table at `path` (all columns or `columns`) as Arrow, checked as `scan` checks."""
    table = read_parquet(path, columns)
    wanted = columns or [*SCALAR_COLUMNS, *VECTOR_COLUMNS]
    for name, width in check_schema(path, table.schema, wanted).items():
        table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(pa.list_(pa.float32(), width)))
        check_finite(path, name, parquet.vectors(table, name))
    return table
