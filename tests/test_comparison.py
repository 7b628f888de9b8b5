import json

import numpy as np
import polars as pl
import pytest

from conftest import run_module
from infoflow.report.comparison import comparison_table, read_correctness
from infoflow.report.stats import Matrix, paired_bootstrap


def frame(rows):
    return Matrix(range(len(rows)), [f"q{i}" for i in range(len(rows[0]))], np.array(rows, dtype=float))


def test_paired_bootstrap_of_a_clear_gain_excludes_zero():
    rng = np.random.default_rng(0)
    baseline = frame((rng.random((3, 300)) < 0.5).astype(float).tolist())
    values = baseline.values.copy()
    values[:, :60] = 1.0  # the method fixes the first 60 items in every seed
    better = Matrix(baseline.rows, baseline.columns, values)
    gain = (better.values - baseline.values).mean()
    diff, low, high = paired_bootstrap(better, baseline, samples=500, seed=0)
    assert diff == pytest.approx(gain) and 0 < low < diff < high


def test_paired_bootstrap_of_identical_runs_is_zero_and_of_noise_spans_zero():
    rng = np.random.default_rng(1)
    a = frame((rng.random((3, 200)) < 0.6).astype(float).tolist())
    assert paired_bootstrap(a, a, samples=200, seed=0) == (0.0, 0.0, 0.0)
    b = frame((rng.random((3, 200)) < 0.6).astype(float).tolist())
    _, low, high = paired_bootstrap(a, b, samples=500, seed=0)
    assert low < 0 < high


def test_pairs_by_seed_and_example_id():
    baseline = Matrix([0, 1], ["a", "b"], [[1.0, 0.0], [0.0, 0.0]])
    method = Matrix([1, 0], ["b", "a", "c"], [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])  # reordered, extra item
    assert paired_bootstrap(method, baseline, samples=50, seed=0)[0] == pytest.approx(0.5)


def write_run(folder, method, seed, split, correct):
    stem = folder / f"{method}-{seed}-{split}"
    pl.DataFrame({"id": [f"q{i}" for i in range(len(correct))], "correct": correct}).write_csv(stem.with_suffix(".csv"))
    tags = {"task": "knowledge", "method": method, "seed": str(seed), "split": split}
    stem.with_suffix(".json").write_text(json.dumps({"n": len(correct), "accuracy": float(np.mean(correct)), "by_group": {}, "tags": tags}))
    return stem.with_suffix(".json")


def test_comparison_command_writes_differences_and_ablation(tmp_path):
    paths = []
    for seed in (0, 1):
        for split in ("test_id", "test_ood"):
            paths.append(write_run(tmp_path, "sft", seed, split, [True, False, False, False]))
            paths.append(write_run(tmp_path, "int", seed, split, [True, True, False, False]))
    methods = {"sft": {"kind": "sft"}, "int": {"kind": "intervention", "p": 0.01, "alpha": 2.0, "layers": "early+middle"}}
    table = comparison_table(read_correctness(paths), methods, samples=100, seed=0)
    row = table.filter((pl.col("method") == "int") & (pl.col("split") == "test_id")).row(0, named=True)
    assert row["diff_vs_sft"] == pytest.approx(0.25) and row["accuracy_mean"] == pytest.approx(0.5)
    out = {name: tmp_path / name for name in ("t.csv", "c.md", "a.md")}
    run_module("report.comparison", "--metrics", *paths, "--methods", json.dumps(methods), "--bootstrap-samples", 100,
               "--seed", 0, "--csv", out["t.csv"], "--comparison", out["c.md"], "--ablation", out["a.md"])
    assert "| knowledge | int | intervention | test_id | 50.0 | +25.0 |" in out["c.md"].read_text()
    assert "| knowledge | int | intervention | 1% | 2 |  | early+middle | 50.0 | 50.0 | 50.0 |" in out["a.md"].read_text()
