"""Attention to signal tokens (InfoRidge Table 2): the per-run masses against a softmax recomputed by
hand from each layer's queries and keys, padding, the table's bootstrap and claim 13's verdicts."""

import math

import numpy as np
import polars as pl
import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from conftest import run_module
from infoflow.inforidge.attention import attention_masses, token_kinds
from infoflow.io import read_examples
from infoflow.report.claims import attention as claim
from infoflow.report.claims.verdicts import NOT_REPRODUCED, NOT_TESTED, REPRODUCED
from infoflow.training import models
from infoflow.world.modular_tokens import MASS_KINDS, word_kind


def test_token_kinds_of_words_word_pieces_and_special_tokens():
    assert token_kinds("S3 N5 foo S1 N9", [(0, 2), (3, 5), (6, 9), (10, 12), (13, 15)]) == [0, 1, 3, 0, 2]
    # a BOS token (empty span), S12 in two pieces, a piece with its leading space, the last piece
    assert token_kinds("S12 N4 S7", [(0, 0), (0, 1), (1, 3), (3, 5), (5, 6), (6, 9)]) == [3, 0, 0, 1, 1, 2]


def test_the_world_tokenizer_gives_each_word_its_kind(tiny_world):
    tokenizer = tiny_world["tokenizer"]
    for example in read_examples(tiny_world["paths"]["m_test_ood"]):
        prompt = example["prompt"]
        kinds = token_kinds(prompt, tokenizer(prompt, return_offsets_mapping=True).offset_mapping)
        expected = [MASS_KINDS.index(word_kind(w)) for w in prompt.split()]
        assert kinds == expected[:-1] + [MASS_KINDS.index("last")]
        assert set(kinds) == {0, 1, 2}  # the world's prompts hold signal and noise words only


@pytest.fixture(scope="module")
def peaked_model(tiny_model_dir):
    """The tiny model with eager attention and sharpened queries, so that its weights are far from uniform."""
    model, tokenizer = models.load(tiny_model_dir)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(300.0)
    return model, tokenizer


def by_hand(model, tokenizer, prompt):
    """[layers, kinds] masses from softmax(q k^T / sqrt(d)) of the last position, computed here from the
    queries and keys of each layer's input, averaged over heads and summed over each word's kind."""
    inputs = []
    hooks = [layer.self_attn.register_forward_pre_hook(lambda m, args, kwargs: inputs.append((m, kwargs)), with_kwargs=True)
             for layer in model.model.layers]
    with torch.no_grad():
        model(torch.tensor([tokenizer(prompt).input_ids]))
        for hook in hooks:
            hook.remove()
        kinds = torch.tensor([MASS_KINDS.index(word_kind(w)) for w in prompt.split()[:-1]] + [MASS_KINDS.index("last")])
        masses = []
        for attention, kwargs in inputs:
            h, (cos, sin) = kwargs["hidden_states"], kwargs["position_embeddings"]
            shape = (*h.shape[:-1], -1, attention.head_dim)
            q, k = (proj(h).view(shape).transpose(1, 2) for proj in (attention.q_proj, attention.k_proj))
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            weights = (q[0, :, -1:] @ k[0].transpose(-1, -2) / math.sqrt(attention.head_dim)).softmax(-1)[:, 0].mean(0)
            masses.append(torch.zeros(len(MASS_KINDS)).index_add_(0, kinds, weights))
    return torch.stack(masses).numpy()


def test_cli_masses_equal_a_softmax_recomputed_from_queries_and_keys(tiny_world, tiny_model_dir, peaked_model, tmp_path):
    out = tmp_path / "masses.csv"
    paths = [tiny_world["paths"]["m_test_id"], tiny_world["paths"]["m_test_ood"]]
    run_module("inforidge.attention", "--model", tiny_model_dir, "--examples", *paths, "--sample", 5, "--sample-seed", 0,
               "--batch-size", 3, "--task", "modular", "--method", "sft", "--seed", 2, "--threads", 1, "--out", out)
    masses = pl.read_csv(out)
    assert masses.columns == ["task", "method", "seed", "split", "example_id", "layer", *MASS_KINDS]
    assert masses.height == 2 * 5 * 2 and set(masses["split"]) == {"test_id", "test_ood"} and set(masses["layer"]) == {1, 2}
    assert masses["seed"].unique().to_list() == [2]
    model, tokenizer = models.load(tiny_model_dir)  # the saved weights, as the job loads them
    prompts = {e["id"]: e["prompt"] for path in paths for e in read_examples(path)}
    for (example_id,), rows in masses.sort("layer").group_by("example_id"):
        assert np.allclose(rows.select(MASS_KINDS).to_numpy(), by_hand(model, tokenizer, prompts[example_id]), atol=1e-5)
    # and on a model whose attention is far from uniform, in process
    examples = read_examples(paths[0])[:3]
    direct = attention_masses(*peaked_model, examples, 3).select(MASS_KINDS).to_numpy().reshape(3, 2, -1)
    for masses_of, example in zip(direct, examples):
        expected = by_hand(*peaked_model, example["prompt"])
        assert np.allclose(masses_of, expected, atol=1e-5)
    assert direct[..., 0].std() > 0.05  # the weights differ between examples: a real check


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_padding_gets_no_mass_and_changes_nothing(tiny_world, peaked_model, padding_side):
    words = read_examples(tiny_world["paths"]["m_test_id"])[0]["prompt"].split()
    examples = [{"id": str(n), "split": "test_id", "prompt": " ".join(words[:n])} for n in (6, 2, 5, 3)]  # lengths differ
    batched = attention_masses(*peaked_model, examples, 4, padding_side).select(MASS_KINDS).to_numpy()
    alone = attention_masses(*peaked_model, examples, 1).select(MASS_KINDS).to_numpy()
    assert np.allclose(batched.sum(axis=1), 1, atol=1e-5)  # the four kinds take all the mass: padding none
    assert np.allclose(batched, alone, atol=1e-5)
    assert np.allclose(batched, np.concatenate([by_hand(*peaked_model, e["prompt"]) for e in examples]), atol=1e-5)


