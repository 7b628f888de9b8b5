"""Every supported architecture through the real-model path: a tiny random model saved like a hub
checkpoint (from_config + save_pretrained, a byte-level BPE tokenizer as real models have) goes
through SFT with InfoSteer hooks, activation extraction, token flux and evaluation, by the pipeline's
own commands; in process, the steering hooks are checked to act on the key as each MLP computes it."""

import json
import math
from contextlib import contextmanager

import pytest
import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers import models as tokenizer_models
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from conftest import run_module
from infoflow import parquet
from infoflow.inforidge import activations
from infoflow.inforidge.extract import final_norm, last_position_states
from infoflow.infosteer.steer import intervene, key_entropy, steer
from infoflow.training import models
from infoflow.training.layers import UnsupportedModel, decoder_layers, memory_modules

SHAPE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
             max_position_embeddings=128)
CONFIGS = {
    "llama": SHAPE,
    "mistral": SHAPE,
    "qwen2": SHAPE,
    "gemma2": {**SHAPE, "head_dim": 16},
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=128),
    "phi3": {**SHAPE, "pad_token_id": None},  # its default pad id, 32000, is outside the tiny vocabulary
    "gpt_neox": SHAPE,
    "phi": SHAPE,
}


def gated_key(mlp, h):
    return mlp.act_fn(mlp.gate_proj(h)) * mlp.up_proj(h)


def phi3_key(mlp, h):
    gate, up = mlp.gate_up_proj(h).chunk(2, dim=-1)
    return mlp.activation_fn(gate) * up


# The key k computed by hand from the MLP's input h, as each architecture's MLP defines it.
KEYS = {
    "llama": gated_key, "mistral": gated_key, "qwen2": gated_key, "gemma2": gated_key,
    "gpt2": lambda mlp, h: mlp.act(mlp.c_fc(h)),
    "phi3": phi3_key,
    "gpt_neox": lambda mlp, h: mlp.act(mlp.dense_h_to_4h(h)),
    "phi": lambda mlp, h: mlp.activation_fn(mlp.fc1(h)),
}


def tiny_model(architecture, vocab_size, eos_token_id, **config):
    torch.manual_seed(0)
    config = AutoConfig.for_model(architecture, vocab_size=vocab_size, eos_token_id=eos_token_id, bos_token_id=eos_token_id,
                                  **{**CONFIGS.get(architecture, SHAPE), **config})
    return AutoModelForCausalLM.from_config(config)


