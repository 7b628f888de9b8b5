"""InfoRidge's depth threshold: the base models of each depth a config plans, the inner-peak drop
against a hand computation, claim 14's verdict over the pattern of depths, and its table and figure
from real CSV files."""

import numpy as np
import polars as pl
import pytest
import yaml

from conftest import REPO, copy_workflow, run_module, snakemake
from infoflow.base_models import base_folder, depth_methods, pretrained_models, with_depth_methods
from infoflow.config import ConfigError, check
from infoflow.report.claims import depth, preconditions
from infoflow.report.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, UNDERPOWERED
from infoflow.report.depth_tables import inner_peak_drop

SMOKE = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
DEFAULTS = yaml.safe_load((REPO / "config.yaml").read_text())
RIDGE = [0.0, 0.1, 0.3, 0.2]  # inner peak at layer 2, above the last layer: a ridge
CLIMB = [0.0, 0.1, 0.2, 0.3]  # rises to the last layer: none


def test_each_depth_is_an_sft_method_from_its_own_base_model():
    config = with_depth_methods(DEFAULTS)
    assert depth_methods(DEFAULTS) == {"sft_depth4": {"kind": "sft", "tasks": ["modular"], "base_layers": 4},
                                       "sft_depth8": {"kind": "sft", "tasks": ["modular"], "base_layers": 8}}
    assert base_folder(config, "modular", "sft_depth4") == "model-modular-layers4"
    assert base_folder(config, "modular", "sft") == "model-modular"  # depth 12 is the task's own model
    models = pretrained_models(config)
    assert sorted(models) == ["model", "model-modular", "model-modular-layers4", "model-modular-layers8"]
    corpus, settings = models["model-modular-layers4"]
    assert corpus == ["modular"] and settings["layers"] == 4
    assert {k: v for k, v in settings.items() if k != "layers"} == {k: v for k, v in models["model-modular"][1].items() if k != "layers"}
    assert depth_methods({**DEFAULTS, "base_model": {"pretrained": "gpt2"}}) == {}  # nothing is pretrained here


def test_bad_depth_settings_name_the_key():
    unanalysed = {**SMOKE, "inforidge": {**SMOKE["inforidge"], "tasks": ["knowledge"]}}
    with pytest.raises(ConfigError, match="inforidge.depths.task: modular is not a synthetic task whose runs InfoRidge analyses"):
        check(unanalysed)
    taken = {**SMOKE, "methods": {**SMOKE["methods"], "sft_depth2": {"kind": "sft"}}}
    with pytest.raises(ConfigError, match=r"methods: \['sft_depth2'\] are the names of the depth analysis's methods"):
        check(taken)


def test_the_smoke_dag_pretrains_and_fine_tunes_each_depth(tmp_path):
    workdir = copy_workflow(tmp_path)
    result = snakemake(workdir, "-n", "-p")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-2000:]
    world = next(line for line in out.splitlines() if "model-modular-layers2/model.safetensors" in line)
    assert "resources/base-" in world
    assert "--layers 2 " in out and "--layers 3 " in out  # the 2-layer depth and the task's own 3
    assert "runs/modular/sft_depth2/" in out and "depth_report" in out


def test_the_inner_peak_drop_by_hand():
    peaks, drops = inner_peak_drop(np.array([RIDGE, CLIMB, [0.5, 0.1, 0.2, 0.3]]))
    assert peaks.tolist() == [2, 2, 2]
    assert drops == pytest.approx([0.1, -0.1, -0.1])  # the embeddings' 0.5 is no inner peak


def curves(by_method, run_seeds=3, sample_seeds=3):
    """mi.csv rows of several depths' SFT runs: {method: mean curve over raw layers 0..L}, with noise."""
    rng = np.random.default_rng(0)
    rows = [{"task": "modular", "method": method, "seed": seed, "point": 1, "split": "test_id", "quantity": "hidden",
             "layer": layer, "final_norm": False, "sample_seed": sample, "mi": value + rng.normal(0, 0.005)}
            for method, curve in by_method.items() for seed in range(run_seeds) for sample in range(sample_seeds)
            for layer, value in enumerate(curve)]
    return pl.from_dicts(rows)


DEEP_RIDGE = [0.0, 0.1, 0.2, 0.4, 0.45, 0.3, 0.2]  # 6 layers
CASES = {
    "threshold": ({"sft_depth3": CLIMB, "sft": DEEP_RIDGE}, REPRODUCED),
    "none anywhere": ({"sft_depth3": CLIMB, "sft": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}, NOT_REPRODUCED),
    "lost with depth": ({"sft_depth3": RIDGE, "sft": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}, NOT_REPRODUCED),
    "everywhere": ({"sft_depth3": RIDGE, "sft": DEEP_RIDGE}, INCONCLUSIVE),
}


