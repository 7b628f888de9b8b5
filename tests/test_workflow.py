"""The whole DAG on the smoke config, in a temporary copy of the workflow, run as a user runs it."""

import json
import math
import os
import re
from contextlib import contextmanager

import pandas as pd
import pytest
import yaml

from conftest import RESULTS, copy_workflow, run_folders, snakemake, world_dir

FINAL_TABLES = ["accuracy.csv", "accuracy.md", "knowledge_recall.csv", "knowledge_recall.md", "steering_vs_sft.md", "ablation.md", "key_shift.md"]
STEERED = ["int_p10_a2", "reg_l0.1"]  # the smoke config's steered methods, on the knowledge task only
VARIANTS = ["sem_g8", "act_g8", "sel_t1_g0.5", "entmax_l0.01"]  # InfoSteer's fine-grained variants, one seed each
DEPTH = "sft_depth2"  # the depth analysis's SFT from a 2-layer copy of the modular task's 3-block base model


# Any config change rewrites the run's merged config and its provenance, and nothing else by itself.
CONFIG_RECORD = {"run_config": 1, "provenance": 1}


def job_counts(dry_run_output):
    """{rule: count} from the 'Job stats' table of a dry run."""
    table = dry_run_output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def reasons(dry_run_output):
    """{reason: set of rules} from the 'Reasons:' summary of a dry run."""
    summary = dry_run_output.split("Reasons:")[1].split("\n\n")[0]
    found = {}
    for reason, rules in re.findall(r"^    (\S[^\n]*):\n        ([^\n]+)", summary, re.M):
        found[reason] = {r.strip() for r in rules.split(",")}
    return found


def set_config_value(workdir, old, new):
    path = workdir / "config.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@contextmanager
def dry_run_with(workdir, old, new):
    """The dry-run output with one config text replaced; the config is restored afterwards."""
    set_config_value(workdir, old, new)
    try:
        result = snakemake(workdir, "-n")
        yield result.stdout + result.stderr
    finally:
        set_config_value(workdir, new, old)


def test_full_run_writes_well_formed_results(smoke_run):
    results = smoke_run / RESULTS
    for name in FINAL_TABLES:
        assert (results / "tables" / name).stat().st_size > 0
    accuracy = pd.read_csv(results / "tables/accuracy.csv")
    runs = sorted({("knowledge", m) for m in ["base", "sft", *STEERED, *VARIANTS]} | {("modular", m) for m in ("base", "sft", DEPTH)})
    assert sorted(zip(accuracy.task, accuracy.method, accuracy.split)) == [(t, m, s) for t, m in runs for s in ("test_id", "test_ood")]
    base, one_seed = accuracy.method == "base", accuracy.method.isin(VARIANTS)  # the base model: one evaluation, no interval
    assert (accuracy.seeds[~base & ~one_seed] == 2).all() and (accuracy.seeds[base | one_seed] == 1).all() and accuracy.ci95_low[base].isna().all()
    assert accuracy.accuracy_mean.between(0, 1).all()
    comparison = pd.read_csv(results / "tables/steering_vs_sft.csv")
    steered = comparison[comparison.method.isin(STEERED)]
    assert len(steered) == 4 and steered.diff_vs_sft.notna().all()
    assert (steered.diff_ci95_low <= steered.diff_vs_sft).all() and (steered.diff_vs_sft <= steered.diff_ci95_high).all()
    assert "| reg_l0.1 | regularization |" in (results / "tables/ablation.md").read_text()
    recall = pd.read_csv(results / "tables/knowledge_recall.csv")
    assert recall.attribute.tolist() == ["city", "company", "field", "year", "all"]
    assert recall.n_facts.tolist() == [12, 12, 12, 12, 48]
    assert (results / "figures/accuracy.png").read_bytes()[:4] == b"\x89PNG"
    # Models were saved the Hugging Face way, in the shared folder runs.csv names.
    folders = run_folders(smoke_run)
    for run in (("knowledge", "sft", 0), ("modular", "sft", 1)):
        assert (smoke_run / folders[run]["folder"] / "model/model.safetensors").is_file()
    key_shift = pd.read_csv(results / "tables/key_shift.csv").set_index("method")
    assert list(key_shift.index) == ["base", "sft", *STEERED, *VARIANTS] and key_shift.loc["base", "medium"] == pytest.approx(0.5, abs=0.02)
    assert (results / "figures/key_shift.png").read_bytes()[:4] == b"\x89PNG"
    # Every job left a benchmark: the run's own jobs here, each job on its models in its output folder.
    assert len(list((results / "benchmarks").rglob("*.tsv"))) == 18
    for row in folders.values():
        for stage in ("folder", "evaluation", "activations", "ridge", "kernels", "residual_scaling", "flux", "key_shares", "attention"):
            assert not row[stage] or len(list((smoke_run / row[stage]).glob("*.tsv"))) == 1
    assert not list(results.rglob("*.tmp")) and not list(results.rglob(".partial-*"))
    # The InfoRidge checkpoints were deleted once extracted (inforidge.keep_checkpoints: false).
    assert not list(world_dir(smoke_run).glob("runs/**/checkpoints/point*"))


