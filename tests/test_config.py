import re
import subprocess
import sys
from copy import deepcopy

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO
from infoflow.base_models import with_depth_methods
from infoflow.config import ConfigError, check, overlay

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
DEFAULTS = yaml.safe_load((REPO / "config.yaml").read_text())
CONFIGS = [REPO / "config.yaml", *sorted((REPO / "tests/configs").glob("*.yaml"))]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    config = yaml.safe_load(path.read_text())
    validate(config, SCHEMA)
    check(config)


def test_check_catches_relations_between_values():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    bad = deepcopy(config)
    bad["modular_task"]["ood_moduli"].append(bad["modular_task"]["id_modulus"])
    with pytest.raises(ConfigError, match="modular_task.ood_moduli"):
        check(bad)
    bad = deepcopy(config)
    bad["base_model"]["heads"] = 5
    with pytest.raises(ConfigError, match="base_model.hidden_size"):
        check(bad)


def test_check_accepts_hub_ids_and_a_negative_lambda():
    config = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
    config["base_model"]["pretrained"] = "Qwen/Qwen2.5-0.5B"
    config["methods"]["reg_l0.1"]["lam"] = -0.1  # the entropy-minimising control
    validate(config, SCHEMA)
    check(config)


@pytest.mark.parametrize("depth_key", ["num_hidden_layers", "n_layer"])  # Llama-style, GPT-2
def test_layers_beyond_a_local_models_depth(tmp_path, depth_key):
    (tmp_path / "config.json").write_text(f'{{"{depth_key}": 4}}')
    config = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
    config["base_model"]["pretrained"] = str(tmp_path)
    config["methods"]["int_p10_a2"]["layers"] = [3]
    check(config)
    config["methods"]["int_p10_a2"]["layers"] = [1, 4]
    with pytest.raises(ConfigError, match=r"^methods.int_p10_a2.layers: index 4 is beyond the base model's 4 layers \(0..3\)$"):
        check(config)


def with_generic_task(config, **changes):
    """`config` with task mytask read from local CSVs by generic entries, the test_id one's keys changed by `changes`."""
    good = {"dataset": "generic", "source": "data/my.csv", "split": "test", "prompt": "Q: {question}\nA:", "answer": "label",
            "answer_type": "choice", "labels": ["positive", "negative"]}
    entry = {key: value for key, value in {**good, **changes}.items() if value is not None}  # None: the key left out
    config["tasks"].append("mytask")
    config["sft"]["epochs"]["mytask"] = 1
    config["datasets"] = {"mytask": {"train": [{**good, "split": "train"}], "test_id": [entry], "test_ood": [good]}}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({}, None),
        ({"prompt": "question"}, "datasets.mytask.test_id.0.prompt: 'question' names no field; write {question} where field question's text goes"),
        ({"prompt": "{question} ({label})"}, "datasets.mytask.test_id.0.prompt: shows the answer field 'label' to the model"),
        ({"answer_type": "number"}, "datasets.mytask.test_id.0.labels: are for answer_type choice only, not number"),
        ({"labels": ["Yes", "yes"]}, "datasets.mytask.test_id.0.labels: 'Yes' and 'yes' are one label: answers are matched without case"),
        ({"dataset": "boolq", "answer_type": None, "prompt": None, "answer": None},
         "datasets.mytask.test_id.0.labels: is a key of generic entries only; dataset boolq has its own prompt and answer"),
    ],
)
def test_generic_entries_are_checked(changes, message):
    config = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
    with_generic_task(config, **changes)
    validate(config, SCHEMA)
    if message is None:
        check(config)
        return
    with pytest.raises(ConfigError) as error:
        check(config)
    assert str(error.value) == message


