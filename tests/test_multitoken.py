import math

import numpy as np
import polars as pl
import pytest
import torch

from conftest import run_module
from test_mi import reference_entropy
from infoflow.inforidge import mi
from infoflow.inforidge.extract import position_states
from infoflow.inforidge.multitoken import continuation_states
from infoflow.report.claims.multitoken import claim_multitoken
from infoflow.report.claims.verdicts import NOT_REPRODUCED, NOT_TESTED, REPRODUCED
from infoflow.report.multitoken_tables import profiles_markdown, summary
from infoflow.training import models


def tokens(n, steps, d, seed):
    return np.random.default_rng(seed).normal(size=(n, steps, d))


def early_stops(n, steps):
    """A mask where example 1 stops after 2 tokens, example 3 after 1 and the rest run to the end."""
    mask = np.ones((n, steps), bool)
    mask[1, 2:], mask[3, 1:] = False, False
    return mask


def brute_set_kernel(x, mask, t, sets, sigma=1.0):
    """The sequence kernel at step t (0-based) by a double loop over the examples and their tokens."""
    def members(i):
        return [a for a in range(x.shape[1]) if mask[i, a] and (a <= t if sets == "prefix" else a == t)]
    unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
    n = len(x)
    k = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            pairs = [math.exp(-np.sum((unit[i, a] - unit[j, b]) ** 2) / (2 * sigma**2)) for a in members(i) for b in members(j)]
            if pairs:
                k[i, j] = np.mean(pairs)
    return k


def brute_information(x, y, mask, t, sets, sigma=1.0):
    """I(X; Y) at step t from the brute-force kernels, on the examples whose sets are not empty."""
    kx, ky = brute_set_kernel(x, mask, t, sets, sigma), brute_set_kernel(y, mask, t, sets, sigma)
    keep = ~np.isnan(np.diag(ky))
    kx, ky = kx[np.ix_(keep, keep)], ky[np.ix_(keep, keep)]
    gx, gy = kx / np.trace(kx), ky / np.trace(ky)
    joint = gx * gy / np.trace(gx * gy)
    return reference_entropy(gx, 1) + reference_entropy(gy, 1) - reference_entropy(joint, 1), keep.sum()


@pytest.mark.parametrize("sets", mi.SETS)
def test_sequence_kernels_and_information_match_a_double_loop(sets):
    n, steps = 7, 4
    xs, y, mask = np.stack([tokens(n, steps, 5, seed) for seed in range(2)]), tokens(n, steps, 3, 9), early_stops(n, steps)
    kernels = mi.sequence_kernels(xs[0], mask, sets, sigma=0.8).numpy()
    for t in range(steps):
        np.testing.assert_allclose(kernels[t], brute_set_kernel(xs[0], mask, t, sets, sigma=0.8), rtol=0, atol=1e-12)
    samples = [np.arange(n), np.array([0, 1, 3, 5, 6])]
    values, kept = mi.sequence_mutual_information(xs, y, mask, samples, sets=sets)
    assert values.shape == (2, steps, 2) and kept.shape == (2, steps)
    for s, sample in enumerate(samples):
        for t in range(steps):
            for layer in range(2):
                expected, count = brute_information(xs[layer][sample], y[sample], mask[sample], t, sets)
                assert values[s, t, layer] == pytest.approx(expected, abs=1e-9) and kept[s, t] == count
    # Prefix sets keep every example that has a token; step sets lose those that stopped.
    assert kept[0].tolist() == ([n] * steps if sets == "prefix" else [n, n - 1, n - 2, n - 2])


def test_one_token_per_example_is_the_single_token_estimate():
    xs, y = np.stack([tokens(30, 1, 6, seed) for seed in range(3)]), tokens(30, 1, 4, 9)
    for sets in mi.SETS:
        values, kept = mi.sequence_mutual_information(xs, y, np.ones((30, 1)), sets=sets)
        np.testing.assert_allclose(values[0, 0], mi.mutual_information_layers(xs[:, :, 0], y[:, 0]), rtol=0, atol=1e-12)
        assert kept.tolist() == [[30]]


