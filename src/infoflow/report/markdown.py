"""Markdown tables and the number formats the report's tables share (for people; the CSVs keep full precision)."""

import math


def missing(value):
    """Whether a cell is empty: None (null) or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def cell(value):
    """A table cell: empty for a missing value, else the value's text with `|` escaped as `\\|`."""
    return "" if missing(value) else str(value).replace("|", "\\|")


def table(frame, title):
    """`# title` and a Markdown table of a polars DataFrame (header from its columns, one line per row)."""
    header = "| " + " | ".join(map(cell, frame.columns)) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return f"# {title}\n\n{header}" + "\n".join(rows) + "\n"


def percent(x, empty="n/a"):
    """A fraction as percent with one decimal ('55.0'); `empty` for a missing value."""
    return empty if missing(x) else f"{100 * x:.1f}"


def points(x, empty=""):
    """A difference of fractions in signed percentage points ('+2.5'); `empty` for a missing value
    (None: format it anyway, 'nan')."""
    return empty if empty is not None and missing(x) else f"{100 * x:+.1f}"
