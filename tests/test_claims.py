"""The claims' verdict rules on synthetic tables: for each claim, one where it clearly holds, one where
it clearly fails, one where the CI straddles the threshold (underpowered where the MDE exceeds the
paper's effect), and one without the runs it needs; the MDE against hand computations; each
precondition holding, failing and unmeasured."""

import json

import numpy as np
import polars as pl
import pytest

from infoflow.report.claims import check, inforidge, infosteer, preconditions, verdicts
from infoflow.report.claims.verdicts import (INCONCLUSIVE, NOT_APPLICABLE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, UNDERPOWERED, Claim,
                                             Estimate)
from infoflow.report.stats import Matrix, minimal_detectable_effect, paired_bootstrap

SAMPLES, SEED = 200, 0
CASES = ("holds", "fails", "ambiguous")
EXPECTED = {"holds": REPRODUCED, "fails": NOT_REPRODUCED, "ambiguous": INCONCLUSIVE}
# Claims with a paper effect: their ambiguous cases have CIs of several points, wider than the effects.
POWERED = {**EXPECTED, "ambiguous": UNDERPOWERED}


def test_verdict_compares_the_whole_interval_with_the_threshold():
    assert verdicts.verdict(Estimate(0.3, 0.1, 0.5), 0, ">") == REPRODUCED
    assert verdicts.verdict(Estimate(-0.3, -0.5, 0.0), 0, ">") == NOT_REPRODUCED
    assert verdicts.verdict(Estimate(0.1, -0.1, 0.3), 0, ">") == INCONCLUSIVE
    assert verdicts.verdict(Estimate(0.0, 0.0, 0.0), 0, "<=") == REPRODUCED
    assert verdicts.verdict(Estimate(0.5, float("nan"), float("nan")), 0, ">") == INCONCLUSIVE  # one seed: no CI
    assert verdicts.verdict(Estimate(-0.3, -0.5, -0.1), 0, "!=") == REPRODUCED  # a change of either sign
    assert verdicts.verdict(Estimate(0.0, 0.0, 0.0), 0, "!=") == NOT_REPRODUCED
    assert verdicts.verdict(Estimate(0.1, -0.1, 0.3), 0, "!=") == INCONCLUSIVE


