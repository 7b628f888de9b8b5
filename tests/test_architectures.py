"""Every supported architecture through the real-model path: a tiny random model saved like a hub
checkpoint (from_config + save_pretrained, a byte-level BPE tokenizer as real models have) goes
through SFT with InfoSteer hooks, activation extraction and evaluation, by the pipeline's own commands."""

import json

import pytest
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers import models as tokenizer_models
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from conftest import run_module
from infoflow.inforidge import activations
from infoflow.training import models

SHAPE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
             max_position_embeddings=128)
CONFIGS = {
    "llama": SHAPE,
    "mistral": SHAPE,
    "qwen2": SHAPE,
    "gemma2": {**SHAPE, "head_dim": 16},
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=128),
}


@pytest.fixture(scope="module")
def bpe_tokenizer(tiny_world):
    texts = (tiny_world["root"] / "corpus.txt").read_text().splitlines()
    tokenizer = Tokenizer(tokenizer_models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")  # no pad token, as GPT-2's


@pytest.mark.parametrize("architecture", sorted(CONFIGS))
def test_tiny_model_goes_through_sft_steering_extraction_and_evaluation(architecture, bpe_tokenizer, tiny_world, tmp_path):
    import torch

    torch.manual_seed(0)
    config = AutoConfig.for_model(architecture, vocab_size=len(bpe_tokenizer), eos_token_id=bpe_tokenizer.eos_token_id, bos_token_id=bpe_tokenizer.eos_token_id,
                                  **CONFIGS[architecture])
    base = tmp_path / "base"
    models.save(AutoModelForCausalLM.from_config(config), bpe_tokenizer, base)
    loaded, tokenizer = models.load(base)
    assert loaded.config.model_type == architecture and tokenizer.pad_token == tokenizer.eos_token

    run_dir = tmp_path / "run"
    run_module("posttrain.finetune", "--model", base, "--train", tiny_world["paths"]["k_train"], "--method", "intervention",
               "--method-params", "p=0.1", "alpha=2.0", "--learning-rate", 1e-3, "--epochs", 1, "--batch-size", 4,
               "--warmup-steps", 0, "--weight-decay", 0.0, "--seed", 0, "--threads", 1, "--checkpoints", 1,
               "--checkpoint-dir", run_dir / "checkpoints", "--out", run_dir / "model", "--history", run_dir / "history.json")
    assert json.loads((run_dir / "history.json").read_text())

    points = [run_dir / "checkpoints" / f"point{p:02d}" for p in (0, 1)]
    parquet = [tmp_path / f"point{p}.parquet" for p in (0, 1)]
    run_module("inforidge.extract", "--checkpoints", *points, "--out", *parquet, "--examples", tiny_world["paths"]["k_test_id"],
               "--sample", 4, "--sample-seed", 0, "--batch-size", 4, "--last-layer", "both", "--task", "knowledge",
               "--method", "intervention", "--seed", 0, "--threads", 1)
    frame = activations.scan(parquet[1], list(activations.SCALAR_COLUMNS))
    assert set(frame["layer"]) == {0, 1, 2} and len(frame) == 4 * 4  # 4 examples x (embeddings, 2 blocks, final norm)

    metrics = tmp_path / "metrics.json"
    run_module("posttrain.evaluate", "--model", run_dir / "model", "--examples", tiny_world["paths"]["k_test_ood"], "--splits", "test_ood",
               "--max-new-tokens", 4, "--batch-size", 4, "--method", "intervention", "--steering", "p=0.1", "alpha=2.0",
               "--threads", 1, "--predictions", tmp_path / "predictions.csv", "--metrics", metrics)
    assert json.loads(metrics.read_text())["n"] == len(tiny_world["knowledge"]["test_ood"])
