"""A sweep: the whole pipeline over a grid of world and model settings, as named runs side by side,
and the effect map across them.

    python -m infoflow.report.sweep SWEEP.yaml [--profile PROFILE] [Snakemake options, e.g. -n]
    make sweep   (SWEEP ?= presets/sweeps/worlds.yaml, PROFILE ?= workflow/profiles/local, ARGS ?=)

A sweep file has
  sweep        its name: results/<sweep>/ holds points/ (each point's config overlay) and the effect
               map (effect_map.csv, effect_map.png); a point runs as `run: <sweep>-<point>`;
  configfiles  config files under every point, after config.yaml (optional);
  base         an overlay applied to every point (optional), e.g. a cheaper design;
  labels       a short name per axis for the point names (optional; default the key's last part);
  grid         the axes: a dotted config key and its values, or a name and a list of mappings of
               dotted keys set together (e.g. fewer QA documents with more pretraining epochs, so
               that the pretraining budget stays the same). Points are the product of the axes,
               named by their values, e.g. qa20-layers12.

Every point is planned first (a dry run through the same profile), so that a bad key or value stops
the sweep with one line naming it and the file before any job runs and before anything is written.
The points then run one after another through the profile, as any run does: locally, or on SLURM,
where each point's jobs run in parallel as cluster jobs. What points share (a world and base model of
equal settings, post-training runs) is computed once, in resources/.

The effect map reads each point's claims (infoflow.report.effect_map), with the point's settings as
columns, and its figure is drawn by infoflow.report.effect_map_figures. Both read the axes
generically from those columns: the depth axis (base_model.own_models.modular.layers) is also InfoRidge's capacity
analysis (issue 21), which can read the ridge claims' rows of effect_map.csv against it.
"""

import argparse
import copy
import itertools
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from infoflow.io import write_csv, write_text
from infoflow.report import effect_map

SCHEMA = Path("workflow/schemas/config.schema.yaml")  # the workflow's, from its folder (where Snakemake runs)
SWEEP_KEYS = ("sweep", "configfiles", "base", "labels", "grid")
RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # the schema's pattern for `run`


class SweepError(ValueError):
    """A bad sweep file; the message names the key."""


@dataclass(frozen=True)
class Point:
    name: str
    settings: dict  # dotted config key -> value


@dataclass(frozen=True)
class Sweep:
    path: str  # the sweep file
    name: str
    configfiles: list
    base: dict
    points: list

    def run(self, point):
        return f"{self.name}-{point.name}"

    def overlay_file(self, point):
        return Path("results") / self.name / "points" / f"{point.name}.yaml"

    def overlay(self, point):
        """The point's config overlay: `base` with the point's settings, under its own run name."""
        config = copy.deepcopy(self.base)
        for key, value in point.settings.items():
            *sections, last = key.split(".")
            node = config
            for section in sections:
                node = node.setdefault(section, {})
            node[last] = value
        return {"run": self.run(point), **config}

    def overlay_text(self, point):
        return f"# point {point.name} of {self.path} (infoflow.report.sweep)\n" + yaml.safe_dump(self.overlay(point), sort_keys=False)


def in_schema(node, parts, defs):
    """Whether the config schema `node` (or one of its branches) has the key path `parts`."""
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    if not parts:
        return True
    children = [node.get("properties", {}).get(parts[0]), node.get("additionalProperties")]  # a key, or a named entry
    branches = [*node.get("allOf", []), *node.get("anyOf", []), *node.get("oneOf", []), node.get("then"), node.get("else")]
    return (any(isinstance(child, dict) and in_schema(child, parts[1:], defs) for child in children)
            or any(isinstance(branch, dict) and in_schema(branch, parts, defs) for branch in branches))


def axis(key, values, label, schema):
    """[(name part, {dotted key: value})] of one grid axis, its keys checked against the schema."""
    if not isinstance(values, list) or not values:
        raise SweepError(f"grid.{key}: no values (give a list of one or more)")
    tied = all(isinstance(value, dict) and value for value in values)  # each value sets several keys
    if tied and any(value.keys() != values[0].keys() for value in values):
        raise SweepError(f"grid.{key}: every value must set the same keys ({', '.join(values[0])})")
    settings = values if tied else [{key: value} for value in values]
    for name in settings[0]:
        where = f"grid.{key}" + (f": {name}" if tied else "")
        if name == "run":
            raise SweepError(f"{where}: the sweep names each point's run (<sweep>-<point>)")
        if not in_schema(schema, name.split("."), schema.get("$defs", {})):
            raise SweepError(f"{where}: not a config key ({SCHEMA})")
    return [(f"{label}{next(iter(keys.values()))}", keys) for keys in settings]


