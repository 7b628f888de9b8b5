import copy
import json
import math

import numpy as np
import polars as pl
import pytest
import torch

from conftest import run_module
from infoflow.infosteer import steer, variants
from infoflow.report.claims.variants import VARIANT_GAINS, claim_variants
from infoflow.report.claims.verdicts import NOT_REPRODUCED, NOT_TESTED, REPRODUCED, UNDERPOWERED
from infoflow.report.stats import Matrix
from infoflow.training import models
from infoflow.training.layers import memory_modules, memory_vectors
from infoflow.training.sft_data import encode


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    return model, tokenizer


@pytest.fixture(scope="module")
def train_set(tiny_world, tiny):
    return [encode(tiny[1], e["prompt"], e["answer"]) for e in tiny_world["knowledge"]["train"]]


def distinct_keys(d_m, tokens=3, seed=0):
    """[1, tokens, d_m] keys with distinct values (no ties in the selection)."""
    return torch.randperm(tokens * d_m, generator=torch.Generator().manual_seed(seed)).float().reshape(1, tokens, d_m) / 10 - 5


def hand_intervention(keys, n, alpha, beta):
    """k_i + beta_i (alpha * mean - k_i) on each token's n smallest keys, token by token."""
    out = keys.clone()
    for t in range(keys.shape[1]):
        k = keys[0, t]
        for i in torch.argsort(k)[:n].tolist():
            out[0, t, i] = k[i] + beta[i] * (alpha * k.mean() - k[i])
    return out


def memory_output(model, layer, keys):
    return memory_modules(model)[layer](keys)


def test_two_orthogonal_bundles_end_in_two_groups():
    rng = np.random.default_rng(0)
    bundle_a = np.array([1.0, 0, 0, 0]) + 0.05 * rng.standard_normal((6, 4))
    bundle_b = np.array([0, 0, 1.0, 0]) + 0.05 * rng.standard_normal((5, 4))
    labels = variants.cluster(np.vstack([bundle_a, bundle_b]), 2, "average")
    assert len(set(labels[:6])) == 1 and len(set(labels[6:])) == 1 and labels[0] != labels[6]
    assert set(variants.cluster(np.vstack([bundle_a, bundle_b]), 1, "average")) == {0}


def test_group_betas_by_hand():
    labels, spec = np.array([0, 0, 1]), np.array([0.2, 0.4, 0.9])
    # group means 0.3 and 0.9; their mean over keys (0.3 + 0.3 + 0.9) / 3 = 0.5
    assert np.allclose(variants.group_betas(labels, spec, "specialisation"), [0.6, 1.8])
    assert np.allclose(variants.group_betas(labels, spec, "generality"), [0.7 / 0.5, 0.1 / 0.5])
    assert np.allclose(variants.group_betas(labels, spec, "uniform"), [1, 1])