def test_inforidge_outputs(smoke_run):
    from infoflow.inforidge import activations

    results = smoke_run / RESULTS
    parquet = activations.read(smoke_run / run_folders(smoke_run)["modular", "sft", 1]["activations"] / "point02.parquet")
    frame = parquet.drop_columns(list(activations.VECTOR_COLUMNS)).to_pandas()
    # The modular task's own 3-block model: splits x examples x rows (embeddings, 3 blocks, the last normed).
    assert len(frame) == 2 * 16 * 5 and set(frame.layer) == {0, 1, 2, 3} and frame.final_norm.sum() == 32
    layers = pd.read_csv(results / "tables/ridge_layers.csv")
    assert sorted(layers.point.unique()) == [0, 1, 2]
    runs = {("knowledge", m) for m in ["sft", *STEERED, *VARIANTS]} | {("modular", "sft"), ("modular", DEPTH)}
    assert set(zip(layers.task, layers.method)) == runs
    assert layers.mi_hidden.between(0, math.log(12)).all()  # I <= H <= log N (N = 12) and layers.early_exit.between(0, 1).all()
    betas = pd.read_csv(results / "tables/residual_scaling.csv")
    assert set(zip(betas.task, betas.fit_split)) == {(t, s) for t in ("knowledge", "modular") for s in ("id", "ood")}
    assert (betas.fits == 2 * 2).all() and (betas.beta_mean >= 0).all()  # run seeds x fit seeds
    markdown = (results / "tables/ridge.md").read_text()
    assert "paper Table 1" in markdown and "Residual scaling" in markdown
    for name in ("ridge_heatmap", "ridge_curves", "ridge_gain", "early_exit", "residual_scaling"):
        assert (results / f"figures/{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_flux_outputs(smoke_run):
    results = smoke_run / RESULTS
    classes = pd.read_csv(results / "tables/flux_classes.csv")
    assert set(classes.method) == {"sft", *STEERED, *VARIANTS} and classes.tokens.sum() > 0
    comparison = pd.read_csv(results / "tables/flux_vs_sft.csv")
    assert set(comparison.method) == {*STEERED, *VARIANTS} and comparison.p_value.dropna().between(0, 1).all()
    page = (results / "flux.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("class='response'") == 2 * 7  # prompts x methods
    for name in ("flux_examples", "flux_classes"):
        assert (results / f"figures/{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_attention_outputs(smoke_run):
    results = smoke_run / RESULTS
    masses = pd.read_csv(smoke_run / run_folders(smoke_run)["modular", "sft", 1]["attention"] / "masses.csv")
    # The modular task's 3-block model: splits x examples x layers, the four masses summing to 1.
    assert len(masses) == 2 * 8 * 3 and set(masses.layer) == {1, 2, 3}
    assert (masses[["signal", "noise", "last", "rest"]].sum(axis=1) - 1).abs().max() < 1e-5
    layers = pd.read_csv(results / "tables/attention_layers.csv")
    assert set(zip(layers.task, layers.method, layers.split)) == {("modular", "sft", s) for s in ("test_id", "test_ood")}
    assert (layers.runs == 2).all() and (layers.ci95_low <= layers.mass + 1e-9).all() and layers.sft_ridge_layer.notna().all()
    assert "paper Table 2" in (results / "tables/attention.md").read_text()
    assert (results / "figures/attention.png").read_bytes()[:4] == b"\x89PNG"


def test_estimator_setting_reruns_only_the_information_analysis(smoke_run):
    with dry_run_with(smoke_run, "sample_seeds: 2, kernel: gaussian", "sample_seeds: 2, kernel: laplacian") as output:
        # and what reads the ridge layer (attention, depth) or estimates with the same kernel (multi-token)
        assert job_counts(output) == {"ridge_analysis": 14, "ridge_tables": 1, "ridge_figures": 1, "claims": 1, **CONFIG_RECORD, "all": 1,
                                      "attention_tables": 1, "attention_figure": 1, "depth_report": 1, "multitoken_information": 1,
                                      "multitoken_report": 1}


def test_claims_check_gives_every_claim_a_verdict_and_its_rule(smoke_run):
    claims = pd.read_csv(smoke_run / RESULTS / "claims.csv", dtype={"number": str})
    assert claims.number.tolist() == [str(n) for n in range(1, 17)]
    assert set(claims.verdict) <= {"reproduced", "not reproduced", "inconclusive", "underpowered", "not applicable", "not tested"}
    assert claims.rule.str.contains("95% CI").all() and claims.paper.str.len().gt(0).all()
    # Every claim shows its preconditions, measured on the run; the smoke config's 2 seeds are too few.
    assert claims.preconditions.str.contains("enough (?:sampling )?seeds for a CI").all()
    tested = claims[claims.verdict != "not tested"]
    # (2 run seeds, 1 for the variants, 2 sampling seeds for the multi-token information)
    assert (tested.verdict == "not applicable").all() and tested.preconditions.str.contains(r"[12], needs >= 3: fails").all()
    # The smoke config runs the Laplacian and polynomial kernels, so claim 12 is judged.
    assert claims.set_index("number").loc["12", "verdict"] != "not tested"
    assert (smoke_run / RESULTS / "claims.md").read_text().startswith("# Claims of InfoSteer and InfoRidge on this run")


def test_second_run_has_nothing_to_do(smoke_run):
    result = snakemake(smoke_run, "-n")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


def test_the_model_jobs_ran_on_the_fork_server(smoke_run):
    # Every post-training and evaluation job of the run, and no job that failed inside the server.
    started = (smoke_run / ".snakemake/forkserver.log").read_text()
    runs = pd.read_csv(smoke_run / RESULTS / "runs.csv")
    assert started.count("python -m infoflow.posttrain.finetune in") == len(runs)
    assert started.count("python -m infoflow.posttrain.evaluate in") >= len(runs)
    assert "Traceback" not in started


def test_evaluation_value_reruns_only_evaluation_tables_and_figure(smoke_run):
    with dry_run_with(smoke_run, "max_new_tokens: 3", "max_new_tokens: 2") as output:
        assert job_counts(output) == {
            "evaluate": 14, "evaluate_base": 2, "knowledge_recall": 1, "accuracy_table": 1, "knowledge_recall_table": 1,
            "steering_tables": 1, "accuracy_figure": 1, "claims": 1, **CONFIG_RECORD, "all": 1,
        }
        # Evaluations of other settings go to new folders (their stage key), beside the old ones.
        assert reasons(output)["output files have to be generated"] >= {"evaluate", "evaluate_base", "knowledge_recall"}


def test_base_model_demonstrations_rerun_only_the_base_evaluation_and_what_reads_it(smoke_run):
    with dry_run_with(smoke_run, "base_evaluation: {demonstrations: 2,", "base_evaluation: {demonstrations: 1,") as output:
        assert job_counts(output) == {"evaluate_base": 2, "accuracy_table": 1, "accuracy_figure": 1, "claims": 1, **CONFIG_RECORD, "all": 1}


def test_the_base_model_is_evaluated_few_shot_with_a_format_rate(smoke_run):
    [metrics] = world_dir(smoke_run).glob("base/knowledge/eval-*/test_ood.json")
    measured = json.loads(metrics.read_text())
    assert measured["demonstrations"] == 2 and 0 <= measured["accuracy"] <= measured["format_rate"] <= 1


def test_settings_that_change_no_shared_output_rerun_no_shared_job(smoke_run, tmp_path):
    # The flux page's prompt count is the report's; the Trainer's tracker is where progress goes.
    overlay = tmp_path / "report_only.yaml"
    overlay.write_text(yaml.safe_dump({"flux": {"render_prompts": 1}, "training": {"report_to": "tensorboard"}}))
    result = snakemake(smoke_run, "-n", "--configfile", "config.yaml", overlay)
    assert job_counts(result.stdout + result.stderr) == {"flux_tables": 1, "flux_figures": 1, **CONFIG_RECORD, "all": 1}


def test_figure_value_reruns_only_the_figure(smoke_run):
    with dry_run_with(smoke_run, "dpi: 60", "dpi: 70") as output:
        assert job_counts(output) == {"accuracy_figure": 1, "key_shift_report": 1, "ridge_figures": 1, "flux_figures": 1,
                                      "multitoken_report": 1, "attention_figure": 1, "depth_report": 1, "surrogate_figure": 1,
                                      **CONFIG_RECORD, "all": 1}


def test_one_task_epochs_rerun_only_that_task_chain(smoke_run):
    with dry_run_with(smoke_run, "epochs: {knowledge: 1, modular: 1}", "epochs: {knowledge: 1, modular: 2}") as output:
        assert job_counts(output) == {
            "finetune": 4, "evaluate": 4, "accuracy_table": 1, "steering_tables": 1, "accuracy_figure": 1,  # SFT and the depth's
            "extract_activations": 4, "ridge_analysis": 4, "fit_residual_scaling": 2, "ridge_tables": 1, "ridge_figures": 1,
            "kernel_check": 2, "attention_masses": 2, "attention_tables": 1, "attention_figure": 1, "depth_report": 1,
            "claims": 1, **CONFIG_RECORD, "all": 1,
        }
        assert not [path for path in job_outputs(output) if "/runs/knowledge/" in path]  # only modular runs retrain


def job_outputs(dry_run_output):
    """Every output path of the jobs a dry run lists."""
    return [path for line in re.findall(r"^    output: (.+)$", dry_run_output, re.M) for path in line.split(", ")]


def jobs_after_editing(smoke_run, module):
    """The job counts of a dry run after an edit to src/infoflow/<module>.py (undone afterwards)."""
    path = smoke_run / f"src/infoflow/{module}.py"
    text, stat = path.read_text(), path.stat()
    path.write_text(text + "# an edit\n")
    try:
        result = snakemake(smoke_run, "-n")
    finally:
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return job_counts(result.stdout + result.stderr)


def test_editing_an_analysis_module_reruns_only_its_analysis_and_figures(smoke_run):
    # kernel_check and the multi-token stage estimate I(Z;Y) with mi.py too; the claims read them all.
    assert jobs_after_editing(smoke_run, "inforidge/mi") == {
        "ridge_analysis": 14, "kernel_check": 4, "ridge_tables": 1, "ridge_figures": 1, "claims": 1, "all": 1,
        "multitoken_information": 1, "multitoken_report": 1, "attention_tables": 1, "attention_figure": 1, "depth_report": 1,
    }


def test_editing_the_figure_module_reruns_only_figure_jobs(smoke_run):
    # Tables, statistics and the claims never import figure code (tests/test_layers.py), so an edit
    # to the shared figure module reruns the jobs that draw and nothing else.
    assert jobs_after_editing(smoke_run, "report/figures") == {
        "accuracy_figure": 1, "key_shift_report": 1, "ridge_figures": 1, "flux_figures": 1, "attention_figure": 1, "all": 1,
        "multitoken_report": 1, "depth_report": 1, "surrogate_figure": 1,
    }


def test_editing_the_statistics_module_reruns_tables_and_claims_but_no_model_job(smoke_run):
    counts = jobs_after_editing(smoke_run, "report/stats")
    assert counts and "claims" in counts and not counts.keys() & {
        "finetune", "evaluate", "extract_activations", "ridge_analysis", "token_flux", "key_shares", "pretrain_base_model"}


def test_one_method_hyperparameter_reruns_only_that_method_chain(smoke_run):
    with dry_run_with(smoke_run, "lam: 0.1, layers", "lam: 0.2, layers") as output:
        per_run = [path for path in job_outputs(output) if "/runs/" in path]
        assert per_run and all("/reg_l0.1/" in path for path in per_run)
        counts = job_counts(output)
        assert {rule: counts.pop(rule) for rule in ("finetune", "evaluate", "extract_activations", "ridge_analysis", "key_shares", "token_flux")} == {
            "finetune": 2, "evaluate": 2, "extract_activations": 2, "ridge_analysis": 2, "key_shares": 2, "token_flux": 2,
        }
        assert set(counts.values()) == {1}  # tables, figures and `all`, once each


def test_a_second_named_run_lives_beside_the_first_and_reruns_only_the_changed_method(smoke_run, tmp_path):
    # The smoke run, then an overlay naming another run with one method's lambda changed.
    overlay = tmp_path / "lam.yaml"
    overlay.write_text(yaml.safe_dump({"run": "smoke_lam", "methods": {
        "reg_l0.1": {"kind": "regularization", "lam": 0.2, "layers": "early+middle", "tasks": ["knowledge"]}}}))
    result = snakemake(smoke_run, "-n", "--configfile", overlay)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    # Only the changed method's chain runs again, in new folders of resources/; the world, the base
    # model, its evaluations and every other method's chain of equal settings are found there.
    shared = [path for path in job_outputs(output) if not path.startswith("results/smoke_lam/")]
    assert shared and all(path.startswith(f"{world_dir(smoke_run).relative_to(smoke_run)}/runs/knowledge/reg_l0.1/") for path in shared)
    counts = job_counts(output)
    assert {rule: counts.pop(rule) for rule in ("finetune", "evaluate", "extract_activations", "ridge_analysis", "key_shares", "token_flux")} == {
        "finetune": 2, "evaluate": 2, "extract_activations": 2, "ridge_analysis": 2, "key_shares": 2, "token_flux": 2,
    }
    assert set(counts.values()) == {1} and not counts.keys() & {"pretrain_base_model", "evaluate_base", "key_thresholds"}
    assert f"{RESULTS}/" not in output  # the first run's folder is left alone


def test_analyses_measure_their_tasks_and_first_seeds_and_a_method_runs_its_own_seeds(smoke_run, tmp_path):
    # A third knowledge seed for every method but reg_l0.1, which keeps its first seed only (its
    # folder key does not hold how many, so that run is found done); InfoRidge on the modular task
    # only, flux and key shares on the first seed of each method.
    overlay = tmp_path / "subsets.yaml"
    overlay.write_text(yaml.safe_dump({
        "run": "smoke_subsets", "seeds": {"knowledge": [0, 1, 2], "modular": [0, 1]},
        "methods": {"reg_l0.1": {"kind": "regularization", "lam": 0.1, "layers": "early+middle", "tasks": ["knowledge"], "run_seeds": 1}},
        "inforidge": {"tasks": ["modular"]}, "flux": {"run_seeds": 1}, "key_shift": {"run_seeds": 1}}))
    result = snakemake(smoke_run, "-n", "--configfile", overlay)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    counts = job_counts(output)
    new_runs = {re.search(r"/runs/knowledge/([^/]+)/[^/]+/seed(\d+)/", path).groups() for path in job_outputs(output) if "/runs/" in path}
    assert new_runs == {("sft", "2"), ("int_p10_a2", "2")}
    assert {rule: counts.get(rule, 0) for rule in ("finetune", "evaluate", "extract_activations", "token_flux", "key_shares")} == {
        "finetune": 2, "evaluate": 2, "extract_activations": 0, "token_flux": 0, "key_shares": 0}
    # The claims read the analyses of the runs measured, and no others.
    claims = re.search(r"rule claims:\n    input: (.+)$", output, re.M).group(1).split(", ")
    assert not [p for p in claims if "/runs/knowledge/" in p and "/ridge-" in p]
    assert len([p for p in claims if p.endswith("tokens.parquet")]) == 7  # one seed of each of the three methods and four variants


def test_the_run_folder_holds_its_merged_validated_config(smoke_run):
    written = yaml.safe_load((smoke_run / RESULTS / "config.yaml").read_text())
    smoke = yaml.safe_load((smoke_run / "config.yaml").read_text())
    assert written["run"] == "smoke" and written["seeds"] == smoke["seeds"] and written["model_loading"] == smoke["model_loading"]
    # Validated: each method entry as written, with the schema's defaults filled in.
    # ... and the depth analysis's methods (inforidge.depths) beside them
    assert written["methods"].keys() == smoke["methods"].keys() | {DEPTH}
    assert written["methods"][DEPTH] == {"kind": "sft", "tasks": ["modular"], "base_layers": 2}
    assert all(written["methods"][m].items() >= entry.items() for m, entry in smoke["methods"].items())
    assert written["methods"]["reg_l0.1"]["normalization"] == "abs"
    provenance = json.loads((smoke_run / RESULTS / "provenance.json").read_text())
    assert provenance["config"]["path"] == f"{RESULTS}/config.yaml" and len(provenance["config"]["sha256"]) == 64
    assert [m["path"].split("/")[-1] for m in provenance["base_models"]] == ["model", "model-modular", "model-modular-layers2"] and provenance["packages"]["torch"]
    assert {f["path"].split("/data/")[1] for f in provenance["data"]["files"]} == {
        f"{task}/{split}.jsonl" for task in ("knowledge", "modular") for split in ("train", "test_id", "test_ood")}


def test_adding_a_seed_runs_only_the_new_seed(smoke_run):
    with dry_run_with(smoke_run, "seeds: [0, 1]", "seeds: [0, 1, 2]") as output:
        per_run = [path for path in job_outputs(output) if "/runs/" in path]
        assert per_run and all("/seed2" in path for path in per_run)
        assert job_counts(output)["finetune"] == 5  # three knowledge methods (the variants run one seed), modular SFT and its depth


def test_malformed_data_file_stops_its_rule_and_leaves_nothing(tmp_path):
    workdir = copy_workflow(tmp_path)
    assert snakemake(workdir, "knowledge_facts").returncode == 0  # a rule name as the target
    world = world_dir(workdir)
    facts = world / "data/knowledge/facts.csv"
    lines = facts.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0]  # row 6 loses its value column
    facts.write_text("\n".join(lines) + "\n")
    result = snakemake(workdir, "knowledge_data")
    assert result.returncode != 0
    log = (world / "logs/knowledge_data.log").read_text().strip().splitlines()
    assert log == [f"infoflow: {facts.relative_to(workdir)}, row 6: expected 3 columns"]
    assert not (world / "data/knowledge/train.jsonl").exists()
    assert not (world / "data/knowledge/corpus.txt").exists()


def report_data(html, name):
    return json.loads(re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, re.S).group(1))


def test_report_bundles_every_figure_and_table_by_paper(smoke_run):
    result = snakemake(smoke_run, "--report", f"{RESULTS}/report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    html = (smoke_run / RESULTS / "report.html").read_text()
    categories, items = report_data(html, "categories"), report_data(html, "results")
    assert set(categories) == {"InfoSteer", "InfoRidge", "Claims"}
    shown = {path for topics in categories.values() for paths in topics.values() for path in paths}
    produced = {str(p.relative_to(smoke_run)) for pattern in ("figures/*.png", "tables/*.csv") for p in (smoke_run / RESULTS).glob(pattern)}
    assert produced <= shown and shown == set(items)
    assert all(item["caption"].strip() for item in items.values())
    labels = {path: item["labels"] for path, item in items.items()}
    folders = run_folders(smoke_run)
    assert labels[f"{folders['knowledge', 'int_p10_a2', 1]['evaluation']}/test_ood.csv"] == {
        "task": "knowledge", "method": "int_p10_a2", "seed": "1", "split": "test_ood"}
    assert labels[f"{folders['modular', 'sft', 0]['ridge']}/mi.csv"] == {"task": "modular", "method": "sft", "seed": "0"}
    assert all(path in categories["InfoRidge"]["Information per layer, per run"] for path in labels if path.endswith("/mi.csv"))


@pytest.mark.parametrize(
    "profile, message",
    [
        ({"set-resources": {"finetune": {"gpus": 1}}}, "set-resources of rule finetune: unknown resource key 'gpus'"),
        ({"default-resources": {"slurm_account": "lab"}}, "rule attention_masses: no slurm_partition"),
        ({"resources": {"gpu": 1}, "set-resources": {"finetune": {"gpu": 2}}}, "rule finetune: asks for gpu=2, the profile allows gpu=1 (resources: gpu)"),
        (None, "default-resources: slurm_partition is still the placeholder '<your-partition>'"),
    ],
)
def test_profile_mistake_stops_the_run_naming_rule_and_key(smoke_run, tmp_path, profile, message):
    """`None` stands for the shipped SLURM profile before the user sets the partition."""
    if profile is None:
        folder = smoke_run / "workflow/profiles/slurm"
    else:
        folder = tmp_path / "profile"
        folder.mkdir()
        (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    result = snakemake(smoke_run, "-n", "--profile", folder)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"profile error: {message}")


def test_local_profile_runs_the_workflow(smoke_run):
    result = snakemake(smoke_run, "-n", "--profile", smoke_run / "workflow/profiles/local")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


def test_another_workflow_uses_this_one_as_a_module(tmp_path):
    # The workflow in one folder; a host workflow in another includes it by a local path, runs it
    # under its own config overlay, and finds the package's files relative to the module.
    copy_workflow(tmp_path / "infoflow")
    host = tmp_path / "host"
    host.mkdir()
    (host / "host.yaml").write_text("run: hosted\nseeds: [0]\n")
    (host / "Snakefile").write_text(
        'configfile: "host.yaml"\n\n\nmodule infoflow:\n    snakefile:\n        "../infoflow/Snakefile"\n'
        "    config:\n        config\n\n\nuse rule * from infoflow as infoflow_*\n\n\n"
        "rule all:\n    default_target: True\n    input:\n        rules.infoflow_all.input,\n"
    )
    result = snakemake(host, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    counts = job_counts(output)
    assert counts["infoflow_finetune"] == 9 and counts["infoflow_claims"] == 1  # smoke: 9 runs x 1 seed
    assert all(path.startswith(("results/hosted/", "resources/")) for path in job_outputs(output))
    assert "../infoflow/src/infoflow/posttrain/finetune.py" in output  # code inputs of the module's own files
