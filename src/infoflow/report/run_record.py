"""A run's record beside its results: the merged, validated config (given as JSON) as YAML, and the
index of its per-run folders (JSON rows, one per task, method and seed) as a CSV file."""

import argparse
import json

import polars as pl
import yaml

from infoflow.io import write_csv, write_text


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config-json", required=True)
    parser.add_argument("--runs-json", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", required=True)
    args = parser.parse_args()
    write_text(args.out, yaml.safe_dump(json.loads(args.config_json), sort_keys=False))
    write_csv(args.runs, pl.DataFrame(json.loads(args.runs_json)))


if __name__ == "__main__":
    main()