@contextmanager
def inputs_of(modules):
    """{index: the input of modules[index]} from the forward passes inside the block."""
    seen = {}
    handles = [m.register_forward_pre_hook(lambda m, args, i=i: seen.__setitem__(i, args[0])) for i, m in enumerate(modules)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


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
def test_tiny_model_goes_through_sft_steering_extraction_flux_and_evaluation(architecture, bpe_tokenizer, tiny_world, tmp_path):
    base = tmp_path / "base"
    models.save(tiny_model(architecture, len(bpe_tokenizer), bpe_tokenizer.eos_token_id), bpe_tokenizer, base)
    loaded, tokenizer = models.load(base)
    assert loaded.config.model_type == architecture and tokenizer.pad_token == tokenizer.eos_token

    run_dir = tmp_path / "run"
    run_module("posttrain.finetune", "--model", base, "--train", tiny_world["paths"]["k_train"], "--method", "intervention",
               "--method-params", "p=0.1", "alpha=2.0", "--at-eval", "--learning-rate", 1e-3, "--epochs", 1, "--batch-size", 4,
               "--warmup-steps", 0, "--weight-decay", 0.0, "--seed", 0, "--threads", 1, "--checkpoints", 1,
               "--checkpoint-dir", run_dir / "checkpoints", "--out", run_dir / "model", "--history", run_dir / "history.json")
    assert json.loads((run_dir / "history.json").read_text())

    points = [run_dir / "checkpoints" / f"point{p:02d}" for p in (0, 1)]
    extracted = [tmp_path / f"point{p}.parquet" for p in (0, 1)]
    run_module("inforidge.extract", "--checkpoints", *points, "--out", *extracted, "--examples", tiny_world["paths"]["k_test_id"],
               "--sample", 4, "--sample-seed", 0, "--batch-size", 4, "--last-layer", "both", "--task", "knowledge",
               "--method", "intervention", "--seed", 0, "--threads", 1)
    frame = activations.scan(extracted[1], list(activations.SCALAR_COLUMNS))
    assert set(frame["layer"]) == {0, 1, 2} and len(frame) == 4 * 4  # 4 examples x (embeddings, 2 blocks, final norm)

    tokens = tmp_path / "tokens.parquet"
    # On the random base model: the tiny fine-tuned one may answer every prompt with EOS at once (no tokens).
    run_module("infosteer.flux", "--model", base, "--prompts", tiny_world["paths"]["k_cloze"], "--sample", 4,
               "--sample-seed", 0, "--max-new-tokens", 4, "--batch-size", 4, "--normalization", "abs",
               "--task", "knowledge", "--method", "intervention", "--seed", 0, "--threads", 1, "--out", tokens)
    flux = parquet.scan(tokens, ["flux", "entropy"])
    assert len(flux) and flux["flux"].is_finite().all() and flux["entropy"].dtype.size == 2  # one entropy per layer

    metrics = tmp_path / "metrics.json"
    run_module("posttrain.evaluate", "--model", run_dir / "model", "--examples", tiny_world["paths"]["k_test_ood"], "--splits", "test_ood",
               "--max-new-tokens", 4, "--batch-size", 4, "--threads", 1, "--predictions", tmp_path / "predictions.csv", "--metrics", metrics)
    assert json.loads(metrics.read_text())["n"] == len(tiny_world["knowledge"]["test_ood"])


@pytest.mark.parametrize("architecture", sorted(CONFIGS))
def test_steering_hooks_act_on_the_key_each_mlp_computes(architecture):
    model = tiny_model(architecture, 40, 0).eval()  # eval: no dropout between the hooks and the hand computation
    mlps, modules = [layer.mlp for layer in decoder_layers(model)], memory_modules(model)
    ids = torch.randint(0, 40, (2, 6))

    # Pre-hooks run in order: one added after the steering's sees what the memory matrix gets.
    with steer(model, "intervention", p=0.1, alpha=2.0) as steering, inputs_of(mlps) as h, inputs_of(modules) as k:
        with torch.no_grad():
            model(ids)
    assert steering.calls == [1, 1]
    for i, mlp in enumerate(mlps):
        key = KEYS[architecture](mlp, h[i])
        assert not torch.allclose(k[i], key)  # it was steered ...
        assert torch.allclose(k[i], intervene(key, math.ceil(0.1 * key.shape[-1]), 2.0, "signed", False), atol=1e-6)  # ... as the key

    with steer(model, "regularization", lam=0.01) as steering, inputs_of(mlps) as h:
        lm_loss = model(ids, labels=ids).loss
    expected = sum(key_entropy(KEYS[architecture](mlp, h[i]), "abs").mean() for i, mlp in enumerate(mlps))
    regulariser = -steering.lam * steering.entropy()
    assert torch.isfinite(lm_loss + regulariser) and torch.allclose(steering.entropy(), expected, atol=1e-5)
    (gradient,) = torch.autograd.grad(regulariser, model.get_input_embeddings().weight)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


@pytest.mark.parametrize("architecture", sorted(CONFIGS))
def test_the_logit_lens_uses_the_models_own_final_norm_and_head(architecture):
    model = tiny_model(architecture, 40, 0).eval()
    ids, lengths = torch.randint(1, 40, (2, 6)), torch.tensor([6, 4])
    mask = (torch.arange(6) < lengths[:, None]).long()
    states = last_position_states(model, ids, mask, lengths)  # [batch, embeddings + 2 blocks + normed, d]
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[torch.arange(2), lengths - 1]
        assert torch.allclose(final_norm(model)(states[:, -2]), states[:, -1], atol=1e-5)  # the raw last layer, normed
        # (Gemma-2 soft-caps its logits, tanh(x / 30) * 30: monotonic, and within tolerance at these tiny logits.)
        assert torch.allclose(model.get_output_embeddings()(states[:, -1]), logits, atol=1e-4)


def test_an_unsupported_layout_is_named_in_one_line(bpe_tokenizer, tiny_world, tmp_path):
    """A mixture-of-experts MLP has no single key; the stage names the class and the modules it found."""
    moe = tmp_path / "mixtral"
    models.save(tiny_model("mixtral", len(bpe_tokenizer), bpe_tokenizer.eos_token_id, num_local_experts=2), bpe_tokenizer, moe)
    result = run_module("infosteer.flux", "--model", moe, "--prompts", tiny_world["paths"]["k_cloze"], "--sample", 2,
                        "--sample-seed", 0, "--max-new-tokens", 2, "--batch-size", 2, "--normalization", "abs", "--task",
                        "knowledge", "--method", "sft", "--seed", 0, "--threads", 1, "--out", tmp_path / "tokens.parquet", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "infoflow: MixtralForCausalLM: layer 0: MLP MixtralSparseMoeBlock has modules gate, experts, "
        "not a known FFN layout (gate_proj+up_proj+down_proj; gate_up_proj+down_proj; ")
    assert not (tmp_path / "tokens.parquet").exists()

    opt = AutoModelForCausalLM.from_config(AutoConfig.for_model("opt", vocab_size=40, hidden_size=32, ffn_dim=64, word_embed_proj_dim=32,
                                                                num_hidden_layers=2, num_attention_heads=2))
    with pytest.raises(UnsupportedModel, match=r"^OPTForCausalLM: no decoder layer list \(.layers or .h\) in OPTModel \(its modules: decoder\)$"):
        memory_modules(opt)
    with pytest.raises(UnsupportedModel, match=r"^OPTForCausalLM: no final norm \(.norm, .ln_f, .final_layer_norm, .final_layernorm\) among OPTModel's modules: decoder$"):
        final_norm(opt)
