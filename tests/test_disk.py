"""The disk estimate made before any job (infoflow.disk): parameter counts against real models, every
part on the smoke config, a local and a cached hub model's config.json, the calibration on the
default run, and the one-line refusals."""

import copy
import json
import subprocess
import sys
from collections import namedtuple

import pytest
import yaml
from transformers import AutoConfig, AutoModelForCausalLM

from conftest import REPO
from infoflow import disk
from infoflow.base_models import with_depth_methods
from infoflow.config import task_seeds

SMOKE_FILE = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
# The smoke config with its first three methods (SFT, an intervention, a regulariser): the arithmetic
# below counts their 8 runs.
SMOKE = {**SMOKE_FILE, "methods": {m: SMOKE_FILE["methods"][m] for m in ("sft", "int_p10_a2", "reg_l0.1")}}
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def runs_of(config):
    """(task, method, seed) runs, as workflow/rules/common.smk's RUNS."""
    return [(t, m, s) for m, entry in config["methods"].items() for t in entry.get("tasks", config["tasks"])
            for s in task_seeds(config, t)[:entry.get("run_seeds")]]


def changed(config, **settings):
    """A copy of `config` with `settings` given as dotted keys ('inforidge.extraction.dtype')."""
    config = copy.deepcopy(config)
    for dotted, value in settings.items():
        *parents, key = dotted.split(".")
        entry = config
        for parent in parents:
            entry = entry[parent]
        entry[key] = value
    return config


def estimate(config, concurrent_runs=2):
    runs = runs_of(config)
    ridge = config["inforidge"]
    extracted = [r for r in runs if r[0] in (ridge.get("tasks") or config["tasks"]) and r[2] in task_seeds(config, r[0])[:ridge.get("run_seeds")]]
    return disk.estimate(config, len(runs), len(extracted), concurrent_runs)