def test_prefix_and_step_sets_agree_at_step_one_and_step_sets_are_each_steps_tokens():
    xs, y = np.stack([tokens(20, 3, 6, seed) for seed in range(2)]), tokens(20, 3, 4, 9)
    prefix, _ = mi.sequence_mutual_information(xs, y, np.ones((20, 3)), sets="prefix")
    step, _ = mi.sequence_mutual_information(xs, y, np.ones((20, 3)), sets="step")
    np.testing.assert_allclose(prefix[0, 0], step[0, 0], rtol=0, atol=1e-12)
    assert not np.allclose(prefix[0, 1:], step[0, 1:])
    for t in range(3):
        np.testing.assert_allclose(step[0, t], mi.mutual_information_layers(xs[:, :, t], y[:, t]), rtol=0, atol=1e-12)


def test_identical_sets_carry_no_information():
    x = np.repeat(tokens(1, 3, 5, 0), 12, axis=0)  # every example the same tokens
    values, _ = mi.sequence_mutual_information(x[None], tokens(12, 3, 4, 1), np.ones((12, 3)))
    np.testing.assert_allclose(values, 0, atol=1e-12)
    with pytest.raises(ValueError, match="unknown sets"):
        mi.sequence_kernels(x, np.ones((12, 3)), "suffix")