@pytest.mark.parametrize("case", CASES)
def test_the_ridge_appears_only_beyond_a_depth(case):
    by_method, expected = CASES[case]
    claim = depth.claim_depth_threshold(curves(by_method), "modular", list(by_method), 200, 0)
    assert claim.verdict == expected, claim
    assert claim.measurement.startswith("modular, 3 layers: inner peak at layer 2")  # depths ascending


def test_the_pattern_verdict():
    assert depth.pattern_verdict([NOT_REPRODUCED, INCONCLUSIVE, REPRODUCED]) == INCONCLUSIVE
    assert depth.pattern_verdict([NOT_REPRODUCED, UNDERPOWERED]) == UNDERPOWERED
    assert depth.pattern_verdict([REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED  # decided parts contradict
    assert depth.pattern_verdict([NOT_REPRODUCED, NOT_REPRODUCED, REPRODUCED]) == REPRODUCED


def test_fewer_than_two_depths_is_not_tested():
    assert depth.claim_depth_threshold(curves({"sft": DEEP_RIDGE}), "modular", ["sft"], 200, 0).verdict == NOT_TESTED
    assert depth.claim_depth_threshold(curves({"sft": DEEP_RIDGE}), "modular", [], 200, 0).verdict == NOT_TESTED


def exits(by_method, last):
    return pl.from_dicts([{"task": "modular", "method": method, "seed": seed, "point": 1, "split": "test_id", "layer": layer,
                           "final_norm": False, "accuracy": last[method] if layer == len(curve) - 1 else 0.0}
                          for method, curve in by_method.items() for seed in range(3) for layer in range(len(curve))])


def test_each_depth_must_have_learned_the_task():
    by_method = CASES["threshold"][0]
    inputs = {"mi": curves(by_method), "early_exit": exits(by_method, {"sft_depth3": 0.5, "sft": 0.99}), "depth_task": "modular", "depth_methods": list(by_method),
              "steering": pl.DataFrame(schema={"task": pl.String, "method": pl.String, "kind": pl.String, "split": pl.String,
                                               "accuracy_mean": pl.Float64, "seeds": pl.Float64}),
              "key_shares": pl.DataFrame(schema={"method": pl.String, "seed": pl.String}), "flux_tokens": None,
              "betas": pl.DataFrame(schema={"method": pl.String, "task": pl.String, "run_seed": pl.Int64}), "recall": None, "format_rates": {}}
    checks = preconditions.measure(inputs)
    texts = [c.text() for c in checks["depth_task_learned"]]
    assert texts[0] == "the task is learned: SFT's ID early-exit accuracy at the last layer (modular sft_depth3) 50.0%, needs >= 93.0%: fails"
    assert texts[1].endswith("(modular sft) 99.0%, needs >= 93.0%: holds")
    assert checks["depth_seeds"][0].value == 3


def test_table_and_figure_from_real_files(tmp_path):
    by_method = CASES["threshold"][0]
    mi, exit_file = tmp_path / "mi.csv", tmp_path / "early_exit.csv"
    curves(by_method).write_csv(mi)
    exits(by_method, {"sft_depth3": 0.95, "sft": 0.99}).write_csv(exit_file)
    out = {name: tmp_path / name for name in ("depth.csv", "curves.csv", "depth.md", "depth.png")}
    run_module("report.depth_tables", "--mi", mi, "--early-exit", exit_file, "--task", "modular", "--methods", "sft_depth3", "sft",
               "--bootstrap-samples", 100, "--seed", 0, "--summary", out["depth.csv"], "--curves", out["curves.csv"],
               "--markdown", out["depth.md"])
    summary = pl.read_csv(out["depth.csv"])
    assert summary["layers"].to_list() == [3, 6] and summary["ridge_layer"].to_list() == [3, 4]
    assert summary["drop_high"][0] < 0 < summary["drop_low"][1]
    assert summary["last_layer_exit_id"].to_list() == pytest.approx([0.95, 0.99])
    assert pl.read_csv(out["curves.csv"]).filter(pl.col("layers") == 6)["relative_depth"].max() == 1.0
    run_module("report.depth_figures", "--summary", out["depth.csv"], "--curves", out["curves.csv"], "--dpi", 40,
               "--figure", out["depth.png"])
    assert out["depth.png"].read_bytes()[:4] == b"\x89PNG"