def test_parts_combine_as_a_conjunction():
    assert verdicts.all_of([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert verdicts.all_of([REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED
    assert verdicts.all_of([REPRODUCED, NOT_TESTED]) == INCONCLUSIVE
    assert verdicts.all_of([NOT_TESTED]) == NOT_TESTED
    assert verdicts.any_of([NOT_REPRODUCED, REPRODUCED]) == REPRODUCED
    # underpowered only when every part left open is: a part with the power that stayed open is inconclusive
    assert verdicts.all_of([REPRODUCED, UNDERPOWERED, NOT_TESTED]) == UNDERPOWERED
    assert verdicts.all_of([UNDERPOWERED, INCONCLUSIVE]) == INCONCLUSIVE
    assert verdicts.all_of([UNDERPOWERED, NOT_REPRODUCED]) == NOT_REPRODUCED


# --- power -----------------------------------------------------------------------------------------


def test_minimal_detectable_effect_against_a_hand_computation():
    # (z_.975 + z_.80) SE with SE = half-width / z_.975: 0.03 x (1.959964 + 0.841621) / 1.959964
    assert minimal_detectable_effect(-0.02, 0.04) == pytest.approx(0.042882, abs=1e-6)
    # Student-t with 2 df (3 seeds): 0.03 x (4.302653 + 1.060660) / 4.302653
    assert minimal_detectable_effect(-0.02, 0.04, df=2) == pytest.approx(0.037395, abs=1e-6)
    assert np.isnan(minimal_detectable_effect(float("nan"), float("nan")))


def test_mde_of_the_paired_bootstrap_is_the_item_variance_when_seeds_agree():
    """Every seed right on the same items: the paired bootstrap's SE is the items' SD / sqrt(items), so the
    MDE is (1.96 + 0.84) x sd(d) / sqrt(400) = 2.8016 x 0.49749 / 20 = 0.0697 (d: +1 on 60 items, -1 on 40)."""
    items = [f"q{i}" for i in range(400)]
    method, baseline = np.zeros((3, 400)), np.zeros((3, 400))
    method[:, :60], baseline[:, 60:100] = 1, 1
    diff, low, high = paired_bootstrap(Matrix(range(3), items, method), Matrix(range(3), items, baseline), 2000, SEED)
    assert diff == pytest.approx(0.05)
    assert minimal_detectable_effect(low, high) == pytest.approx(0.0697, rel=0.08)


def test_an_open_ci_is_underpowered_only_when_the_mde_exceeds_the_papers_effect():
    wide, narrow = Estimate(0.01, -0.02, 0.04), Estimate(0.002, -0.005, 0.009)  # MDE 4.3 and 1.0 points
    assert verdicts.judge("d", wide, verdicts.points, 0, ">", paper=0.021).verdict == UNDERPOWERED
    assert verdicts.judge("d", narrow, verdicts.points, 0, ">", paper=0.021).verdict == INCONCLUSIVE
    assert verdicts.judge("d", wide, verdicts.points, 0, ">").verdict == INCONCLUSIVE  # no paper figure
    assert verdicts.judge("d", Estimate(0.05, 0.02, 0.08), verdicts.points, 0, ">", paper=0.001).verdict == REPRODUCED
    part = verdicts.judge("d, points", wide, verdicts.points, 0, ">", paper=0.021)
    assert part.power_text() == "d, points: 4.3 points (paper +2.1)"


# --- InfoSteer: accuracy ---------------------------------------------------------------------------

METHODS = {
    "sft": {"kind": "sft"},
    "int": {"kind": "intervention", "p": 0.01, "alpha": 1.0, "layers": "all"},
    "int_big": {"kind": "intervention", "p": 0.05, "alpha": 5.0, "layers": "all"},
    "reg": {"kind": "regularization", "lam": 0.01, "layers": "all"},
    "reg_neg": {"kind": "regularization", "lam": -0.01, "layers": "all"},
}
# "precise": a CI around 0 narrow enough (MDE 1.0 points) to detect the paper's effects of claims 1 and 2
DIFFERENCES = {"holds": (0.05, 0.02, 0.08), "fails": (-0.05, -0.08, -0.02), "ambiguous": (0.01, -0.02, 0.04),
               "precise": (0.002, -0.005, 0.009)}


def steering_table(methods=METHODS, diffs=None, task="knowledge", sft_accuracy=0.75, seeds=3):
    """steering_vs_sft.csv: `diffs` {method: (diff, low, high)} on ID (and OOD), zero where not given."""
    rows = []
    for method, entry in methods.items():
        for split in ("test_id", "test_ood"):
            diff = (diffs or {}).get(method, (0.0, 0.0, 0.0))
            rows.append({"task": task, "method": method, "kind": entry["kind"], "p": entry.get("p"), "alpha": entry.get("alpha"),
                         "lam": entry.get("lam"), "layers": entry.get("layers"), "split": split, "seeds": seeds,
                         "accuracy_mean": sft_accuracy + diff[0], "diff_vs_sft": np.nan if method == "sft" else diff[0],
                         "diff_ci95_low": np.nan if method == "sft" else diff[1], "diff_ci95_high": np.nan if method == "sft" else diff[2]})
    return pl.from_dicts(rows, schema_overrides={name: pl.Float64 for name in ("p", "alpha", "lam")})


def test_the_claims_use_the_run_nearest_the_papers_default():
    steering = steering_table({**METHODS, "int_early": {"kind": "intervention", "p": 0.01, "alpha": 1.0, "layers": "early"}})
    assert infosteer.steered_methods(steering) == {"intervention": "int", "regularization": "reg"}
    only_groups = steering_table({"sft": METHODS["sft"], "reg_mid": {"kind": "regularization", "lam": 0.05, "layers": "middle"}})
    assert infosteer.steered_methods(only_groups) == {"intervention": None, "regularization": "reg_mid"}


@pytest.mark.parametrize("case", [*CASES, "precise"])
@pytest.mark.parametrize("claim, method", [(infosteer.claim_intervention_id, "int"), (infosteer.claim_regularization_id, "reg")])
def test_steering_beats_sft_on_id(claim, method, case):
    result = claim(steering_table(diffs={method: DIFFERENCES[case]}))
    assert result.verdict == {**POWERED, "precise": INCONCLUSIVE}[case], result
    if case == "holds":
        assert "+5.0 [+2.0, +8.0]" in result.measurement
    if case == "ambiguous":  # the MDE: 0.03 x 2.8016 / 1.96 = 4.3 points; the paper's mean effect 2.1 (Int) or 1.4 (Reg)
        assert result.detail == f"MDE 4.3 points; paper {'+2.1' if method == 'int' else '+1.4'}"
        assert result.mde.endswith(f"points: 4.3 points (paper {'+2.1' if method == 'int' else '+1.4'})")


@pytest.mark.parametrize("case", [*CASES, "precise"])
def test_negative_lambda_does_worse_than_sft(case):
    diff, low, high = DIFFERENCES[case]
    result = infosteer.claim_negative_lambda(steering_table(diffs={"reg_neg": (-diff, -high, -low)}))
    assert result.verdict == {**POWERED, "precise": UNDERPOWERED}[case]  # the paper's effect is 0.3 points: MDE 1.0 is too coarse


@pytest.mark.parametrize("claim, reason", [
    (infosteer.claim_intervention_id, "no method of kind intervention"),
    (infosteer.claim_regularization_id, "no method of kind regularization with lam > 0"),
    (infosteer.claim_negative_lambda, "no method of kind regularization with lam < 0"),
])
def test_accuracy_claims_without_their_method_are_not_tested(claim, reason):
    result = claim(steering_table({"sft": METHODS["sft"]}))
    assert result.verdict == NOT_TESTED and reason in result.rule


def test_accuracy_claim_without_an_sft_run_is_not_tested():
    steering = steering_table({"int": METHODS["int"]})
    assert infosteer.claim_intervention_id(steering).verdict == NOT_TESTED


def correct(n_correct, seeds=3, items=100):
    """Correctness [seeds, items]: the first n_correct items right in every seed."""
    values = np.zeros((seeds, items))
    values[:, :n_correct] = 1
    return Matrix(range(seeds), [f"q{i}" for i in range(items)], values)


def flipped(n_correct, offset=0, seeds=3, items=100):
    """As correct(n_correct) with 10 items swapped, `offset` from the boundary: right as often, on other
    items (against another offset: difference 0, CI around it)."""
    values = correct(n_correct, seeds, items).values.copy()
    values[:, n_correct - 10 - offset : n_correct - offset] = 0
    values[:, n_correct + offset : n_correct + 10 + offset] = 1
    return Matrix(range(seeds), [f"q{i}" for i in range(items)], values)


def ood_runs(case):
    """Base, SFT and steered correctness on the OOD split (base: one model, one row)."""
    base = correct(50, seeds=1)
    sft, steered = {"holds": (correct(30), correct(70)), "fails": (correct(70), correct(30)), "ambiguous": (flipped(50), correct(70))}[case]
    runs = {("knowledge", "sft", "test_ood"): sft, ("knowledge", "int", "test_ood"): steered, ("knowledge", "reg", "test_ood"): steered}
    return runs, {("knowledge", "base", "test_ood"): base}


@pytest.mark.parametrize("case", CASES)
def test_sft_lowers_and_steering_raises_ood_accuracy_against_the_base_model(case):
    runs, base = ood_runs(case)
    result = infosteer.claim_ood(steering_table(), runs, base, SAMPLES, SEED)
    assert result.verdict == POWERED[case], result
    if case == "holds":
        assert "knowledge, sft - base, OOD points: -20.0" in result.measurement


def test_ood_claim_without_the_base_models_evaluation_is_not_tested():
    runs, _ = ood_runs("holds")
    result = infosteer.claim_ood(steering_table(), runs, {}, SAMPLES, SEED)
    assert result.verdict == NOT_TESTED and "base model was not evaluated" in result.rule


GROUPS = {"all": "int", "early": "int_e", "middle": "int_m", "late": "int_l", "early+middle": "int_em"}
GROUP_ACCURACY = {
    "holds": {"all": 60, "early": 62, "middle": 66, "late": 40, "early+middle": 80},
    "fails": {"all": 80, "early": 62, "middle": 66, "late": 90, "early+middle": 60},
}


def layer_group_runs(case, groups=GROUPS):
    methods = {"sft": METHODS["sft"], **{m: {"kind": "intervention", "p": 0.01, "alpha": 2.0, "layers": g} for g, m in groups.items()}}
    if case == "ambiguous":  # all groups equally right, each on different items
        correctness = {("knowledge", m, "test_id"): flipped(50, offset=10 * i) for i, m in enumerate(groups.values())}
    else:
        correctness = {("knowledge", m, "test_id"): correct(GROUP_ACCURACY[case][g]) for g, m in groups.items()}
    return steering_table(methods), correctness


@pytest.mark.parametrize("case", CASES)
def test_early_middle_beats_all_layers_and_late_is_worst(case):
    steering, correctness = layer_group_runs(case)
    result = infosteer.claim_layer_groups(steering, correctness, SAMPLES, SEED)
    assert result.verdict == POWERED[case], result
    assert result.measurement.count("late - ") == 4
    assert "early+middle - all, ID points:" in result.mde and "(paper +1.6)" in result.mde  # 76.3 - 74.65, Table 8
    if case == "ambiguous":
        assert result.detail.endswith("in size (5 parts)")


def test_layer_groups_without_a_late_run_or_without_predictions_are_not_tested():
    steering, correctness = layer_group_runs("holds", {g: m for g, m in GROUPS.items() if g != "late"})
    assert infosteer.claim_layer_groups(steering, correctness, SAMPLES, SEED).verdict == NOT_TESTED
    steering, _ = layer_group_runs("holds")
    assert infosteer.claim_layer_groups(steering, {}, SAMPLES, SEED).verdict == NOT_TESTED


# --- InfoSteer: key shift and flux -----------------------------------------------------------------

LOW_SHARES = {"holds": {"sft": 0.30, "int": 0.20, "reg": 0.21},
              "fails": {"sft": 0.20, "int": 0.30, "reg": 0.29},
              "ambiguous": {"sft": 0.25, "int": 0.20, "reg": 0.21}}


def key_shares(case):
    rows = [{"method": "base", "seed": None, "low": 0.25, "medium": 0.5, "high": 0.25}]
    for method, low in LOW_SHARES[case].items():
        for seed, noise in enumerate((-0.01, 0.0, 0.01)):
            rows.append({"method": method, "seed": str(seed), "low": low + noise, "medium": 0.5, "high": 0.5 - low - noise})
    return pl.from_dicts(rows, infer_schema_length=None)


@pytest.mark.parametrize("case", CASES)
def test_sft_moves_keys_to_the_low_region_and_steering_away_from_it(case):
    result = infosteer.claim_key_shift(steering_table(), key_shares(case))
    assert result.verdict == EXPECTED[case]  # the paper gives no figure: never underpowered
    # Student-t over 3 seeds of +-1 point: SE 0.577, MDE (4.303 + 1.061) x 0.577 = 3.1 points
    assert result.mde.startswith("sft low share - base, points: 3.1 points (the paper gives no figure)")


def test_key_shift_without_the_base_models_shares_is_not_tested():
    shares = key_shares("holds")
    assert infosteer.claim_key_shift(steering_table(), shares.filter(pl.col("method") != "base")).verdict == NOT_TESTED


FLUX_MEANS = {  # (content, low classes) flux per method
    "holds": {"sft": (2.0, 1.0), "int": (2.6, 1.0), "reg": (2.5, 1.0)},
    "fails": {"sft": (1.0, 2.0), "int": (1.0, 2.0), "reg": (1.0, 2.0)},
    "ambiguous": {"sft": (1.5, 1.5), "int": (1.5, 1.5), "reg": (1.5, 1.5)},
}


def flux_tokens(case, methods=("sft", "int", "reg")):
    rng = np.random.default_rng(0)
    rows = []
    for method in methods:
        content, low = FLUX_MEANS[case][method]
        for seed in (0, 1, 2):
            for prompt in range(12):
                for token_class in ("content", "content", "function", "punctuation", "copied"):
                    mean = content if token_class == "content" else low
                    rows.append({"method": method, "seed": seed, "prompt_id": f"p{prompt}", "token_class": token_class,
                                 "flux": mean + rng.normal(0, 0.3)})
    return pl.from_dicts(rows)


@pytest.mark.parametrize("case", CASES)
def test_flux_is_lower_on_function_tokens_and_steering_changes_the_gap(case):
    result = infosteer.claim_flux(steering_table(), flux_tokens(case), SAMPLES, SEED)
    assert result.verdict == EXPECTED[case], result


def test_flux_without_a_steered_run_is_not_tested():
    assert infosteer.claim_flux(steering_table(), flux_tokens("holds", methods=("sft",)), SAMPLES, SEED).verdict == NOT_TESTED
    assert infosteer.claim_flux(steering_table(), None, SAMPLES, SEED).verdict == NOT_TESTED


# --- InfoRidge -------------------------------------------------------------------------------------

LAYERS = 8
CURVES = {  # mean I(Z;Y) over layers 0..8 (raw), and the last layer after the final norm
    "holds": [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.25, 0.05],  # ridge at 6 of 8 = 0.75
    "fails": [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],  # rises to the last layer
    "ambiguous": [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.3],  # layer 7 (0.875) and 8 (1.0) tie
}


def mi_table(case, task="modular", last_layer="both", run_seeds=3, sample_seeds=3):
    rng = np.random.default_rng(1)
    curve = CURVES[case]
    rows = []
    for seed in range(run_seeds):
        for sample_seed in range(sample_seeds):
            raw = [(layer, False, curve[layer]) for layer in range(LAYERS + (last_layer != "normed"))]
            normed = [(LAYERS, True, 0.01)] if last_layer != "raw" else []
            for layer, final_norm, value in raw + normed:
                for point in (0, 1):  # the claims read the last checkpoint only: point 0 is noise
                    rows.append({"task": task, "method": "sft", "seed": seed, "point": point, "split": "test_id", "quantity": "hidden",
                                 "layer": layer, "final_norm": final_norm, "sample_seed": sample_seed,
                                 "mi": value + rng.normal(0, 0.01) if point else rng.random()})
    return pl.from_dicts(rows)


@pytest.mark.parametrize("case", CASES)
def test_ridge_layer_inside_the_upper_middle_depth(case):
    result = inforidge.claim_ridge_depth(mi_table(case), SAMPLES, SEED)
    assert result.verdict == EXPECTED[case], result
    assert result.mde.startswith("not defined: the ridge layer is an argmax")
    if case == "holds":
        assert "ridge layer 6 of 8, depth fraction: 0.75 [0.75, 0.75]" in result.measurement


def test_ridge_without_sft_curves_is_not_tested():
    assert inforidge.claim_ridge_depth(mi_table("holds").with_columns(method=pl.lit("int")), SAMPLES, SEED).verdict == NOT_TESTED


EXITS = {  # (ID, OOD) early-exit accuracy over layers 0..8 per run seed
    "holds": [([0, 0, 0, 0, 0.1, 0.3, 0.5, 0.7, 0.9], [0, 0, 0, 0, 0.1, 0.3, 0.5, 0.45, 0.4])] * 3,
    "fails": [([0, 0, 0, 0, 0.1, 0.3, 0.9, 0.7, 0.5], [0, 0, 0.5, 0, 0.1, 0.2, 0.3, 0.2, 0.2])] * 3,
    # OOD exit best at layer 2 in one run, at the ridge (6) in another: the distance is 0 or 4
    "ambiguous": [([0, 0, 0, 0, 0.1, 0.3, 0.5, 0.7, 0.9], [0, 0, 0.5, 0, 0.1, 0.2, 0.4, 0.2, 0.2]),
                  ([0, 0, 0, 0, 0.1, 0.3, 0.5, 0.7, 0.9], [0, 0, 0.4, 0, 0.1, 0.2, 0.5, 0.2, 0.2]),
                  ([0, 0, 0, 0, 0.1, 0.3, 0.5, 0.7, 0.9], [0, 0, 0.45, 0, 0.1, 0.2, 0.45, 0.2, 0.2])],
}


def early_exit_table(case):
    rows = []
    for seed, (id_curve, ood_curve) in enumerate(EXITS[case]):
        for split, curve in (("test_id", id_curve), ("test_ood", ood_curve)):
            for layer, final_norm, value in [*((layer, False, v) for layer, v in enumerate(curve)), (LAYERS, True, curve[-1])]:
                for point in (0, 1):
                    rows.append({"task": "modular", "method": "sft", "seed": seed, "point": point, "split": split, "layer": layer,
                                 "final_norm": final_norm, "accuracy": float(value) if point else 0.0})
    return pl.from_dicts(rows)


@pytest.mark.parametrize("case", CASES)
def test_ridge_next_to_the_best_ood_exit_and_id_exit_peaking_last(case):
    result = inforidge.claim_ridge_early_exit(mi_table("holds"), early_exit_table(case), SAMPLES, SEED)
    assert result.verdict == EXPECTED[case], result


def test_early_exit_claim_without_exit_curves_or_with_zero_accuracy():
    no_exits = early_exit_table("holds").clear()
    assert inforidge.claim_ridge_early_exit(mi_table("holds"), no_exits, SAMPLES, SEED).verdict == NOT_TESTED
    zero = inforidge.claim_ridge_early_exit(mi_table("holds"), early_exit_table("holds").with_columns(accuracy=pl.lit(0.0)), SAMPLES, SEED)
    assert zero.verdict == NOT_TESTED and "accuracy is 0 at every layer" in zero.measurement


@pytest.mark.parametrize("case", CASES)
def test_final_layer_drop_before_the_final_norm(case):
    result = inforidge.claim_raw_last_layer(mi_table(case), SAMPLES, SEED)
    assert result.verdict == EXPECTED[case], result  # the ambiguous CI is far narrower than the paper's 0.253 nats
    assert "(paper +0.253)" in result.mde
    assert "after the final norm" in result.measurement  # the paper's reading, as context


def test_raw_last_layer_claim_needs_the_raw_last_layer():
    assert inforidge.claim_raw_last_layer(mi_table("holds", last_layer="normed"), SAMPLES, SEED).verdict == NOT_TESTED
    assert inforidge.claim_raw_last_layer(mi_table("holds", last_layer="raw"), SAMPLES, SEED).verdict == REPRODUCED


# beta(OOD fit) - beta(ID fit) per block, for run seeds 0, 1, 2
BETA_DIFFERENCES = {"holds": {LAYERS: [-0.2] * 3, 6: [0.2] * 3}, "fails": {LAYERS: [0.2] * 3, 6: [-0.2] * 3},
                    "ambiguous": {LAYERS: [0.1, -0.1, 0.0], 6: [0.1, -0.1, 0.0]}}


def betas_table(case):
    rng = np.random.default_rng(2)
    rows = []
    for run_seed in range(3):
        for fit_seed in range(2):
            for block in range(1, LAYERS + 1):
                for fit_split in ("id", "ood"):
                    shift = BETA_DIFFERENCES[case].get(block, [0.0] * 3)[run_seed] if fit_split == "ood" else 0.0
                    rows.append({"task": "modular", "method": "sft", "run_seed": run_seed, "seed": fit_seed, "fit_split": fit_split,
                                 "layer": block, "beta": 1.0 + shift + rng.normal(0, 0.01)})
    return pl.from_dicts(rows)


@pytest.mark.parametrize("case", CASES)
def test_ood_betas_lower_on_the_last_block_and_higher_on_the_ridge(case):
    result = inforidge.claim_residual_scaling(mi_table("holds"), betas_table(case), SAMPLES, SEED)
    assert result.verdict == EXPECTED[case], result


def test_residual_scaling_without_fits_or_without_an_inner_ridge():
    assert inforidge.claim_residual_scaling(mi_table("holds"), betas_table("holds").clear(), SAMPLES, SEED).verdict == NOT_TESTED
    last_ridge = inforidge.claim_residual_scaling(mi_table("fails"), betas_table("holds"), SAMPLES, SEED)
    assert "the ridge is layer 8" in last_ridge.measurement


@pytest.mark.parametrize("case", CASES)
def test_ridge_under_other_kernels(case):
    settings = [("gaussian", 1.0, mi_table("holds")), ("laplacian", 1.0, mi_table(case)), ("polynomial", 1.0, mi_table("holds")),
                ("gaussian", 0.5, mi_table("holds"))]
    result = inforidge.claim_kernels(settings, SAMPLES, SEED)
    assert result.verdict == EXPECTED[case], result
    assert "widths not varied" not in result.measurement


def test_kernel_claim_with_the_gaussian_kernel_only_is_not_tested():
    result = inforidge.claim_kernels([("gaussian", 1.0, mi_table("holds"))], SAMPLES, SEED)
    assert result.verdict == NOT_TESTED and "laplacian and polynomial not run" in result.rule


# --- preconditions ---------------------------------------------------------------------------------


def curves_frame(layers=12, seeds=3):
    """mi.csv of SFT's runs on the modular task: raw layers 0..`layers` and the last after the final norm."""
    rows = [{"task": "modular", "method": "sft", "seed": seed, "point": 1, "split": "test_id", "quantity": "hidden", "layer": layer,
             "final_norm": final_norm, "sample_seed": 0, "mi": 0.1}
            for seed in range(seeds) for layer, final_norm in [*((layer, False) for layer in range(layers + 1)), (layers, True)]]
    return pl.from_dicts(rows)


def exits_frame(last_accuracy, layers=12):
    """early_exit.csv: ID accuracy `last_accuracy` at the raw last layer of the last checkpoint; an earlier
    checkpoint and the reading after the final norm at 1.0 (neither is the precondition's)."""
    rows = []
    for seed in range(3):
        for point in (0, 1):
            for layer, final_norm in [*((layer, False) for layer in range(layers + 1)), (layers, True)]:
                last = layer == layers and not final_norm and point == 1
                rows.append({"task": "modular", "method": "sft", "seed": seed, "point": point, "split": "test_id", "layer": layer,
                             "final_norm": final_norm, "accuracy": last_accuracy if last else 1.0 if layer == layers else 0.0})
    return pl.from_dicts(rows)


def attention_frame(seeds=3):
    """Attention masses (infoflow.inforidge.attention rows) of SFT's runs on the modular task."""
    return pl.from_dicts([{"task": "modular", "method": "sft", "seed": seed, "split": "test_id", "example_id": "e0", "layer": layer,
                           "signal": 0.25, "noise": 0.25, "last": 0.25, "rest": 0.25} for seed in range(seeds) for layer in (1, 2)])


def run_inputs(**changes):
    """check.main's inputs of a run on which every precondition holds, with `changes`."""
    inputs = {"steering": steering_table(), "mi": curves_frame(), "early_exit": exits_frame(0.95), "key_shares": key_shares("holds"),
              "flux_tokens": flux_tokens("holds"), "betas": betas_table("holds"), "recall": 0.95,
              "format_rates": {("knowledge", "test_ood"): 0.9}, "attention": attention_frame(), "depth_task": None, "depth_methods": []}
    return {**inputs, **changes}


def every_claim(verdict=REPRODUCED, detail=""):
    return [Claim(str(n), "claim", "paper", "source", "measurement", verdict, "rule", detail=detail) for n in range(1, 14)]


STEERING_CLAIMS, RIDGE_CLAIMS = ("1", "2", "3", "4", "5", "6", "7"), ("8", "9", "10", "11", "12", "13")
FAILURES = {  # precondition: (the run's change, the claims it makes not applicable, how the row names it)
    "recall": ({"recall": 0.5}, STEERING_CLAIMS, "the knowledge is in the base model: the base model's cloze recall 50.0%, needs >= 70.0%"),
    "sft_learned": ({"steering": steering_table(sft_accuracy=0.6)}, ("1", "2", "3", "4", "5"),
                    "SFT has learned the task: SFT's ID accuracy (knowledge) 60.0%, needs >= 65.0%"),
    "sft_room": ({"steering": steering_table(sft_accuracy=0.96)}, ("1", "2", "4", "5"),
                 "SFT leaves room: SFT's ID accuracy (knowledge) 96.0%, needs <= 94.0%"),
    "base_format": ({"format_rates": {("knowledge", "test_ood"): 0.5}}, ("3",),
                    "the base model answers in the task format: the base model's share of OOD answers in the task format (knowledge) "
                    "50.0%, needs >= 85.0%"),
    "task_learned": ({"early_exit": exits_frame(0.8)}, RIDGE_CLAIMS,
                     "the task is learned: SFT's ID early-exit accuracy at the last layer (modular) 80.0%, needs >= 93.0%"),
    "depth": ({"mi": curves_frame(layers=8)}, RIDGE_CLAIMS,
              "the model is deep enough for a ridge: transformer blocks (modular) 8, needs >= 12"),
    "accuracy seeds": ({"steering": steering_table(seeds=2)}, ("1", "2", "3", "4", "5"),
                       "enough seeds for a CI: run seeds (accuracy runs) 2, needs >= 3"),
    "key-share seeds": ({"key_shares": key_shares("holds").filter(pl.col("seed") != "2")}, ("6",),
                        "enough seeds for a CI: run seeds (key shares) 2, needs >= 3"),
    "flux seeds": ({"flux_tokens": flux_tokens("holds").filter(pl.col("seed") < 2)}, ("7",),
                   "enough seeds for a CI: run seeds (flux) 2, needs >= 3"),
    "curve seeds": ({"mi": curves_frame(seeds=2)}, ("8", "9", "10", "12"),
                    "enough seeds for a CI: run seeds (information curves) 2, needs >= 3"),
    "beta seeds": ({"betas": betas_table("holds").filter(pl.col("run_seed") < 2)}, ("11",),
                   "enough seeds for a CI: run seeds (residual scaling) 2, needs >= 3"),
    "attention seeds": ({"attention": attention_frame(seeds=2)}, ("13",), "enough seeds for a CI: run seeds (attention) 2, needs >= 3"),
}


def test_every_precondition_holds_on_a_run_that_meets_them():
    claims = preconditions.applied(every_claim(), preconditions.measure(run_inputs()))
    assert [c.verdict for c in claims] == [REPRODUCED] * 13
    assert all(c.preconditions and "fails" not in c.preconditions and "not measured" not in c.preconditions for c in claims)
    assert "SFT leaves room: SFT's ID accuracy (knowledge) 75.0%, needs <= 94.0%: holds" in claims[0].preconditions
    assert "transformer blocks (modular) 12, needs >= 12: holds" in claims[7].preconditions


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_precondition_makes_its_claims_not_applicable_naming_it(failure):
    changes, hit, named = FAILURES[failure]
    for claim in preconditions.applied(every_claim(), preconditions.measure(run_inputs(**changes))):
        if claim.number in hit:
            assert claim.verdict == NOT_APPLICABLE and claim.detail == f"{named}; by its CI alone: reproduced", claim
            assert f"{named}: fails" in claim.preconditions
        else:
            assert claim.verdict == REPRODUCED and "fails" not in claim.preconditions, claim


def test_not_applicable_keeps_the_cis_verdict_and_leaves_not_tested_alone():
    checks = preconditions.measure(run_inputs(recall=0.5))
    weak = preconditions.applied(every_claim(UNDERPOWERED, "MDE 4.3 points; paper +2.1"), checks)[0]
    assert weak.verdict == NOT_APPLICABLE and weak.detail.endswith("by its CI alone: underpowered (MDE 4.3 points; paper +2.1)")
    assert preconditions.applied(every_claim(NOT_TESTED), checks)[0].verdict == NOT_TESTED


def test_sft_runs_of_another_task_are_not_steered_runs():
    # The depth analysis's SFT runs of the modular task (kind sft) leave the accuracy preconditions to the knowledge task.
    depth_runs = steering_table({"sft": {"kind": "sft"}, "sft_depth4": {"kind": "sft"}}, task="modular", sft_accuracy=0.99)
    checks = preconditions.measure(run_inputs(steering=pl.concat([steering_table(), depth_runs], how="diagonal_relaxed")))
    assert [c.where for c in checks["sft_room"]] == ["knowledge"] and all(c.holds for c in checks["sft_room"])


def test_an_unmeasured_precondition_is_shown_and_leaves_the_verdict_to_the_ci():
    claims = preconditions.applied(every_claim(), preconditions.measure(run_inputs(recall=None, format_rates={})))
    assert [c.verdict for c in claims] == [REPRODUCED] * 13
    assert "the knowledge is in the base model: not measured, no cloze recall" in claims[0].preconditions
    assert "the base model answers in the task format: not measured, no format_rate" in claims[2].preconditions


def test_format_rates_are_read_where_recorded(tmp_path):
    files = []
    for task, rate in (("knowledge", 0.25), ("modular", None)):
        files.append(tmp_path / f"{task}.json")
        recorded = {} if rate is None else {"format_rate": rate}
        tags = {"task": task, "method": "base", "seed": "0", "split": "test_ood"}
        files[-1].write_text(json.dumps({"accuracy": 0.0, "tags": tags, **recorded}))
    assert preconditions.read_format_rates(files) == {("knowledge", "test_ood"): 0.25, ("modular", "test_ood"): None}


# --- the command -----------------------------------------------------------------------------------


def write_eval(folder, task, method, seed, split, table, format_rate=None):
    """The metrics and predictions files of the run `seed` of a correctness Matrix (with format_rate where given)."""
    stem = folder / "eval" / f"{task}-{method}-{seed}-{split}"
    stem.parent.mkdir(exist_ok=True)
    correct = table.values[table.rows.index(seed)]
    pl.DataFrame({"id": list(table.columns), "correct": correct.astype(bool)}).write_csv(stem.with_suffix(".csv"))
    tags = {"task": task, "method": method, "seed": str(seed), "split": split}
    recorded = {} if format_rate is None else {"format_rate": format_rate}
    metrics = {"n": len(correct), "accuracy": float(correct.mean()), "by_group": {}, "tags": tags, **recorded}
    stem.with_suffix(".json").write_text(json.dumps(metrics))
    return stem.with_suffix(".json")


def write_flux(path, tokens):
    from infoflow import parquet
    from infoflow.infosteer import flux

    schema = flux.schema(LAYERS)
    columns = {"run": "r", "task": "knowledge", "position": np.arange(len(tokens)), "token_id": np.zeros(len(tokens), dtype=int),
               "text": ["w"] * len(tokens), "copied": (tokens["token_class"] == "copied").to_list(),
               "entropy": np.repeat(tokens["flux"].to_numpy()[:, None], LAYERS, axis=1), **{c: tokens[c].to_list() for c in tokens.columns}}
    with parquet.writer(path, schema) as write:
        write(columns)
    return path


def test_command_writes_every_claim(tmp_path):
    """check.main() on synthetic files of every kind: one row per claim, in order; reg_neg equals SFT exactly (CI [0, 0]),
    and neither a late-layer run nor a polynomial kernel estimate exists. InfoSteer's preconditions hold; the
    8-layer model of the InfoRidge tables is too shallow, and exits at 90% ID accuracy, so claims 8-11 are not
    applicable whatever their CIs say."""
    steering = steering_table(diffs={"int": DIFFERENCES["holds"], "reg": DIFFERENCES["fails"]})
    steering.write_csv(tmp_path / "steering.csv")
    runs, base = ood_runs("holds")
    metrics = [write_eval(tmp_path, task, method, seed, split, table) for (task, method, split), table in runs.items() for seed in table.rows]
    base_metrics = [write_eval(tmp_path, task, method, 0, split, table, format_rate=0.9) for (task, method, split), table in base.items()]
    recall = tmp_path / "recall.json"
    recall.write_text(json.dumps({"accuracy": 0.95, "n": 800, "tags": {"model": "base", "split": "cloze"}}))
    key_files = []
    for i, row in enumerate(key_shares("holds").iter_rows(named=True)):
        key_files.append(tmp_path / f"keys{i}.json")
        tags = {"method": row["method"]} if row["method"] == "base" else {"method": row["method"], "seed": str(row["seed"])}
        key_files[-1].write_text(json.dumps({"overall": {r: row[r] for r in ("low", "medium", "high")}, "tags": tags}))
    flux_file = write_flux(tmp_path / "tokens.parquet", flux_tokens("holds"))
    tables = {"mi": mi_table("holds"), "early_exit": early_exit_table("holds"), "betas": betas_table("holds"),
              "laplacian": mi_table("holds").with_columns(kernel=pl.lit("laplacian"), sigma=pl.lit(1.0))}  # as infoflow.inforidge.kernel_check writes it
    for name, table in tables.items():
        table.write_csv(tmp_path / f"{name}.csv")
    out = {"md": tmp_path / "out" / "claims.md", "csv": tmp_path / "out" / "claims.csv"}
    check.main(["--steering", str(tmp_path / "steering.csv"), "--metrics", *map(str, metrics), "--base-metrics", *map(str, base_metrics),
                 "--recall", str(recall),
                 "--key-shares", *map(str, key_files), "--flux-tokens", str(flux_file), "--mi", str(tmp_path / "mi.csv"),
                 "--early-exit", str(tmp_path / "early_exit.csv"), "--betas", str(tmp_path / "betas.csv"),
                 "--kernel", "gaussian", "--sigma", "1.0", "--kernel-mi", str(tmp_path / "laplacian.csv"),
                 "--bootstrap-samples", str(SAMPLES), "--seed", str(SEED), "--markdown", str(out["md"]), "--csv", str(out["csv"])])
    table = pl.read_csv(out["csv"], schema_overrides={"number": pl.String})
    assert table.columns == ["number", "claim", "paper", "source", "measurement", "verdict", "rule", "mde", "preconditions", "detail"]
    assert table["number"].to_list() == [str(n) for n in range(1, 17)]
    assert dict(zip(table["number"], table["verdict"])) == {
        "1": REPRODUCED, "2": NOT_REPRODUCED, "3": REPRODUCED, "4": NOT_REPRODUCED, "5": NOT_TESTED, "6": REPRODUCED, "7": REPRODUCED,
        "8": NOT_APPLICABLE, "9": NOT_APPLICABLE, "10": NOT_APPLICABLE, "11": NOT_APPLICABLE, "12": NOT_TESTED,
        "13": NOT_TESTED,  # no --attention files
        "14": NOT_TESTED,  # no --depth-methods
        "15": NOT_TESTED,  # no --multitoken files
        "16": NOT_TESTED,  # no variant run
    }
    rows = {row["number"]: row for row in table.iter_rows(named=True)}
    assert rows["8"]["detail"] == ("the model is deep enough for a ridge: transformer blocks (modular) 8, needs >= 12; the task is learned: "
                                   "SFT's ID early-exit accuracy at the last layer (modular) 90.0%, needs >= 93.0%; by its CI alone: reproduced")
    assert "the knowledge is in the base model: the base model's cloze recall 95.0%, needs >= 70.0%: holds" in rows["1"]["preconditions"]
    assert "share of OOD answers in the task format (knowledge) 90.0%, needs >= 85.0%: holds" in rows["3"]["preconditions"]
    assert rows["1"]["mde"].endswith("4.3 points (paper +2.1)") and rows["9"]["mde"].startswith("not defined")
    text = out["md"].read_text()
    assert text.startswith("# Claims of InfoSteer and InfoRidge on this run\n\n**reproduced**: the whole 95% CI")
    assert "| 1 | InfoSteer's intervention raises ID accuracy" in text and "**not applicable** (the model is deep enough" in text
    assert "reproduced: 4, not reproduced: 2, inconclusive: 0, underpowered: 0, not applicable: 4, not tested: 6" in text
    assert "# Preconditions: thresholds and where they come from" in text
