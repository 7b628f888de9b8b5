"""Streaming Parquet files of a fixed schema: one record batch at a time, the file appearing only complete."""

from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infoflow.io import atomic_path


def record_batch(columns, schema):
    """A record batch of `schema` from columns given as lists or arrays (a fixed-size list column
    takes a [rows, width] float array) or as one value repeated on every row (run tags)."""
    rows = next(len(v) for v in columns.values() if isinstance(v, (list, np.ndarray)))
    arrays = []
    for field in schema:
        value = columns[field.name]
        if pa.types.is_fixed_size_list(field.type):
            flat = pa.array(np.ascontiguousarray(value, dtype=field.type.value_type.to_pandas_dtype()).reshape(-1))
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, field.type.list_size))
        elif isinstance(value, (list, np.ndarray)):
            arrays.append(pa.array(value, type=field.type))
        else:
            arrays.append(pa.repeat(pa.scalar(value, type=field.type), rows))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@contextmanager
def writer(path, schema):
    """Yield `write(columns)` that appends one record batch to `path`; the file appears only when the
    block ends without error, so a killed job leaves no Parquet file a later rule could read."""
    with atomic_path(path) as tmp:
        # Dictionary encoding for the (repetitive) string columns only: on float vectors it tripled the
        # time of writing and saved nothing (benchmarks/extraction.py).
        strings = [field.name for field in schema if pa.types.is_string(field.type)]
        parquet = pq.ParquetWriter(str(tmp), schema, use_dictionary=strings)
        try:
            yield lambda columns: parquet.write_batch(record_batch(columns, schema))
        finally:
            parquet.close()


def vectors(table, column):
    """A fixed-size list column as a [rows, width] numpy array (no copy where Arrow allows)."""
    chunked = table.column(column).combine_chunks()
    return chunked.values.to_numpy(zero_copy_only=False).reshape(len(chunked), chunked.type.list_size)
