"""Parquet files of a fixed schema: written one record batch at a time, the file appearing only
complete; read lazily, only the columns and rows an analysis needs (polars)."""

from contextlib import contextmanager

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from infoflow.io import DataError, atomic_path


def record_batch(columns, schema):
    """A record batch of `schema` from columns given as lists or arrays (a fixed-size list column
    takes a [rows, width] float array) or as one value repeated on every row (run tags)."""
    rows = next(len(v) for v in columns.values() if isinstance(v, (list, np.ndarray)))
    arrays = []
    for field in schema:
        value = columns[field.name]
        if pa.types.is_fixed_size_list(field.type):
            # to_pandas_dtype: Arrow's numpy dtype of the items (pandas is not involved)
            flat = pa.array(np.ascontiguousarray(value, dtype=field.type.value_type.to_pandas_dtype()).reshape(-1))
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, field.type.list_size))
        elif isinstance(value, (list, np.ndarray)):
            arrays.append(pa.array(value, type=field.type))
        else:
            arrays.append(pa.repeat(pa.scalar(value, type=field.type), rows))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@contextmanager
def writer(path, schema, **options):
    """Yield `write(columns)` that appends one record batch to `path`; the file appears only when the
    block ends without error, so a killed job leaves no Parquet file a later rule could read.
    `options` go to pyarrow's ParquetWriter (e.g. compression, column_encoding)."""
    with atomic_path(path) as tmp:
        # Dictionary encoding for the (repetitive) string columns only: on float vectors it tripled the
        # time of writing and saved nothing (benchmarks/extraction.py).
        strings = [field.name for field in schema if pa.types.is_string(field.type)]
        parquet = pq.ParquetWriter(str(tmp), schema, use_dictionary=strings, **options)
        try:
            yield lambda columns: parquet.write_batch(record_batch(columns, schema))
        finally:
            parquet.close()


def vectors(table, column):
    """A fixed-size list column as a [rows, width] numpy array (no copy where Arrow allows)."""
    chunked = table.column(column).combine_chunks()
    return chunked.values.to_numpy(zero_copy_only=False).reshape(len(chunked), chunked.type.list_size)


def unreadable(path, error):
    return DataError(f"{path}: not a readable Parquet file ({error})")


def schema(path):
    """The Arrow schema of the file at `path`, from its footer alone; DataError naming the file if it
    is missing, truncated or not Parquet."""
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise unreadable(path, e) from None


def scan(path, columns, where=None):
    """The `columns` of the rows of `path` where the polars expression `where` holds (all rows
    without one), as a polars DataFrame in file order. A lazy scan: only those columns are read, and
    row groups whose statistics rule `where` out are skipped. DataError as `schema`'s."""
    query = pl.scan_parquet(path)
    if where is not None:
        query = query.filter(where)
    try:
        return query.select(columns).collect()
    except (OSError, pl.exceptions.PolarsError) as e:
        raise unreadable(path, e) from None
