import hashlib
import json
import platform
import shutil
import subprocess

import pytest
import torch
import yaml

from conftest import REPO, run_module
from test_models import fake_hub_cache
from infoflow.io import DataError
from infoflow.training import provenance
from infoflow.world.records import read_records


def write_config(path, datasets):
    """The smoke config with a public data set task, as the merged config file a run gets."""
    config = yaml.safe_load((REPO / "tests/configs/smoke.yaml").read_text())
    config["datasets"] = datasets
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_provenance_of_a_run_on_a_local_model_and_data_files(tiny_world, tiny_model_dir, tmp_path):
    entries = {"train": [{"dataset": "boolq", "source": "google/boolq", "split": "train", "revision": "abc123"}],
               "test_id": [{"dataset": "piqa", "source": str(tmp_path / "piqa.jsonl"), "split": "test"}]}
    config = write_config(tmp_path / "config.yaml", {"qa": entries})
    data = [tiny_world["paths"]["k_train"], tiny_world["paths"]["k_test_id"]]
    run_module("training.provenance", "--config", tmp_path / "config.yaml", "--base-models", tiny_model_dir,
               "--data", *data, "--out", tmp_path / "provenance.json")
    record = json.loads((tmp_path / "provenance.json").read_text())
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert record["code"]["commit"] == commit and isinstance(record["code"]["dirty"], bool)
    assert record["python"] == platform.python_version()
    assert record["packages"]["torch"] == torch.__version__ and set(record["packages"]) == set(provenance.PACKAGES)
    # The hash is the config's, not its file's: the same config written as JSON, keys reordered, hashes alike.
    (tmp_path / "config.json").write_text(json.dumps(dict(reversed(list(config.items())))))
    assert record["config"]["sha256"] == provenance.canonical_hash(provenance.read_config(tmp_path / "config.json"))
    assert record["base_models"] == [{"path": str(tiny_model_dir), "content_sha256": provenance.folder_hash(tiny_model_dir)}]
    assert record["data"]["files"] == [{"path": str(p), "sha256": sha256(p)} for p in data]
    assert record["data"]["datasets"] == [
        {"task": "qa", "split": "train", "dataset": "boolq", "source": "google/boolq", "revision": "abc123"},
        {"task": "qa", "split": "test_id", "dataset": "piqa", "source": str(tmp_path / "piqa.jsonl"), "revision": None},
    ]
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] or ["cpu"]
    assert record["device"] == {"devices": names, "dtype": "auto", "resolved_dtype": str(provenance.models.resolve_dtype("auto"))[6:],
                                "training_precision": provenance.models.resolve_precision("auto")}


def test_a_local_model_hash_follows_its_weights_and_config_only(tiny_model_dir, tmp_path):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    before = provenance.folder_hash(copy)
    (copy / "tokenizer_config.json").write_text("{}")
    assert provenance.folder_hash(copy) == before
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(weights))
    assert provenance.folder_hash(copy) != before


def git(folder, *args):
    return subprocess.run(["git", "-C", folder, "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_git_state_tells_a_clean_tree_from_a_dirty_one_and_names_a_missing_checkout(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "src" / "stage.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    assert provenance.git_state(repo / "src") == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "src" / "stage.py").write_text("x = 2\n")
    assert provenance.git_state(repo / "src")["dirty"] is True
    git(repo, "checkout", "-q", "--", ".")
    (repo / "src" / "new_stage.py").write_text("")  # not yet committed code is a change too
    assert provenance.git_state(repo / "src")["dirty"] is True
    (tmp_path / "plain").mkdir()
    state = provenance.git_state(tmp_path / "plain")
    assert state["commit"] is None and state["dirty"] is None and "is not in a git checkout" in state["reason"]


def test_a_hub_model_is_recorded_with_the_commit_its_revision_resolves_to(tiny_model_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake_hub_cache(
        tmp_path / "hub", "test/tiny", {"main": ("a" * 40, tiny_model_dir), "v2": ("b" * 40, tiny_model_dir)})))
    assert provenance.base_model("test/tiny", "v2") == {"hub_id": "test/tiny", "revision": "v2", "commit": "b" * 40}
    assert provenance.base_model("test/tiny", None)["commit"] == "a" * 40
    missing = provenance.base_model("test/absent", None)  # the tests run offline (conftest)
    assert missing["commit"] is None and "not in the local hub cache, and the hub is offline" in missing["reason"]


def test_bad_inputs_stop_with_one_line_naming_the_file(tiny_model_dir, tmp_path):
    (tmp_path / "config.yaml").write_text("seeds: [0]\n")
    result = run_module("training.provenance", "--config", tmp_path / "config.yaml", "--base-models", tiny_model_dir,
                        "--data", tmp_path / "absent.jsonl", "--out", tmp_path / "p.json", check=False)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == f"infoflow: {tmp_path / 'absent.jsonl'}: no such file"
    result = run_module("training.provenance", "--config", tmp_path / "config.yaml", "--base-models", tiny_model_dir,
                        "--out", tmp_path / "p.json", check=False)
    assert result.stderr.strip().splitlines()[-1] == f"infoflow: {tmp_path / 'config.yaml'}: not a merged config (no model_loading.dtype)"
    assert not (tmp_path / "p.json").exists()


def test_a_revision_is_refused_for_a_local_data_set_source(tiny_world):
    source = str(tiny_world["paths"]["k_train"])
    with pytest.raises(DataError, match=r"a revision \(v1\) selects a version of a hub data set, not of a local file or folder"):
        read_records(source, "train", revision="v1")