def test_two_entries_of_one_name_and_split_are_refused():
    config = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
    with_generic_task(config)
    test_id = config["datasets"]["mytask"]["test_id"]
    test_id.append({**test_id[0], "source": "other/my.jsonl"})
    with pytest.raises(ConfigError, match=r"^datasets.mytask.test_id.1: reads my split test as entry 0 does, so their rows would share ids; "
                                          r"give a generic entry its own name$"):
        check(config)
    test_id[1]["name"] = "other"
    check(config)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: with_generic_task(c, labels=None),
         "datasets.mytask.test_id.0.answer_type: choice needs labels, the accepted answers (e.g. labels: [positive, negative])"),
        (lambda c: with_generic_task(c, labels=[True, False]),  # what YAML makes of labels: [yes, no]
         "datasets.mytask.test_id.0.labels.0: True is not of type 'string' (YAML reads yes, no, on, off, true and false unquoted as booleans: "
         "quote the word, e.g. 'yes')"),
        (lambda c: c["base_model"].update(layers="eight"), "base_model.layers: 'eight' is not of type 'integer'"),
        (lambda c: c.update(colour="red"), "(top level): unknown key: Additional properties are not allowed ('colour' was unexpected)"),
        (lambda c: c["knowledge_world"].update(entities=-5), "knowledge_world.entities: -5 is less than the minimum of 1"),
        (lambda c: c["methods"].update(dpo={"kind": "dpo"}), "methods.dpo.kind: 'dpo' is not one of ['sft', 'intervention', 'regularization', 'lora', 'semantic', 'activation', 'selected', 'entmax']"),
        (lambda c: c["methods"].update(lora_r8={"kind": "lora", "rank": 8}), "methods.lora_r8: unknown key: Additional properties are not allowed ('rank' was unexpected)"),
        (lambda c: c["methods"].update(i={"kind": "intervention", "p": 1.5}), "methods.i.p: 1.5 is greater than or equal to the maximum of 1"),
        (lambda c: c["methods"].update(i={"kind": "intervention", "p": 0}), "methods.i.p: 0 is less than or equal to the minimum of 0"),
        (lambda c: c["methods"].update(i={"kind": "intervention", "alpha": -1.0}), "methods.i.alpha: -1.0 is less than or equal to the minimum of 0"),
        (lambda c: c["methods"].update(i={"kind": "intervention", "layers": [0, 9]}), "methods.i.layers: index 9 is beyond the base model's 2 layers (0..1)"),
        (lambda c: c["methods"].update(i={"kind": "intervention", "layers": "centre"}),
         "methods.i.layers: 'centre' is not 'all', a layer group (early, middle, late; thirds of the depth), groups joined by '+', or a list of layer indices"),
        (lambda c: c["methods"].update(r={"kind": "regularization", "normalization": "l2"}), "methods.r.normalization: 'l2' is not one of ['abs', 'softmax']"),
        (lambda c: c["methods"].update(r={"kind": "regularization", "p": 0.1}), "methods.r: unknown key: Additional properties are not allowed ('p' was unexpected)"),
        (lambda c: c["sft"].update(learning_rate="5e-4"), "sft.learning_rate: '5e-4' is not of type 'number' (YAML reads 5e-4 as text: write 5.0e-4)"),
        (lambda c: c.update(seeds=[0, 0]), "seeds: duplicate seeds in [0, 0]"),
        # An overlay's per-task seeds merge with the defaults' per task; null drops a task's.
        (lambda c: c.update(seeds={"knowledge": [0, 1], "modular": None}), "seeds: no seeds for task modular"),
        (lambda c: c.update(seeds={"knowledge": [0, 0], "modular": [0]}), "seeds.knowledge: duplicate seeds in [0, 0]"),
        (lambda c: c.update(seeds={"knowledge": [], "modular": [0]}), "seeds.knowledge: [] should be non-empty"),
        (lambda c: c["methods"].update(s2={"kind": "sft", "run_seeds": 0}), "methods.s2.run_seeds: 0 is less than the minimum of 1"),
        (lambda c: c["inforidge"].update(tasks=["math"]), "inforidge.tasks: ['math'] not in tasks ['knowledge', 'modular']"),
        (lambda c: c["flux"].update(run_seeds=0), "flux.run_seeds: 0 is less than the minimum of 1"),
        (lambda c: c["base_model"]["own_models"].update(math={"layers": 3}),
         "base_model.own_models.math: only the synthetic tasks (knowledge, modular) are pretrained here"),
        (lambda c: c["base_model"]["own_models"].update(modular={"heads": 5}),
         "base_model.own_models.modular: hidden_size 32 is not divisible by heads 5"),
        (lambda c: c["base_model"]["own_models"].update(modular={"depth": 5}),
         "base_model.own_models.modular: unknown key: Additional properties are not allowed ('depth' was unexpected)"),
        (lambda c: c["inforidge"]["mi"].update(examples=17), "inforidge.mi.examples: 17 is more than the 16 examples extracted (inforidge.extraction.examples)"),
        (lambda c: c["inforidge"]["mi"].update(examples=16),
         "inforidge.mi.examples: 16 is not below inforidge.extraction.examples (16) with 2 sample_seeds: every seed draws the same examples; "
         "use fewer MI examples or extract more"),
        (lambda c: c["inforidge"]["extraction"].update(examples=20), "inforidge.extraction.examples: 20 is more than the 16 test examples of task modular"),
        (lambda c: c["inforidge"]["mi"].update(kernel="rbf"), "inforidge.mi.kernel: 'rbf' is not one of ['gaussian', 'laplacian', 'polynomial']"),
        (lambda c: c["inforidge"]["mi"].update(alpha=0), "inforidge.mi.alpha: 0 is less than or equal to the minimum of 0"),
        (lambda c: c["inforidge"]["extraction"].update(last_layer="after"), "inforidge.extraction.last_layer: 'after' is not one of ['raw', 'normed', 'both']"),
        (lambda c: c["inforidge"]["residual_scaling"].update(methods=["lora"]), "inforidge.residual_scaling.methods: ['lora'] not in methods"),
        (lambda c: c.update(seeds=[0, "one"]), "seeds.1: 'one' is not of type 'integer'"),
        (lambda c: c.update(seeds=[0.5]), "seeds.0: 0.5 is not of type 'integer'"),
        # A config file is an overlay on config.yaml: null removes a default (here every method).
        (lambda c: c.update(methods=dict.fromkeys([*c["methods"], *DEFAULTS["methods"]])), "methods: {} should be non-empty"),
        (lambda c: c["methods"].update(sft={}), "methods.sft: 'kind' is a required property"),
        (lambda c: c["methods"].update(r={"kind": "regularization", "lam": "0.1"}), "methods.r.lam: '0.1' is not of type 'number'"),
        ("methods:\n  sft: {kind: sft}\n  sft: {kind: intervention, p: 0.1}\n", "methods: duplicate key 'sft' (bad.yaml, line 3); give each key once"),
        ("seeds: [0]\nseeds: [0, 1]\n", "(top level): duplicate key 'seeds' (bad.yaml, line 2); give each key once"),
        (lambda c: c.update(tasks=["knowledge", "arithmetic"]), "tasks: arithmetic is neither knowledge, modular nor a task under datasets"),
        (lambda c: c["sft"]["epochs"].update(modular=None), "sft.epochs: no epochs for task modular"),
        (lambda c: c.update(figures=None), "(top level): 'figures' is a required property"),
        (lambda c: c["model_loading"].update(dtype="fp16"), "model_loading.dtype: 'fp16' is not one of ['auto', 'float32', 'bfloat16', 'float16']"),
        (lambda c: c["model_loading"].update(trust_remote_code="yes"), "model_loading.trust_remote_code: 'yes' is not of type 'boolean'"),
        (lambda c: c["base_model"].update(pretrained="/models/qwen2.5-0.5b"), "base_model.pretrained: local model folder /models/qwen2.5-0.5b does not exist"),
        (lambda c: c["base_model"].update(pretrained="./models/qwen"), "base_model.pretrained: local model folder ./models/qwen does not exist"),
        (lambda c: c["base_model"].update(pretrained="~/models/qwen"), "base_model.pretrained: ~/models/qwen: '~' is not expanded; write the folder's full path"),
        (lambda c: c["base_model"].update(pretrained=str(REPO / "presets")),
         f"base_model.pretrained: local model folder {REPO / 'presets'} has no config.json (not a saved model)"),
    ],
)
def test_bad_config_stops_before_any_job_with_one_line(tmp_path, edit, message):
    """`edit` changes the smoke config in place, or is YAML text that replaces its sections (for
    what yaml.safe_dump cannot write: a duplicate key)."""
    config = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
    if isinstance(edit, str):
        for section in yaml.safe_load(edit):
            del config[section]
        text = edit + yaml.safe_dump(config)
    else:
        edit(config)
        text = yaml.safe_dump(config)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("config error")]
    assert errors == [f"config error: {message}"]
    assert "Traceback" not in result.stderr and not (tmp_path / "results").exists()


