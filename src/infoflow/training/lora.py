"""LoRA post-training through `peft`: the parameter-efficient baseline users compare steering with.

The adapters are merged into the weights before any save, so every saved model (and checkpoint) is
a plain Hugging Face model that the rest of the pipeline loads like a fully fine-tuned one.
"""

import copy

from peft import LoraConfig, get_peft_model

from infoflow import cli

# Parameters of a `lora` method entry (config `methods`), as command-line tokens 'key=value'.
PARAM_TYPES = {"r": int, "alpha": float, "dropout": float, "target_modules": str}
DEFAULTS = {"r": 8, "alpha": 16.0, "dropout": 0.05, "target_modules": "all-linear"}


def parse_params(tokens):
    return {**DEFAULTS, **cli.parse_params(tokens, PARAM_TYPES, "lora")}


def attach(model, r, alpha, dropout, target_modules):
    """`model` with trainable LoRA adapters (rank r, scale alpha / r) and every base weight frozen.

    `target_modules` is 'all-linear' (every linear layer but the output head) or module names joined
    by ',' (e.g. 'q_proj,v_proj').
    """
    targets = target_modules if target_modules == "all-linear" else target_modules.split(",")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merged_copy(model):
    """A plain model with the adapters folded into its weights; the training model is left as it is
    (for checkpoints during training; at the end, `model.merge_and_unload()` needs no copy)."""
    return copy.deepcopy(model).merge_and_unload()