LAYERS = 6
SIGNAL = [0.1, 0.2, 0.3, 0.5, 0.3, 0.02]  # peaks at layer 4 of 6, collapses at the last
MONOTONE = [0.1, 0.15, 0.2, 0.3, 0.4, 0.5]


def masses_frame(signal, seeds=3, examples=20, method="sft", split="test_id"):
    """Masses of every run seed, example and layer: `signal` per layer plus seed and example noise; the
    last token 0.3 at the last layer; the rest split between noise and rest tokens."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        offset = rng.normal(0, 0.01)
        for example in range(examples):
            for layer, base in enumerate(signal, 1):
                s = float(np.clip(base + offset + rng.normal(0, 0.02), 0, 0.6))
                last = 0.3 if layer == len(signal) else 0.1
                rows.append({"task": "modular", "method": method, "seed": seed, "split": split, "example_id": f"e{example}",
                             "layer": layer, "signal": s, "noise": (1 - s - last) * 0.9, "last": last, "rest": (1 - s - last) * 0.1})
    return pl.from_dicts(rows)


def mi_frame(ridge):
    """mi.csv rows of SFT runs whose mean I(Z;Y) over raw layers 0..LAYERS peaks at `ridge`."""
    return pl.from_dicts([{"task": "modular", "method": "sft", "seed": seed, "point": 1, "split": split, "quantity": "hidden",
                           "layer": layer, "final_norm": False, "sample_seed": 0, "mi": 1.0 if layer == ridge else 0.1}
                          for seed in range(3) for split in ("test_id", "test_ood") for layer in range(LAYERS + 1)])


def test_table_means_cis_and_ridge_layer(tmp_path):
    frame = pl.concat([masses_frame(SIGNAL), masses_frame(MONOTONE, split="test_ood")])
    paths = []
    for seed, part in frame.group_by("seed"):
        paths.append(tmp_path / f"masses{seed[0]}.csv")
        part.write_csv(paths[-1])
    mi_frame(ridge=3).write_csv(tmp_path / "mi.csv")
    out = {"layers": tmp_path / "layers.csv", "markdown": tmp_path / "attention.md", "figure": tmp_path / "attention.png"}
    run_module("report.attention_tables", "--masses", *paths, "--mi", tmp_path / "mi.csv", "--bootstrap-samples", 300, "--seed", 0,
               "--layers", out["layers"], "--markdown", out["markdown"])
    run_module("report.attention_figures", "--layers", out["layers"], "--dpi", 40, "--out", out["figure"])
    table = pl.read_csv(out["layers"])
    assert table.height == 2 * LAYERS * len(MASS_KINDS) and out["figure"].stat().st_size > 0
    expected = frame.group_by("split", "layer").agg(pl.col(k).mean() for k in MASS_KINDS)  # balanced: the plain mean
    for row in table.iter_rows(named=True):
        mean = expected.filter((pl.col("split") == row["split"]) & (pl.col("layer") == row["layer"]))[row["kind"]][0]
        assert row["mass"] == pytest.approx(mean, abs=1e-9)
        assert row["ci95_low"] - 1e-12 <= row["mass"] <= row["ci95_high"] + 1e-12  # constant kinds: a CI of one value
        assert row["runs"] == 3 and row["examples"] == 20 and row["layers"] == LAYERS and row["sft_ridge_layer"] == 3
    signal = table.filter((pl.col("kind") == "signal") & (pl.col("split") == "test_id")).sort("layer")
    widths = (signal["ci95_high"] - signal["ci95_low"]).to_numpy()
    assert (widths > 0.002).all() and (widths < 0.06).all()  # seed and example spread, both resampled
    sums = table.group_by("split", "layer").agg(pl.col("mass").sum())["mass"]
    assert np.allclose(sums.to_numpy(), 1)
    text = out["markdown"].read_text()
    assert "# Attention mass from the prediction position per layer, modular, sft, ID (mean over heads, 3 runs x 20 examples" in text
    assert "| 3 | " in text and "SFT ridge" in text


@pytest.mark.parametrize("curve, expected", [(SIGNAL, REPRODUCED), (MONOTONE, NOT_REPRODUCED)])
def test_claim_peak_inside_and_drop(curve, expected):
    result = claim.claim_attention(masses_frame(curve), mi_frame(ridge=5), 300, 0)
    assert result.verdict == expected, result
    assert result.mde.startswith("peak depth fractions: not defined")
    assert "context (not judged): modular, last-token mass at the last layer: 0.300" in result.measurement
    assert "SFT ridge layer of I(Z;Y) (claim 8): 5 of 6" in result.measurement
    if expected == REPRODUCED:
        assert "signal peak at layer 4 of 6, depth fraction: 0.67 [0.67, 0.67]" in result.measurement
        assert "paper +0.220" in result.mde


def test_claim_without_sft_masses_is_not_tested():
    assert claim.claim_attention(masses_frame(SIGNAL).head(0), mi_frame(3), 100, 0).verdict == NOT_TESTED
    result = claim.claim_attention(masses_frame(SIGNAL, method="int"), mi_frame(3), 100, 0)
    assert result.verdict == NOT_TESTED and "no attention masses of SFT runs" in result.rule
