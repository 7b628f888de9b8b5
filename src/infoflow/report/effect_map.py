"""The effect map's table (results/<sweep>/effect_map.csv): every claim part of every point of a sweep
(infoflow.report.sweep), from the point's claims_parts.csv, with the claim's sentence and verdict from
its claims.csv and the point's settings as columns.

A claim judged without parts (not tested) keeps one row with an empty part, so that every claim
shows at every point. A part is known across points by its place in its claim (part_index); its label
carries the point's own figures. The settings columns are the grid's dotted config keys, whatever
they are (axes()); nothing here or in the figure (points in grid order, by name) knows a particular
axis. That is the seam for InfoRidge's capacity analysis (issue 21): the ridge claims' rows (8-12)
against the depth axis of a sweep over it (base_model.own_models.modular.layers in presets/sweeps/worlds.yaml).
"""

import json
from pathlib import Path

import polars as pl

from infoflow.report.claims.check import PART_SCHEMA

POINT_COLUMNS = ("point", "run")
ROW_COLUMNS = ("number", "claim", "part_index", *(c for c in PART_SCHEMA if c != "number"))


def folder(run):
    return Path("results") / run


def has_claims(run):
    return all((folder(run) / name).is_file() for name in ("claims.csv", "claims_parts.csv"))


def point_rows(run):
    """Every claim of one run with its parts (infoflow.report.claims.check's files), in claim order."""
    claims = pl.read_csv(folder(run) / "claims.csv", schema_overrides={"number": pl.String}, infer_schema=False)
    parts = pl.read_csv(folder(run) / "claims_parts.csv", schema_overrides=PART_SCHEMA)
    parts = parts.drop("claim_verdict").with_columns(part_index=pl.int_range(pl.len()).over("number"))
    claims = claims.select("number", "claim", claim_verdict="verdict")
    return claims.join(parts, on="number", how="left", maintain_order="left")


def cell(value):
    """A setting as a table cell: numbers and text as they are, lists and mappings as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def collect(points):
    """effect_map.csv from [(point name, run, {dotted config key: value})]."""
    frames = [point_rows(run).with_columns(point=pl.lit(name), run=pl.lit(run), **{k: pl.lit(cell(v)) for k, v in settings.items()})
              for name, run, settings in points]
    table = pl.concat(frames, how="vertical_relaxed")
    return table.select(*POINT_COLUMNS, *axes(table), *ROW_COLUMNS)


def read(path):
    """effect_map.csv as collect() wrote it (the settings columns' types inferred)."""
    return pl.read_csv(path, schema_overrides={**PART_SCHEMA, "point": pl.String, "run": pl.String, "claim": pl.String, "part_index": pl.Int64})


def axes(table):
    """The settings columns of an effect map table, in grid order."""
    return [c for c in table.columns if c not in (*POINT_COLUMNS, *ROW_COLUMNS)]
