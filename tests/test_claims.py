"""The claims' verdict rules on synthetic tables: for each claim, one where it clearly holds, one where
it clearly fails, one where the CI straddles the threshold, and one without the runs it needs."""

import json

import numpy as np
import polars as pl
import pytest

from infoflow.report.claims import check, inforidge, infosteer, verdicts
from infoflow.report.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, Estimate
from infoflow.report.stats import Matrix

SAMPLES, SEED = 200, 0
CASES = ("holds", "fails", "ambiguous")
EXPECTED = {"holds": REPRODUCED, "fails": NOT_REPRODUCED, "ambiguous": INCONCLUSIVE}


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


# --- InfoSteer: accuracy ---------------------------------------------------------------------------

METHODS = {
    "sft": {"kind": "sft"},
    "int": {"kind": "intervention", "p": 0.01, "alpha": 1.0, "layers": "all"},
    "int_big": {"kind": "intervention", "p": 0.05, "alpha": 5.0, "layers": "all"},
    "reg": {"kind": "regularization", "lam": 0.01, "layers": "all"},
    "reg_neg": {"kind": "regularization", "lam": -0.01, "layers": "all"},
}
DIFFERENCES = {"holds": (0.05, 0.02, 0.08), "fails": (-0.05, -0.08, -0.02), "ambiguous": (0.01, -0.02, 0.04)}


def steering_table(methods=METHODS, diffs=None, task="knowledge"):
    """steering_vs_sft.csv: `diffs` {method: (diff, low, high)} on ID (and OOD), zero where not given."""
    rows = []
    for method, entry in methods.items():
        for split in ("test_id", "test_ood"):
            diff = (diffs or {}).get(method, (0.0, 0.0, 0.0))
            rows.append({"task": task, "method": method, "kind": entry["kind"], "p": entry.get("p"), "alpha": entry.get("alpha"),
                         "lam": entry.get("lam"), "layers": entry.get("layers"), "split": split, "seeds": 3,
                         "accuracy_mean": 0.5 + diff[0], "diff_vs_sft": np.nan if method == "sft" else diff[0],
                         "diff_ci95_low": np.nan if method == "sft" else diff[1], "diff_ci95_high": np.nan if method == "sft" else diff[2]})
    return pl.from_dicts(rows, schema_overrides={name: pl.Float64 for name in ("p", "alpha", "lam")})


def test_the_claims_use_the_run_nearest_the_papers_default():
    steering = steering_table({**METHODS, "int_early": {"kind": "intervention", "p": 0.01, "alpha": 1.0, "layers": "early"}})
    assert infosteer.steered_methods(steering) == {"intervention": "int", "regularization": "reg"}
    only_groups = steering_table({"sft": METHODS["sft"], "reg_mid": {"kind": "regularization", "lam": 0.05, "layers": "middle"}})
    assert infosteer.steered_methods(only_groups) == {"intervention": None, "regularization": "reg_mid"}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("claim, method", [(infosteer.claim_intervention_id, "int"), (infosteer.claim_regularization_id, "reg")])
def test_steering_beats_sft_on_id(claim, method, case):
    result = claim(steering_table(diffs={method: DIFFERENCES[case]}))
    assert result.verdict == EXPECTED[case], result
    if case == "holds":
        assert "+5.0 [+2.0, +8.0]" in result.measurement


@pytest.mark.parametrize("case", CASES)
def test_negative_lambda_does_worse_than_sft(case):
    diff, low, high = DIFFERENCES[case]
    assert infosteer.claim_negative_lambda(steering_table(diffs={"reg_neg": (-diff, -high, -low)})).verdict == EXPECTED[case]


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
    assert result.verdict == EXPECTED[case], result
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
    assert result.verdict == EXPECTED[case], result
    assert result.measurement.count("late - ") == 4


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
    assert infosteer.claim_key_shift(steering_table(), key_shares(case)).verdict == EXPECTED[case]


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
        for seed in (0, 1):
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
    assert result.verdict == EXPECTED[case], result
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


# --- the command -----------------------------------------------------------------------------------


def write_eval(folder, task, method, seed, split, table):
    """The metrics and predictions files of the run `seed` of a correctness Matrix."""
    stem = folder / "eval" / f"{task}-{method}-{seed}-{split}"
    stem.parent.mkdir(exist_ok=True)
    correct = table.values[table.rows.index(seed)]
    pl.DataFrame({"id": list(table.columns), "correct": correct.astype(bool)}).write_csv(stem.with_suffix(".csv"))
    tags = {"task": task, "method": method, "seed": str(seed), "split": split}
    stem.with_suffix(".json").write_text(json.dumps({"n": len(correct), "accuracy": float(correct.mean()), "by_group": {}, "tags": tags}))
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
    and neither a late-layer run nor a polynomial kernel estimate exists."""
    steering = steering_table(diffs={"int": DIFFERENCES["holds"], "reg": DIFFERENCES["fails"]})
    steering.write_csv(tmp_path / "steering.csv")
    runs, base = ood_runs("holds")
    metrics = [write_eval(tmp_path, task, method, seed, split, table) for (task, method, split), table in runs.items() for seed in table.rows]
    base_metrics = [write_eval(tmp_path, task, method, 0, split, table) for (task, method, split), table in base.items()]
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
                 "--key-shares", *map(str, key_files), "--flux-tokens", str(flux_file), "--mi", str(tmp_path / "mi.csv"),
                 "--early-exit", str(tmp_path / "early_exit.csv"), "--betas", str(tmp_path / "betas.csv"),
                 "--kernel", "gaussian", "--sigma", "1.0", "--kernel-mi", str(tmp_path / "laplacian.csv"),
                 "--bootstrap-samples", str(SAMPLES), "--seed", str(SEED), "--markdown", str(out["md"]), "--csv", str(out["csv"])])
    table = pl.read_csv(out["csv"], schema_overrides={"number": pl.String})
    assert table["number"].to_list() == [str(n) for n in range(1, 13)]
    assert dict(zip(table["number"], table["verdict"])) == {
        "1": REPRODUCED, "2": NOT_REPRODUCED, "3": REPRODUCED, "4": NOT_REPRODUCED, "5": NOT_TESTED, "6": REPRODUCED, "7": REPRODUCED,
        "8": REPRODUCED, "9": REPRODUCED, "10": REPRODUCED, "11": REPRODUCED, "12": NOT_TESTED,
    }
    text = out["md"].read_text()
    assert text.startswith("# Claims of InfoSteer and InfoRidge") and "| 1 | InfoSteer's intervention raises ID accuracy" in text
    assert "reproduced: 8, not reproduced: 2, inconclusive: 0, not tested: 2" in text