def test_an_overlay_merges_mappings_replaces_entries_and_null_removes():
    defaults = {"seeds": [0, 1], "sft": {"lr": 1, "epochs": {"a": 1, "b": 2}},
                "methods": {"sft": {"kind": "sft"}, "int": {"kind": "intervention", "p": 0.1, "tasks": ["a"]}}}
    merged = overlay(defaults, {"sft": {"epochs": {"b": None}}, "methods": {"int": {"kind": "intervention", "p": 0.2}}},
                     {"seeds": [0], "methods": {"sft": None}})
    assert merged == {"seeds": [0], "sft": {"lr": 1, "epochs": {"a": 1}}, "methods": {"int": {"kind": "intervention", "p": 0.2}}}
    assert defaults["methods"]["int"]["tasks"] == ["a"]  # the inputs are left as they are


def dry_run(tmp_path, *overlays):
    paths = []
    for i, text in enumerate(overlays):
        paths.append(tmp_path / f"overlay{i}.yaml")
        paths[-1].write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", *(["--configfile", *map(str, paths)] if paths else []),
         "--directory", str(tmp_path)], cwd=REPO, capture_output=True, text=True)


def test_a_one_key_overlay_plans_the_default_run_with_that_key_changed(tmp_path):
    result = dry_run(tmp_path, "seeds: [0]\n")
    assert result.returncode == 0, result.stderr[-2000:]
    finetunes = re.search(r"^finetune\s+(\d+)$", result.stdout, re.M)
    runs = sum(len(m.get("tasks", DEFAULTS["tasks"])) for m in with_depth_methods(DEFAULTS)["methods"].values())
    assert int(finetunes.group(1)) == runs  # one seed (the depth analysis's methods included)
    assert f"results/{DEFAULTS['run']}/config.yaml" in result.stdout


