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
        models.load(tiny_model_dir, training=True)
    message = str(error.value)
    assert message.startswith(f"{tiny_model_dir}: 0.00B parameters need about") and "for training in float32" in message
    assert "give the rule more memory" in message and "\n" not in message


def test_available_memory_is_positive():
    assert models.available_memory_mb() > 0