def test_grouped_hook_scales_each_keys_adjustment_by_its_groups_beta(tiny):
    model, _ = tiny
    d_m = memory_vectors(memory_modules(model)[0]).shape[0]
    labels = [0] * (d_m // 2) + [1] * (d_m - d_m // 2)
    state = {"groups": [labels, labels], "betas": [[0.5, 2.0], [1.0, 1.0]]}
    keys = distinct_keys(d_m)
    n = math.ceil(0.05 * d_m)
    beta = torch.tensor([0.5 if g == 0 else 2.0 for g in labels])
    with steer.steer(model, "semantic", state=state, p=0.05, alpha=2.0) as steering:
        assert isinstance(steering, variants.GroupedIntervention)
        steered = memory_output(model, 0, keys)
        uniform = memory_output(model, 1, keys)
    with torch.no_grad():
        assert torch.allclose(steered, memory_modules(model)[0](hand_intervention(keys, n, 2.0, beta)), atol=1e-5)
        with steer.steer(model, "intervention", p=0.05, alpha=2.0):
            plain = memory_output(model, 1, keys)
    assert torch.allclose(uniform, plain, atol=1e-6)  # betas of 1: the plain intervention (up to rounding)


def test_selected_hook_amplifies_the_selected_keys_after_the_intervention(tiny):
    model, _ = tiny
    d_m = memory_vectors(memory_modules(model)[0]).shape[0]
    keys = distinct_keys(d_m, seed=1)
    state = {"selected": [[3, 10]]}
    factor = torch.ones(d_m)
    factor[[3, 10]] = 1.5
    with torch.no_grad():
        with steer.steer(model, "selected", state=state, layers=[0], p=0.05, alpha=1.0, gamma=0.5) as steering:
            out = memory_output(model, 0, keys)
            assert steering.calls[0] == 1
        expected = hand_intervention(keys, math.ceil(0.05 * d_m), 1.0, torch.ones(d_m)) * factor
        assert torch.allclose(out, memory_modules(model)[0](expected), atol=1e-5)


def test_entmax_readings_against_hand_computations(tiny):
    model, _ = tiny
    module, head = memory_modules(model)[1], model.get_output_embeddings().weight
    keys = distinct_keys(memory_vectors(module).shape[0], seed=2) / 10
    with torch.no_grad():
        with steer.steer(model, "entmax", layers=[1], lam=0.01) as steering:
            module(keys)
            output_entropy = steering.entropy()
        p = torch.softmax(module(keys) @ head.T, -1)
        assert torch.allclose(output_entropy, (-(p * p.log()).sum(-1)).mean(), atol=1e-5)
        with steer.steer(model, "entmax", layers=[1], lam=0.01, reading="active") as steering:
            module(keys)
            active_entropy = steering.entropy()
        surrogates = torch.softmax(memory_vectors(module) @ head.T, -1)
        vector_entropy = -(surrogates * surrogates.log()).sum(-1)
        shares = keys.abs() / keys.abs().sum(-1, keepdim=True)
        assert torch.allclose(active_entropy, (shares @ vector_entropy).mean(), atol=1e-5)


def test_semantic_and_activation_states_on_a_real_model(tiny, train_set):
    model, _ = tiny
    d_m = memory_vectors(memory_modules(model)[0]).shape[0]
    for method, extra in (("semantic", {}), ("activation", {"dev_examples": 8})):
        state = variants.GroupedIntervention.prepare(model, method, {"groups": 3, **extra}, train_set)
        assert len(state["groups"]) == 2 and all(len(g) == d_m and max(g) < 3 for g in state["groups"])
        for labels, betas in zip(state["groups"], state["betas"]):
            assert np.isclose(np.mean(np.array(betas)[labels]), 1.0)  # mean 1 over keys
    with pytest.raises(ValueError, match="activation: needs the training examples"):
        variants.GroupedIntervention.prepare(model, "activation", {}, None)


def test_selected_picks_the_highest_scores_by_brute_force(tiny, train_set):
    model = copy.deepcopy(tiny[0])
    module, head = memory_modules(model)[0], model.get_output_embeddings().weight.detach()
    with torch.no_grad():  # well-separated entropies: vector i scaled by 1 + i (a random init's are all near log |V|)
        module.weight.mul_(torch.arange(1, module.weight.shape[1] + 1, dtype=torch.float32))
    params = {"layers": [0], "top": 0.1, "lam1": -1.0, "lam2": 0.0, "target": "uniform"}
    [chosen] = variants.SelectedIntervention.prepare(model, "selected", params, train_set)["selected"]
    p = torch.softmax(memory_vectors(module).detach().double() @ head.double().T, -1)
    entropy = -(p * p.log()).sum(-1)
    assert chosen == sorted(torch.argsort(entropy)[: math.ceil(0.1 * len(entropy))].tolist())  # the most specialised
    # KL to the answers' distribution, brute force
    q = variants.answer_log_distribution(train_set, head.shape[0]).double().exp()
    kl = (p * (p.log() - q.log())).sum(-1)
    scores = variants.selection_scores(model, [0], {**variants.SELECTED, "lam1": 0.0, "lam2": 1.0}, train_set)[0]
    assert torch.allclose(scores.double(), kl, atol=1e-4)


def test_answer_distribution_counts_answer_tokens_without_eos():
    examples = [{"labels": [-100, -100, 4, 1]}, {"labels": [-100, 4, 5, 1]}]  # 1: EOS
    q = variants.answer_log_distribution(examples, 8).exp()
    smooth = variants.TARGET_SMOOTHING / 8
    assert torch.allclose(q, torch.tensor([smooth] * 4 + [0.99 * 2 / 3 + smooth, 0.99 / 3 + smooth] + [smooth] * 2))


@pytest.mark.parametrize("params, key", [({"groups": 0}, "groups"), ({"beta": "loud"}, "beta"), ({"linkage": "ward2"}, "linkage")])
def test_bad_parameters_name_the_key(tiny, params, key):
    with pytest.raises(ValueError, match=f"^{key}: "):
        variants.GroupedIntervention.prepare(tiny[0], "semantic", params, None)


def test_a_variant_trains_in_finetune_and_its_folder_records_the_method(tiny_world, tiny_model_dir, tmp_path):
    out = tmp_path / "model"
    common = ["--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"], "--learning-rate", 1e-3, "--epochs", 1,
              "--batch-size", 8, "--warmup-steps", 0, "--weight-decay", 0.0, "--seed", 0, "--threads", 1]
    run_module("posttrain.finetune", *common, "--method", "activation", "--method-params", "p=0.05", "groups=2",
               "dev_examples=4", "--at-eval", "--out", out, "--history", tmp_path / "history.json")
    record = json.loads((out / models.METHOD_FILE).read_text())
    assert record["method"] == "activation" and record["at_eval"] is True
    assert record["params"] == {"p": 0.05, "groups": 2, "dev_examples": 4}
    assert len(record["state"]["groups"]) == 2 and len(record["state"]["betas"][0]) <= 2
    tuned, _ = models.load(out)
    with steer.from_folder(tuned, out) as steering:  # decoding keeps the recorded groups
        assert isinstance(steering, variants.GroupedIntervention) and steering.state == record["state"]
    bad = run_module("posttrain.finetune", *common, "--method", "semantic", "--method-params", "groups=0",
                     "--out", tmp_path / "bad", "--history", tmp_path / "bad.json", check=False)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("infoflow: --method-params of semantic: groups: 0")


