"""Loading and saving causal LMs the Hugging Face way, so a local checkpoint and a hub model share one path."""

import os
import shutil
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def load(model_dir):
    """(model, tokenizer) from a folder or hub id, model on the job's device, in eval mode."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True).to(device())
    return model.eval(), tokenizer


def save(model, tokenizer, out_dir):
    """Write model (safetensors) and tokenizer to `out_dir`, each file appearing only when complete."""
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(dir=out_dir, prefix=".partial-")
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        # The weights go last: they are what downstream rules declare as input.
        names = sorted(os.listdir(staging), key=lambda name: name.endswith(".safetensors"))
        for name in names:
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