def test_overlays_apply_in_order_and_a_named_run_gets_its_own_folder(tmp_path):
    result = dry_run(tmp_path, "run: first\nseeds: [0]\n", "run: second\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "results/second/tables/" in result.stdout and "results/first/" not in result.stdout
    assert re.search(r"^finetune\s+(\d+)$", result.stdout, re.M).group(1) == str(
        sum(len(m.get("tasks", DEFAULTS["tasks"])) for m in with_depth_methods(DEFAULTS)["methods"].values()))


def test_an_overlay_with_an_unknown_key_or_a_bad_value_is_refused_in_one_line(tmp_path):
    for text, message in [("sedes: [0]\n", "config error: (top level): unknown key: Additional properties are not allowed ('sedes' was unexpected)"),
                          ("run: my run\n", "config error: run: 'my run' does not match '^[A-Za-z0-9_.-]+$'")]:
        result = dry_run(tmp_path, text)
        assert result.returncode != 0
        assert [line for line in result.stderr.splitlines() if line.startswith("config error")] == [message]


def test_a_dry_run_prints_the_disk_estimate_and_a_budget_below_it_stops_the_run_in_one_line(tmp_path):
    result = dry_run(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    kept = re.search(r"^disk estimate: ([\d.]+) GB kept \(final models ([\d.]+) GB, .*activations ([\d.]+) GB", result.stderr, re.M)
    peak = float(re.search(r"^disk estimate: at most ([\d.]+) GB at once", result.stderr, re.M).group(1))
    assert kept and float(kept.group(1)) <= peak
    result = dry_run(tmp_path, f"disk_budget_gb: {peak / 2}\n")
    assert result.returncode != 0 and "Job stats" not in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith(f"disk error: the run needs about {peak:.2f} GB of disk at most, over disk_budget_gb: {peak / 2:g}")
