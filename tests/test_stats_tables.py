import json
import math

import polars as pl
import pytest

from conftest import run_module
from infoflow.report.stats import mean_ci95
from infoflow.report.markdown import table as markdown_table
from infoflow.report.tables import accuracy_table, read_metrics


def test_mean_ci95_matches_the_t_interval():
    mean, low, high = mean_ci95([1.0, 2.0, 3.0])
    # t(0.975, df=2) = 4.302653; sd = 1; half-width = t * sd / sqrt(3)
    assert mean == 2.0
    assert high - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert mean - low == pytest.approx(high - mean)
    assert mean_ci95([0.5, 0.5]) == (0.5, 0.5, 0.5)
    single = mean_ci95([0.7])
    assert single[0] == 0.7 and math.isnan(single[1]) and math.isnan(single[2])


def write_metrics(folder, task, method, seed, split, accuracy, n=10):
    path = folder / f"{task}-{method}-{seed}-{split}.json"
    tags = {"task": task, "method": method, "seed": str(seed), "split": split}
    path.write_text(json.dumps({"n": n, "accuracy": accuracy, "by_group": {}, "tags": tags}))
    return path


def test_accuracy_table_aggregates_over_seeds(tmp_path):
    paths = [write_metrics(tmp_path, "knowledge", "sft", seed, split, acc)
             for seed, (a_id, a_ood) in enumerate([(0.6, 0.2), (0.7, 0.3), (0.8, 0.1)])
             for split, acc in (("test_id", a_id), ("test_ood", a_ood))]
    table = {row["split"]: row for row in accuracy_table(read_metrics(paths)).iter_rows(named=True)}
    assert table["test_id"]["accuracy_mean"] == pytest.approx(0.7)
    assert table["test_ood"]["accuracy_mean"] == pytest.approx(0.2)
    assert table["test_id"]["seeds"] == 3 and table["test_id"]["per_seed"] == "0.6000 0.7000 0.8000"
    low, high = table["test_id"]["ci95_low"], table["test_id"]["ci95_high"]
    assert low < 0.7 < high


def test_accuracy_interval_stays_inside_zero_one(tmp_path):
    paths = [write_metrics(tmp_path, "modular", "sft", seed, "test_id", acc) for seed, acc in enumerate([0.98, 1.0, 1.0])]
    row = accuracy_table(read_metrics(paths)).row(0, named=True)
    assert row["ci95_high"] == 1.0 and 0.9 < row["ci95_low"] < row["accuracy_mean"]


def test_tables_and_figure_commands(tmp_path):
    paths = [write_metrics(tmp_path, task, "sft", seed, split, 0.1 * seed + (0.5 if split == "test_id" else 0.2))
             for task in ("knowledge", "modular") for seed in (0, 1) for split in ("test_id", "test_ood")]
    csv, md, png = tmp_path / "acc.csv", tmp_path / "acc.md", tmp_path / "acc.png"
    run_module("report.tables", "accuracy", "--metrics", *paths, "--csv", csv, "--markdown", md)
    table = pl.read_csv(csv)
    assert len(table) == 4 and set(table["task"]) == {"knowledge", "modular"}
    lines = md.read_text().splitlines()
    assert lines[0].startswith("# ") and lines[2].startswith("| task | method | split |")
    assert "| knowledge | sft | test_id | 55.0 |" in md.read_text()
    run_module("report.figures", "accuracy", "--table", csv, "--dpi", 40, "--out", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_table_escapes_pipes_and_leaves_missing_cells_empty():
    frame = pl.DataFrame({"name": ["a|b", "c"], "value": [1.5, float("nan")], "note": [None, "x || y"]})
    text = markdown_table(frame, "Title")
    assert text.splitlines() == ["# Title", "", "| name | value | note |", "|---|---|---|", "| a\\|b | 1.5 |  |", "| c |  | x \\|\\| y |"]