def steering_rows(methods):
    """A steering_vs_sft table: one ID row per method entry (the columns the claims read)."""
    rows = [{"task": "knowledge", "method": name, "kind": entry["kind"], "p": entry.get("p"), "alpha": entry.get("alpha"),
             "lam": entry.get("lam"), "layers": "all", "split": "test_id"} for name, entry in methods.items()]
    return pl.from_dicts(rows, schema_overrides={name: pl.Float64 for name in ("p", "alpha", "lam")})


def correct(rows):
    """Matrix seeds x items of 0/1, from one list of 0/1 per seed."""
    return Matrix(list(range(len(rows))), [f"q{i}" for i in range(len(rows[0]))], np.array(rows, dtype=float))


def test_the_variants_claim_pairs_each_variant_with_the_intervention():
    methods = {"sft": {"kind": "sft"}, "int": {"kind": "intervention", "p": 0.01, "alpha": 1.0},
               "int_a2": {"kind": "intervention", "p": 0.01, "alpha": 2.0}, "sem": {"kind": "semantic", "p": 0.01, "alpha": 1.0},
               "ent": {"kind": "entmax", "lam": 0.01}}
    half = [[1, 0] * 20] * 3
    runs = {("knowledge", "int", "test_id"): correct(half), ("knowledge", "int_a2", "test_id"): correct([[0] * 40] * 3),
            ("knowledge", "sem", "test_id"): correct([[1] * 40] * 3), ("knowledge", "ent", "test_id"): correct([[0] * 40] * 3)}
    claim = claim_variants(steering_rows(methods), runs, 500, 0)
    assert [p.label for p in claim.parts] == ["knowledge, sem (semantic) - int, ID points", "knowledge, ent (entmax) - int, ID points"]
    assert [p.verdict for p in claim.parts] == [REPRODUCED, NOT_REPRODUCED] and claim.verdict == NOT_REPRODUCED
    assert claim.parts[0].estimate.value == pytest.approx(0.5) and claim.parts[1].estimate.value == pytest.approx(-0.5)
    assert claim.parts[0].paper == pytest.approx(VARIANT_GAINS["semantic"])
    other_half = correct([[0, 1] * 20] * 3)  # as accurate as int, on the other items: a wide CI around 0
    tied = claim_variants(steering_rows(methods), {**runs, ("knowledge", "sem", "test_id"): other_half,
                                                   ("knowledge", "ent", "test_id"): other_half}, 500, 0)
    assert tied.verdict == UNDERPOWERED and all(p.mde > abs(p.paper) for p in tied.parts)  # 40 items cannot resolve a point
    assert claim_variants(steering_rows({k: methods[k] for k in ("sft", "int")}), runs, 500, 0).verdict == NOT_TESTED


def test_the_papers_variant_gains_are_the_mean_over_six_models():
    # Tables 6 and 7 minus Table 1's Int, averaged by hand: Sem +1.28, Act +0.40, Sel +1.04, EntMax -0.01 points.
    assert {k: round(100 * v, 2) for k, v in VARIANT_GAINS.items()} == {"semantic": 1.28, "activation": 0.4, "selected": 1.04,
                                                                          "entmax": -0.01}
