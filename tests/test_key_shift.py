import json

import pytest
import torch

from conftest import run_module
from infoflow.training import models
from infoflow.infosteer.key_shift import collect_keys, sample_prompts, shares, thresholds


def test_shares_on_hand_made_keys():
    keys = [torch.arange(8.0), torch.tensor([-1.0, 0.0, 0.0, 5.0])]
    layer_thresholds = [{"p25": 2.0, "p75": 5.0}, {"p25": -0.5, "p75": 1.0}]
    result = shares(keys, layer_thresholds)
    assert result["per_layer"] == [{"low": 0.25, "medium": 0.5, "high": 0.25}, {"low": 0.25, "medium": 0.5, "high": 0.25}]
    assert result["overall"] == {"low": 0.25, "medium": 0.5, "high": 0.25}
    # Shifting every key up moves mass from low towards high.
    shifted = shares([k + 2.5 for k in keys], layer_thresholds)["overall"]
    assert shifted["low"] < 0.25 and shifted["high"] > 0.25


def test_collected_keys_are_the_real_tokens_keys(tiny_world, tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    prompts = sample_prompts(tiny_world["paths"]["k_test_id"], 5, seed=0)
    keys = collect_keys(model, tokenizer, prompts, batch_size=2)
    n_tokens = sum(len(tokenizer(p).input_ids) for p in prompts)
    assert [k.numel() for k in keys] == [n_tokens * 64] * 2  # d_m = 64 per token, 2 layers
    # One prompt alone gives the same first keys as in the padded batch.
    alone = collect_keys(model, tokenizer, prompts[:1], batch_size=1)
    assert torch.allclose(alone[0], keys[0][: alone[0].numel()], atol=1e-5)
    base = shares(keys, thresholds(keys))["overall"]
    assert base["low"] == pytest.approx(0.25, abs=0.01) and base["high"] == pytest.approx(0.25, abs=0.01)


def test_thresholds_shares_and_report_commands(tiny_world, tiny_model_dir, tmp_path):
    common = ["--model", tiny_model_dir, "--examples", tiny_world["paths"]["k_test_id"], "--n", 6, "--seed", 0,
              "--batch-size", 4, "--threads", 1]
    run_module("infosteer.key_shift", "thresholds", *common, "--out", tmp_path / "t.json", "--shares", tmp_path / "base.json")
    run_module("infosteer.key_shift", "shares", *common, "--thresholds", tmp_path / "t.json", "--tags", "method=sft", "seed=0",
               "--out", tmp_path / "sft.json")
    # The same model against its own thresholds reproduces the base shares.
    assert json.loads((tmp_path / "sft.json").read_text())["overall"] == json.loads((tmp_path / "base.json").read_text())["overall"]
    run_module("report.key_shift_tables", "--shares", tmp_path / "base.json", tmp_path / "sft.json",
               "--csv", tmp_path / "r.csv", "--markdown", tmp_path / "r.md")
    run_module("report.key_shift_figures", "--table", tmp_path / "r.csv", "--dpi", 40, "--figure", tmp_path / "r.png")
    assert "| base | 1 |" in (tmp_path / "r.md").read_text() and "| sft | 1 |" in (tmp_path / "r.md").read_text()
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