def test_states_are_read_where_each_token_is_predicted(tiny_world, tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    prompts = [e["prompt"] for e in tiny_world["knowledge"]["cloze"][:3]]
    decoded = continuation_states(model, tokenizer, prompts, 4, 2, "both")
    assert decoded["states"].shape == (3, 4, 4, 32) and decoded["layer"] == [0, 1, 2, 2] and decoded["final_norm"] == [False] * 3 + [True]
    for i, prompt in enumerate(prompts):
        prompt_ids = tokenizer(prompt).input_ids
        length = int(decoded["mask"][i].sum())
        alone = model.generate(torch.tensor([prompt_ids]), max_new_tokens=4, do_sample=False, eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id)[0, len(prompt_ids):].tolist()
        continuation = decoded["tokens"][i, :length].tolist()
        assert continuation == (alone[: alone.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in alone else alone)
        ids = torch.tensor([prompt_ids + continuation])
        unpadded = position_states(model, ids, torch.ones_like(ids), torch.arange(length)[None] + len(prompt_ids) - 1)[0]
        assert torch.allclose(decoded["states"][i, :length], unpadded, atol=1e-5)
        embedding = model.get_input_embeddings().weight[continuation]
        assert torch.allclose(decoded["targets"][i, :length], embedding)


def test_the_stage_writes_a_row_per_step_layer_row_and_sampling_seed(tiny_world, tiny_model_dir, tmp_path):
    out = tmp_path / "mi.csv"
    run_module("inforidge.multitoken", "--model", tiny_model_dir, "--prompts", tiny_world["paths"]["k_cloze"], "--examples", 10, "--seed", 0,
               "--steps", 3, "--batch-size", 4, "--last-layer", "both", "--mi-examples", 8, "--sample-seeds", 3, "--sets", "step",
               "--kernel", "gaussian", "--sigma", 1.0, "--alpha", 1.0, "--task", "knowledge", "--threads", 1, "--out", out)
    table = pl.read_csv(out)
    assert table.columns == ["task", "sets", "step", "layer", "final_norm", "sample_seed", "examples", "mi"]
    assert len(table) == 3 * 4 * 3 and table["step"].unique().sort().to_list() == [1, 2, 3]
    assert set(table["sets"]) == {"step"} and table["examples"].max() <= 8
    estimated = table.filter(pl.col("examples") >= 2)["mi"]
    assert estimated.len() and (estimated >= -1e-9).all() and (estimated <= math.log(8)).all()
    result = run_module("inforidge.multitoken", "--model", tiny_model_dir, "--prompts", tiny_world["paths"]["k_cloze"], "--examples", 10,
                        "--seed", 0, "--steps", 3, "--batch-size", 4, "--last-layer", "raw", "--mi-examples", 11, "--sample-seeds", 3,
                        "--sets", "prefix", "--kernel", "gaussian", "--sigma", 1.0, "--alpha", 1.0, "--task", "knowledge", "--threads", 1,
                        "--out", out, check=False)
    assert result.returncode == 1 and result.stderr.strip().endswith("multitoken.mi_examples: N = 11 prompts requested for the MI estimate, 10 were continued")


def information_frame(level, profile, seeds=3, steps=4, noise=0.002):
    """Estimates of one base model: I = level(step) x profile[layer] + noise per sampling seed, with the last layer also after the final norm."""
    rng = np.random.default_rng(0)
    rows = [{"task": "knowledge", "sets": "prefix", "step": step, "layer": layer, "final_norm": final, "sample_seed": seed, "examples": 8,
             "mi": level(step) * profile[layer] + noise * rng.normal()}
            for seed in range(seeds) for step in range(1, steps + 1)
            for layer, final in [*((layer, False) for layer in range(len(profile))), (len(profile) - 1, True)]]
    return pl.from_dicts(rows)


PROFILE = [0.05, 0.1, 0.2, 0.3, 0.15]  # peak, then late decline


# Rising: reproduced; flat (every sampling seed alike, so the CI of the rise is [0, 0]): not reproduced.
@pytest.mark.parametrize("level, noise, expected", [(lambda step: 1 + 0.3 * step, 0.002, REPRODUCED), (lambda step: 1.0, 0.0, NOT_REPRODUCED)])
def test_rising_information_with_a_kept_profile(level, noise, expected):
    claim = claim_multitoken(information_frame(level, PROFILE, noise=noise), 400, 0)
    assert claim.number == "15" and claim.verdict == expected, claim
    rise, shape = claim.parts
    assert rise.verdict == expected and shape.verdict == REPRODUCED
    assert "step 4 vs 1" in rise.label and "0.5" in claim.rule and "the paper gives none" in claim.rule


def test_a_profile_that_changes_shape_is_not_reproduced():
    frame = information_frame(lambda step: 1 + 0.3 * step, PROFILE)
    flipped = frame.with_columns(mi=pl.when(pl.col("step") == 4).then(1.5 * (0.35 - pl.col("mi") / 2.2)).otherwise(pl.col("mi")))
    assert claim_multitoken(flipped, 400, 0).parts[1].verdict == NOT_REPRODUCED


def test_multitoken_claim_without_estimates_is_not_tested():
    claim = claim_multitoken(information_frame(lambda step: 1.0, PROFILE).head(0), 100, 0)
    assert claim.verdict == NOT_TESTED and "no multi-token information" in claim.rule


def test_summary_table_has_a_ci_over_sampling_seeds():
    frame = information_frame(lambda step: 1 + 0.3 * step, PROFILE)
    table = summary(frame, 400, 0)
    assert len(table) == 4 * (len(PROFILE) + 1) and table["sample_seeds"].unique().to_list() == [3]
    row = table.filter((pl.col("step") == 2) & (pl.col("layer") == 3) & ~pl.col("final_norm")).row(0, named=True)
    seeds = frame.filter((pl.col("step") == 2) & (pl.col("layer") == 3) & ~pl.col("final_norm"))["mi"]
    assert row["mi"] == pytest.approx(seeds.mean()) and seeds.min() <= row["ci95_low"] <= row["mi"] <= row["ci95_high"] <= seeds.max()
    assert "| 4 (after final norm) |" in profiles_markdown(table)


def test_report_commands_write_the_table_and_figures(tmp_path):
    information_frame(lambda step: 1 + 0.3 * step, PROFILE).write_csv(tmp_path / "mi.csv")
    run_module("report.multitoken_tables", "--information", tmp_path / "mi.csv", "--bootstrap-samples", 50, "--seed", 0,
               "--csv", tmp_path / "multitoken.csv", "--markdown", tmp_path / "multitoken.md")
    run_module("report.multitoken_figures", "--table", tmp_path / "multitoken.csv", "--dpi", 40,
               "--heatmap", tmp_path / "heatmap.png", "--curves", tmp_path / "curves.png")
    assert pl.read_csv(tmp_path / "multitoken.csv").height == 4 * (len(PROFILE) + 1)
    assert (tmp_path / "multitoken.md").read_text().startswith("# I(Z; Y) per layer at decoding steps, knowledge base model, prefix sets")
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in ("heatmap.png", "curves.png"))
