import pytest
import torch

from infoflow.training import models
from infoflow.io import DataError


def test_auto_dtype_is_float32_on_cpu_and_a_named_dtype_is_kept(tiny_model_dir):
    assert models.resolve_dtype("auto") == (torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32)
    model, _ = models.load(tiny_model_dir, dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_model_too_big_for_the_job_fails_naming_the_need_and_what_the_job_has(tiny_model_dir, monkeypatch):
    n_parameters = sum(p.numel() for p in models.load(tiny_model_dir)[0].parameters())
    weights_mb = n_parameters * 4 / 2**20
    monkeypatch.setattr(models, "available_memory_mb", lambda: weights_mb * 2)  # enough to run, not to train
    models.load(tiny_model_dir)
    with pytest.raises(DataError) as error:
        models.load(tiny_model_dir, precision="fp32")
    message = str(error.value)
    assert message.startswith(f"{tiny_model_dir}: 0.00B parameters need about") and "for training in fp32," in message
    assert "give the rule more memory" in message and "\n" not in message


def test_the_memory_check_counts_the_bytes_each_precision_trains_with(tiny_model_dir, monkeypatch):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    n_parameters = sum(p.numel() for p in models.load(tiny_model_dir)[0].parameters())
    # Weights + gradients + AdamW's two moments (+ autocast's 16-bit weights), plus the activation allowance.
    for precision, per_parameter in {"fp32": 16, "bf16-mixed": 18, "fp16-mixed": 18, "bf16-pure": 8}.items():
        needed = n_parameters * per_parameter * (1 + models.ACTIVATION_ALLOWANCE) / 2**20
        assert models.required_memory_mb(config, None, precision) == (pytest.approx(needed), n_parameters)
    monkeypatch.setattr(models, "available_memory_mb", lambda: n_parameters * 12 / 2**20)  # bf16-pure's 10, not fp32's 20
    assert {p.dtype for p in models.load(tiny_model_dir, precision="bf16-pure")[0].parameters()} == {torch.bfloat16}
    with pytest.raises(DataError, match=r"for training in fp32, the job has"):
        models.load(tiny_model_dir, precision="fp32")


def test_available_memory_is_positive():
    assert models.available_memory_mb() > 0


def fake_hub_cache(cache, hub_id, refs):
    """A Hugging Face hub cache under `cache` holding `hub_id` at the commits of `refs` ({ref: (commit,
    model folder)}), laid out as huggingface_hub writes it, so offline loads of it are real hub loads."""
    import shutil

    repo = cache / f"models--{hub_id.replace('/', '--')}"
    for ref, (commit, folder) in refs.items():
        shutil.copytree(folder, repo / "snapshots" / commit, ignore=shutil.ignore_patterns(".*"))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return cache


def test_a_hub_revision_selects_that_version_and_a_local_folder_refuses_one(tiny_model_dir, tmp_path, monkeypatch):
    import argparse

    from huggingface_hub import constants

    changed, tokenizer = models.load(tiny_model_dir)
    with torch.no_grad():
        changed.lm_head.weight.add_(1.0)
    models.save(changed, tokenizer, tmp_path / "changed")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake_hub_cache(
        tmp_path / "hub", "test/tiny", {"main": ("a" * 40, tiny_model_dir), "v2": ("b" * 40, tmp_path / "changed")})))
    parser = argparse.ArgumentParser()
    models.add_arguments(parser)
    main = models.load("test/tiny", **models.options(parser.parse_args([])))[0].lm_head.weight
    v2 = models.load("test/tiny", **models.options(parser.parse_args(["--revision", "v2"])))[0].lm_head.weight
    assert torch.equal(main, models.load(tiny_model_dir)[0].lm_head.weight) and torch.equal(v2, main + 1.0)
    with pytest.raises(DataError, match=r"a revision \(v2\) selects a version of a hub model, not of a local folder"):
        models.load(tiny_model_dir, revision="v2")


def test_the_method_record_is_saved_with_the_model_and_read_back(tiny_model_dir, tmp_path):
    model, tokenizer = models.load(tiny_model_dir)
    record = {"method": "intervention", "params": {"p": 0.1, "layers": "all"}, "at_eval": True}
    models.save(model, tokenizer, tmp_path / "m", record)
    assert models.read_method(tmp_path / "m") == record and not list((tmp_path / "m").glob(".partial-*"))
    assert models.read_method(tiny_model_dir) is None and models.read_method("owner/hub-model") is None
    (tmp_path / "m" / models.METHOD_FILE).write_text("{not json")
    with pytest.raises(DataError, match=rf"^{tmp_path / 'm' / models.METHOD_FILE}: not valid JSON"):
        models.read_method(tmp_path / "m")
    (tmp_path / "m" / models.METHOD_FILE).write_text('{"params": {}}')
    with pytest.raises(DataError, match="expected an object with a 'method' name"):
        models.read_method(tmp_path / "m")
