"""The headline figures a benchmark hands to benchmarks/run_all.py: `--json PATH` on each script
writes them as a list of {figure, value, target, met} rows (met: True, False, or None without a
target), which run_all.py puts into BENCHMARKS.md."""

import json


def add_argument(parser):
    parser.add_argument("--json", help="write the headline figures to this JSON file (benchmarks/run_all.py)")


def row(figure, value, target="", met=None):
    return {"figure": figure, "value": value, "target": target, "met": met}


def write(path, rows):
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


def print_table(rows):
    print("| figure | value | target |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['figure']} | {r['value']} | {r['target']} |")