def read(path):
    """The checked Sweep of a sweep file."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SweepError(str(e).splitlines()[0]) from e
    if not isinstance(spec, dict):
        raise SweepError(f"not a mapping of {', '.join(SWEEP_KEYS)}")
    for key in spec:
        if key not in SWEEP_KEYS:
            raise SweepError(f"{key}: unknown key (a sweep file has {', '.join(SWEEP_KEYS)})")
    name, grid, base, labels = spec.get("sweep"), spec.get("grid"), spec.get("base") or {}, spec.get("labels") or {}
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        raise SweepError(f"sweep: {name!r} is not a name of letters, digits, '_', '.' and '-'")
    if not isinstance(grid, dict) or not grid:
        raise SweepError("grid: no axes (give dotted config keys and their values)")
    if not isinstance(base, dict) or "run" in base:
        raise SweepError("base: not a config overlay without `run` (the sweep names each point's run, <sweep>-<point>)")
    for key in labels:
        if key not in grid:
            raise SweepError(f"labels.{key}: not an axis of grid")
    if not SCHEMA.is_file():
        raise SweepError(f"no {SCHEMA} here: run the sweep from the workflow's folder")
    schema = yaml.safe_load(SCHEMA.read_text())
    axes = [axis(key, values, labels.get(key, key.rsplit(".", 1)[-1]), schema) for key, values in grid.items()]
    points = [Point("-".join(part for part, _ in combination), {k: v for _, keys in combination for k, v in keys.items()})
              for combination in itertools.product(*axes)]
    for point in points:
        if not RUN_NAME.fullmatch(point.name):
            raise SweepError(f"grid: point {point.name!r} is not a run name (letters, digits, '_', '.', '-'); give its axis plain values")
    if len({point.name for point in points}) < len(points):
        raise SweepError("grid: two points have the same name (an axis repeats a value)")
    return Sweep(str(path), name, list(spec.get("configfiles") or []), base, points)


def snakemake(profile, options, configfiles):
    """The Snakemake command of one point; the options first, so that none is read as a config file."""
    return [sys.executable, "-m", "snakemake", "--profile", profile, *options, "--configfile", *configfiles]


def plan(sweep, profile, options):
    """Dry-run every point before any runs (the workflow's own config, profile and DAG checks); the
    output of each."""
    outputs = []
    with tempfile.TemporaryDirectory() as folder:
        for point in sweep.points:
            overlay = Path(folder) / f"{point.name}.yaml"
            write_text(overlay, sweep.overlay_text(point))
            command = snakemake(profile, options, [*sweep.configfiles, overlay])
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode:
                lines = (result.stderr or result.stdout).strip().splitlines() or [f"snakemake exit {result.returncode}"]
                raise SweepError(f"point {point.name} ({point.settings}): {lines[-1]}")
            outputs.append(result.stdout + result.stderr)
    return outputs


def draw(sweep):
    """The effect map from every point's claims, or a line saying which points have none yet."""
    runs = [(point.name, sweep.run(point), point.settings) for point in sweep.points]
    missing = [point for point, run, _ in runs if not effect_map.has_claims(run)]
    if missing:
        print(f"sweep {sweep.name}: effect map not drawn: no claims yet for {', '.join(missing)}")
        return
    table = Path("results") / sweep.name / "effect_map.csv"
    write_csv(table, effect_map.collect(runs))
    # Drawn by its own command, as every figure of the pipeline: tables never import figure code.
    figure = [sys.executable, "-m", "infoflow.report.effect_map_figures", "--table", str(table), "--out", str(table.with_suffix(".png"))]
    if subprocess.run(figure, check=False).returncode:
        sys.exit(f"sweep error: the effect map's figure failed (above); the table is {table}")
    print(f"sweep {sweep.name}: {table} and {table.with_suffix('.png')}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("sweep", help="the sweep file (presets/sweeps/worlds.yaml)")
    parser.add_argument("--profile", default="workflow/profiles/local", help="the Snakemake profile of every point")
    args, options = parser.parse_known_args(argv)  # the rest goes to Snakemake
    try:
        if {"--configfile", "--configfiles"} & set(options):
            raise SweepError("configfiles: give a sweep's config files there, not as --configfile (the point's overlay comes last)")
        sweep = read(args.sweep)
        dry_run = bool({"-n", "--dry-run", "--dryrun"} & set(options))
        plans = plan(sweep, args.profile, options if dry_run else [*options, "--dry-run", "--quiet"])
    except SweepError as e:
        sys.exit(f"sweep error: {args.sweep}: {e}")
    for point in sweep.points:
        write_text(sweep.overlay_file(point), sweep.overlay_text(point))
    for index, (point, planned) in enumerate(zip(sweep.points, plans), 1):
        print(f"sweep {sweep.name}, point {index}/{len(sweep.points)}: {sweep.run(point)}", flush=True)
        if dry_run:  # the plan was the run asked for: shown, not repeated
            print(planned, end="")
            continue
        code = subprocess.run(snakemake(args.profile, options, [*sweep.configfiles, sweep.overlay_file(point)]), check=False).returncode
        if code:
            sys.exit(f"sweep error: point {point.name} failed (snakemake exit {code}); the points before it are done, "
                     "and running the sweep again goes on where it stopped")
    draw(sweep)


if __name__ == "__main__":
    main()
