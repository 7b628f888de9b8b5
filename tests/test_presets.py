"""The paper presets (presets/*.yaml) plan their whole DAG, with the hub ids replaced by local
stand-ins through a config override: a tiny local model and fixture files in each data set's
public layout. The data stage of one preset then runs for real."""

import json
import re

import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_workflow, snakemake
from test_real_data import CASES, write_records

PRESETS = sorted((REPO / "presets").glob("*.yaml"))


def local_override(preset, folder, model_dir):
    """Config override: the preset's base model and every data source as local files."""
    fixtures = {}
    for case, dataset, layout, records, *_ in CASES:
        if dataset not in fixtures:
            (folder / case).mkdir()
            fixtures[dataset] = str(write_records(folder / case, layout, records))
    datasets = {
        task: {split: [{**entry, "source": fixtures[entry["dataset"]]} for entry in entries] for split, entries in splits.items()}
        for task, splits in preset.get("datasets", {}).items()
    }
    path = folder / "local.yaml"
    path.write_text(yaml.safe_dump({"base_model": {"pretrained": str(model_dir)}, "datasets": datasets}))
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    # A preset is an overlay on the real defaults (config.yaml), not on the smoke test's.
    return copy_workflow(tmp_path_factory.mktemp("presets"), config=REPO / "config.yaml")


def test_every_preset_states_its_gpu_hours_and_a_pretrained_model():
    assert len(PRESETS) == 5
    for path in PRESETS:
        assert "GPU-hours" in path.read_text() and yaml.safe_load(path.read_text())["base_model"]["pretrained"]


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_plans_its_dag_on_local_stand_ins(path, workdir, tiny_model_dir, tmp_path):
    preset = yaml.safe_load(path.read_text())
    override = local_override(preset, tmp_path, tiny_model_dir)
    result = snakemake(workdir, "-n", "--configfile", path, override)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    methods = [m for m in preset["methods"].values() if m is not None]  # null: a default method removed
    runs = len(preset["seeds"]) * sum(len(m.get("tasks", preset["tasks"])) for m in methods)
    assert re.search(rf"^finetune\s+{runs}$", output, re.M)
    assert not re.search(r"^(tokenizer|pretrain_base_model)\s+\d+$", output, re.M)  # the pretrained model is used as it is
    assert str(tiny_model_dir) in output


def test_preset_data_stage_runs_on_fixture_files(workdir, tiny_model_dir, tmp_path):
    path = REPO / "presets/infosteer_commonsense_qwen2.5-1.5b.yaml"
    override = local_override(yaml.safe_load(path.read_text()), tmp_path, tiny_model_dir)
    result = snakemake(workdir, "--until", "dataset_split", "--configfile", path, override)
    assert result.returncode == 0, result.stderr[-2000:]
    # Public data set splits are shared between runs: resources/datasets/<task>/<split>-<entries key>.
    targets = [next((workdir / "resources/datasets/commonsense").glob(f"{split}-*.parquet"))
               for split in ("train", "test_id", "test_ood")]
    train = pd.read_parquet(workdir / targets[0])
    assert set(train.source) == {"boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa"}
    assert set(train.split) == {"train"} and train.id.is_unique
    assert set(pd.read_parquet(workdir / targets[2]).source) == {"ecqa"}
    summary = json.loads(targets[0].with_suffix(".summary.json").read_text())
    assert summary["rows_written"] == len(train) and summary["rows_skipped"] == 0
