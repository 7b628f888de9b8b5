import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from conftest import run_module
from infoflow.inforidge import activations
from infoflow.report import ridge_tables
from infoflow.inforidge.ridge import Checkpoint, early_exit, information, linear_probes

LAYERS, EXAMPLES, WIDTH, CLASSES = 4, 60, 8, 3


def planted_checkpoint(path, point=1, signal_layer=3, seed=0):
    """Activations where layer `signal_layer` is the target embedding plus a little noise and the
    other layers are noise; early exit is right on layers >= 2; the labels are CLASSES tokens."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CLASSES, EXAMPLES)
    embedding = rng.normal(size=(CLASSES, WIDTH))
    columns = {name: [] for name in [*activations.SCALAR_COLUMNS, *activations.VECTOR_COLUMNS]}
    for split in ("test_id", "test_ood"):
        for example in range(EXAMPLES):
            for layer, final in [*((l, False) for l in range(LAYERS + 1)), (LAYERS, True)]:
                state = embedding[tokens[example]] + 0.3 * rng.normal(size=WIDTH) if layer == signal_layer and not final else rng.normal(size=WIDTH)
                row = {"run": "t/m/seed0", "task": "t", "method": "m", "seed": 0, "point": point, "step": 10 * point,
                       "split": split, "example_id": f"{split}-{example:03d}", "layer": layer, "final_norm": final,
                       "target_token": tokens[example], "early_exit_token": tokens[example] if layer >= 2 else -1,
                       "hidden": state, "residual": rng.normal(size=WIDTH), "target": embedding[tokens[example]]}
                for key, value in row.items():
                    columns[key].append(value)
    columns.update({name: np.array(columns[name]) for name in activations.VECTOR_COLUMNS})
    with activations.writer(path, WIDTH) as write:
        write(columns)
    return path


def test_information_peaks_at_the_planted_layer(tmp_path):
    checkpoint = Checkpoint(planted_checkpoint(tmp_path / "a.parquet"))
    table = information(checkpoint, n=40, seeds=3, kernel="gaussian", sigma=1.0, alpha=1.0)
    assert len(table) == 2 * 3 * 2 * (LAYERS + 2)  # splits x seeds x quantities x layer rows
    hidden = table.filter((pl.col("quantity") == "hidden") & ~pl.col("final_norm"))
    curve = dict(hidden.group_by("layer").agg(pl.col("mi").mean()).iter_rows())
    others = max(mi for layer, mi in curve.items() if layer != 3)
    assert max(curve, key=curve.get) == 3 and curve[3] > 1.5 * others  # noise layers carry only the estimator bias
    # Different sampling seeds draw different examples, hence different estimates.
    assert hidden.filter(pl.col("layer") == 3)["mi"].n_unique() > 1


def accuracy_by_layer(table):
    """{(split, layer, final_norm): accuracy} of an early-exit or probe table."""
    rows = table.select("split", "layer", "final_norm", "accuracy").iter_rows()
    return {(split, layer, final): accuracy for split, layer, final, accuracy in rows}


def test_early_exit_and_probes_read_the_planted_answers(tmp_path):
    checkpoint = Checkpoint(planted_checkpoint(tmp_path / "a.parquet"))
    exits = accuracy_by_layer(early_exit(checkpoint))
    assert exits[("test_id", 1, False)] == 0 and exits[("test_id", 2, False)] == 1 and exits[("test_ood", LAYERS, True)] == 1
    probes = accuracy_by_layer(linear_probes(checkpoint, seed=0))
    assert probes[("test_id", 3, False)] > 0.9 and probes[("test_id", 1, False)] < 0.7


def test_more_examples_than_extracted_is_an_error_naming_the_count(tmp_path):
    path = planted_checkpoint(tmp_path / "a.parquet")
    result = run_module("inforidge.ridge", "--activations", path, "--examples", 500, "--sample-seeds", 1, "--kernel", "gaussian",
                        "--sigma", 1, "--alpha", 1, "--probe-seed", 0, "--threads", 1, "--mi", tmp_path / "mi.csv",
                        "--early-exit", tmp_path / "e.csv", "--probes", tmp_path / "p.csv", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "N = 500 examples requested for the MI estimate, 60 exist in test_id" in result.stderr
    assert not (tmp_path / "mi.csv").exists()


def test_tables_find_the_ridge_per_seed_and_over_checkpoints(tmp_path):
    outputs = {}
    for seed, layer in [(0, 3), (1, 2)]:
        paths = [planted_checkpoint(tmp_path / f"s{seed}p{p}.parquet", point=p, signal_layer=layer if p else 1, seed=seed) for p in (0, 1)]
        prefix = tmp_path / f"seed{seed}"
        run_module("inforidge.ridge", "--activations", *paths, "--examples", 40, "--sample-seeds", 2, "--kernel", "gaussian",
                   "--sigma", 1, "--alpha", 1, "--probe-seed", 0, "--threads", 1, "--mi", f"{prefix}-mi.csv",
                   "--early-exit", f"{prefix}-e.csv", "--probes", f"{prefix}-p.csv")
        outputs[seed] = prefix
    for seed in outputs:  # the fixture's run tag says seed 0 for both: make them two runs
        frame = pd.read_csv(f"{outputs[seed]}-mi.csv").assign(seed=seed, method="sft")
        frame.to_csv(f"{outputs[seed]}-mi.csv", index=False)
        for kind in ("e", "p"):
            pd.read_csv(f"{outputs[seed]}-{kind}.csv").assign(seed=seed, method="sft").to_csv(f"{outputs[seed]}-{kind}.csv", index=False)
    out = {name: tmp_path / f"{name}.out" for name in ("layers", "ridge", "betas", "md")}
    run_module("report.ridge_tables", "--mi", *(f"{p}-mi.csv" for p in outputs.values()),
               "--early-exit", *(f"{p}-e.csv" for p in outputs.values()), "--probes", *(f"{p}-p.csv" for p in outputs.values()),
               "--layers", out["layers"], "--ridge", out["ridge"], "--residual-scaling", out["betas"], "--markdown", out["md"])
    ridge = pl.read_csv(out["ridge"], schema_overrides={"seed": pl.String})
    last = dict(ridge.filter((pl.col("point") == 1) & (pl.col("split") == "test_id")).select("seed", "ridge_layer").iter_rows())
    assert last["0"] == 3 and last["1"] == 2
    assert set(ridge.filter(pl.col("point") == 0)["ridge_layer"]) == {1}
    layers = pl.read_csv(out["layers"])
    assert {"mi_hidden", "mi_hidden_band", "mi_residual", "early_exit", "probe", "step"} <= set(layers.columns)
    assert layers["probe"].is_not_null().sum() == 2 * (LAYERS + 2)  # last checkpoint only
    markdown = out["md"].read_text()
    assert "paper Table 1" in markdown and "4 (after final norm)" in markdown


def test_beta_table_and_accuracy_change(tmp_path):
    betas = pl.DataFrame({"task": "t", "method": "sft", "fit_split": ["id", "id", "ood", "ood"], "layer": [1, 1, 1, 1],
                          "beta": [1.0, 1.2, 0.5, 0.7], "seed": [0, 1, 0, 1]})
    table = dict(ridge_tables.beta_table(betas).select("fit_split", "beta_mean").iter_rows())
    assert table["id"] == pytest.approx(1.1) and table["ood"] == pytest.approx(0.6)
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"tags": {"task": "t", "method": "sft"}, "fits": [
        {"fit_split": "ood", "accuracy_before": {"id": 0.9, "ood": 0.2}, "accuracy_after": {"id": 0.8, "ood": 0.4}}]}))
    change = {row["measured_on"]: row for row in ridge_tables.accuracy_change([summary]).iter_rows(named=True)}
    assert change["ood"]["after"] == pytest.approx(0.4) and change["id"]["before"] == pytest.approx(0.9)