@pytest.mark.parametrize("kind, shape, tolerance", [
    ("llama", {"tie_word_embeddings": True}, 0),
    ("llama", {"tie_word_embeddings": False}, 0),
    ("mistral", {"num_key_value_heads": 2}, 0),
    ("qwen2", {"num_key_value_heads": 2}, 0.002),  # its q, k and v biases are not counted
    ("gpt2", {"n_inner": 512, "bos_token_id": 0, "eos_token_id": 0}, 0.01),  # nor its biases
])
def test_parameter_count_is_that_of_the_model_transformers_builds(kind, shape, tolerance):
    sizes = {"vocab_size": 1000, "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 8}
    if kind != "gpt2":  # which names it n_inner
        sizes["intermediate_size"] = 512
    config = AutoConfig.for_model(kind, **sizes, **shape)
    real = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    counted, width, layers = disk.model_shape(config.to_dict())
    assert abs(counted - real) <= tolerance * real and (width, layers) == (256, 2)


def one_base_model(config):
    """`config` without tasks of their own base model (the arithmetic below is that of one model)."""
    config = copy.deepcopy(config)
    config["base_model"].pop("own_models", None)
    return config


def test_every_part_of_the_smoke_config_in_bytes():
    result = estimate(one_base_model(SMOKE))
    # Vocabulary bound: 12 last + 4 first names, 4 + 5 + 3 + 3 values, signals S0..S8, 10 noise
    # tokens, 200 others. Parameters: 2 blocks x (attention 4 x 32^2, MLP 3 x 32 x 64, norms 2 x 32)
    # + 250 x 32 tied embeddings + the final norm's 32.
    assert disk.embedded_vocabulary(SMOKE) == 250
    assert result.parameters == 2 * (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 250 * 32 + 32 == 28_640
    model = 28_640 * 4  # float32 weights
    runs, points = 4 * 2, 3  # (sft on both tasks, intervention, regularisation) x 2 seeds; 2 checkpoints + step 0
    assert result.kept == {
        "final models": runs * model,
        "base model": model,
        # 2 splits x 16 examples x (4 layer rows x (hidden, residual) + target) x 32 floats x 4 bytes
        "activations": runs * points * 2 * 16 * 9 * 32 * 4,
        "other": runs * 0.5e6 + 40e6,
    }
    assert result.temporary == {"InfoRidge checkpoints": 2 * points * model, "resume checkpoints": 2 * 2 * model * 3,
                                "staged InfoRidge checkpoints": 2 * points * model}
    assert result.total == 8 * 114_560 + 114_560 + 884_736 + 44_000_000 and not result.missing
    assert result.peak == result.total + 687_360 + 1_374_720 + 687_360


def test_a_task_with_its_own_base_model_counts_both_and_every_run_at_the_larger():
    # The smoke config's modular task has a 3-block model of its own: 3 x 10,304 + 8,032 parameters.
    own, shared = estimate(SMOKE), estimate(one_base_model(SMOKE))
    assert own.parameters == 3 * (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 250 * 32 + 32 == 38_944
    assert own.kept["base model"] == (28_640 + 38_944) * 4
    assert own.kept["final models"] == shared.kept["final models"] * 38_944 / 28_640


def test_the_depth_analysis_counts_its_base_models():
    # inforidge.depths adds a 2-layer copy of the modular task's 3-block model: 28,640 parameters more.
    assert estimate(with_depth_methods(SMOKE)).kept["base model"] == (28_640 + 38_944 + 28_640) * 4


def test_the_analysed_runs_set_the_activations():
    # InfoRidge on the modular task only: 2 of the 8 runs extracted.
    subset = estimate(changed(one_base_model(SMOKE), **{"inforidge.tasks": ["modular"]}))
    assert subset.kept["activations"] == estimate(one_base_model(SMOKE)).kept["activations"] * 2 / 8


def test_the_settings_that_change_the_bytes():
    smoke = one_base_model(SMOKE)
    base = estimate(smoke)
    kept = estimate(changed(smoke, **{"inforidge.keep_checkpoints": True}))
    assert kept.kept["InfoRidge checkpoints"] == 8 * 3 * 114_560 and "InfoRidge checkpoints" not in kept.temporary
    for dtype in ("float16", "bfloat16"):
        assert estimate(changed(smoke, **{"inforidge.extraction.dtype": dtype})).kept["activations"] == base.kept["activations"] / 2
    pure = estimate(changed(smoke, **{"sft.precision": "bf16-pure"}))
    assert pure.kept["final models"] == base.kept["final models"] / 2 and pure.kept["base model"] == base.kept["base model"]
    assert estimate(changed(smoke, resume_every_steps=0)).temporary.keys() == {"InfoRidge checkpoints"}
    assert estimate(smoke, concurrent_runs=None).temporary["InfoRidge checkpoints"] == 8 * 3 * 114_560  # all runs at once
    raw = estimate(changed(smoke, **{"inforidge.extraction.last_layer": "raw"}))
    assert raw.kept["activations"] == base.kept["activations"] * 7 / 9  # 3 layer rows, not 4


def test_the_vocabulary_bound_holds_for_a_world_of_those_settings(tiny_world):
    # conftest's tiny world: 10 entities, 4 cities, 5 years, 3 companies, 3 fields; K = 7, OOD 5 and 9, 10 noise values
    config = changed(SMOKE, **{"knowledge_world.entities": 10, "modular_task.ood_moduli": [5, 9]})
    assert len(tiny_world["tokenizer"]) <= disk.embedded_vocabulary(config)


def test_a_local_model_is_counted_from_its_config_json(tiny_model_dir, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    result = estimate(changed(SMOKE, **{"base_model.pretrained": str(tiny_model_dir)}))
    assert result.parameters == sum(p.numel() for p in model.parameters())
    assert result.source == str(tiny_model_dir / "config.json") and "base model" not in result.kept
    # The saved weights are what the estimate counts per model, but for the safetensors header.
    weights = (tiny_model_dir / "model.safetensors").stat().st_size
    assert 0 < weights - result.kept["final models"] / 8 < 10_000

    empty = tmp_path / "model"
    empty.mkdir()
    partial = estimate(changed(SMOKE, **{"base_model.pretrained": str(empty)}))
    assert partial.kept == {"other": 44e6} and partial.parameters is None
    assert f"disk estimate is partial: models, checkpoints and activations not counted ({empty / 'config.json'} is missing)" in disk.describe(partial)


def test_a_hub_model_is_counted_from_the_local_cache_only(tiny_model_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    # The cache's layout: models--<org>--<name>/refs/main names the snapshot that holds the files.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs/main").write_text("abc123")
    (repo / "snapshots/abc123").mkdir(parents=True)
    (repo / "snapshots/abc123/config.json").write_text((tiny_model_dir / "config.json").read_text())
    cached = estimate(changed(SMOKE, **{"base_model.pretrained": "org/tiny"}))
    local = estimate(changed(SMOKE, **{"base_model.pretrained": str(tiny_model_dir)}))
    assert cached.parameters == local.parameters and cached.source.endswith("snapshots/abc123/config.json")
    missing = estimate(changed(SMOKE, **{"base_model.pretrained": "org/absent"}))
    assert missing.missing == ["models, checkpoints and activations not counted "
                               "(org/absent: not a folder, and no config.json of it in the local Hugging Face cache)"]


def default_of_71a67f5():
    """The default config as it was at 71a67f5: one 8-layer base model, 3 seeds for every run, InfoRidge on all."""
    config = one_base_model(DEFAULT)
    config.update(seeds=[0, 1, 2])
    config["inforidge"]["tasks"] = None
    config["methods"] = {m: e for m, e in config["methods"].items() if e["kind"] in ("sft", "intervention", "regularization")}  # no variants then
    for entry in config["methods"].values():
        entry.pop("run_seeds", None)
    return config


def test_the_default_config_against_the_sizes_of_its_run_of_2026_12_01():
    # That run (71a67f5) kept every checkpoint and wrote float32 activations (snappy); bytes of its files.
    measured = {"final models": 259_891_668, "InfoRidge checkpoints": 2_858_818_566, "activations": 1_439_704_281}
    result = estimate(changed(default_of_71a67f5(), **{"inforidge.keep_checkpoints": True, "inforidge.extraction.dtype": "float32"}))
    for part, size in measured.items():
        assert abs(result.kept[part] / size - 1) < 0.02, part
    assert abs(result.total / (4_582_760_043 + 11_742_611) - 1) < 0.02  # results/default and resources/


def test_describe_gives_what_stays_and_the_most_at_once():
    lines = disk.describe(estimate(one_base_model(SMOKE))).splitlines()
    assert lines == [
        "disk estimate: 0.05 GB kept (final models 0.00 GB, base model 0.00 GB, activations 0.00 GB, other 0.04 GB); "
        "28,640 parameters from base_model's shape",
        "disk estimate: at most 0.05 GB at once, with InfoRidge checkpoints 0.00 GB, resume checkpoints 0.00 GB, "
        "staged InfoRidge checkpoints 0.00 GB deleted during the run",
    ]


def test_refusals_name_the_budget_or_the_free_space(tmp_path, monkeypatch):
    result = estimate(SMOKE)
    folder = tmp_path / "results/smoke"  # not made yet: the free space is its parent's
    disk.check(result, folder, budget_gb=1)
    disk.check(result, folder)
    with pytest.raises(disk.DiskBudgetError) as error:
        disk.check(result, folder, budget_gb=0.01)
    assert str(error.value).startswith("the run needs about 0.05 GB of disk at most, over disk_budget_gb: 0.01; raise it, or write less")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 10**7, 10**7))
    with pytest.raises(disk.DiskBudgetError) as error:
        disk.check(result, folder, budget_gb=1)
    assert str(error.value).startswith(f"the run needs about 0.05 GB more disk at most, over the 0.01 GB free for {folder}; free space there")
    assert "\n" not in str(error.value)
    disk.check(result, folder, budget_gb=1, written=result.peak - 10**6)  # a rerun: most of it is on disk already


def test_the_module_loads_without_torch():
    code = "import sys, infoflow.disk; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_a_config_json_without_a_shape_is_a_partial_estimate(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    result = estimate(changed(SMOKE, **{"base_model.pretrained": str(tmp_path)}))
    assert result.missing == [f"models, checkpoints and activations not counted ({tmp_path / 'config.json'}: "
                              "no hidden size, layer count, head count or vocab_size in it)"]
