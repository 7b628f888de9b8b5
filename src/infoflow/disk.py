"""The disk a config's run writes, estimated from the config before any job (issue 19).

Two figures: what stays on disk when the run is done (`Estimate.kept`), and the most that is on
disk at once (`Estimate.peak`), with the files the run deletes on the way (`Estimate.temporary`):

  final models           runs x parameters x bytes per saved parameter
  base model             those pretrained here, once each (none for a `pretrained` model)
  InfoRidge checkpoints  (inforidge.checkpoints + 1) models per run; kept with
                         inforidge.keep_checkpoints, else temporary: deleted once extracted, so at
                         most `concurrent_runs` runs hold theirs at once
  resume checkpoints     temporary: weights and the two AdamW states, twice (the Trainer writes the
                         next before deleting the last), per concurrent training job
  activations            per extracted run and checkpoint: 2 test splits x inforidge.extraction.examples x
                         (layer rows x (hidden, residual) + target) x width x bytes of
                         inforidge.extraction.dtype, uncompressed; the target is counted once per
                         example because its copies on the other layer rows compress to almost
                         nothing (byte-stream split and zstd make the files 15-25% smaller still)
  other                  an allowance: OTHER_PER_RUN per run and OTHER_FIXED (evaluations, MI
                         tables, flux, logs, the synthetic world, figures, the report); public
                         data set splits are not counted

Saved weights are float32 (4 bytes) as training keeps them, bfloat16 (2) under sft.precision
bf16-pure (infoflow.training.models.training_dtype). The parameter count comes from the base
model's shape: base_model's for one pretrained here (its word-level vocabulary bounded from the
world's config; the largest where tasks have their own, so runs are counted at most), the config.json of a local `pretrained` folder, or that of a hub model in the local
Hugging Face cache; without one, the model parts are left out and the estimate says so.

No torch here: the Snakefile runs this before any job. Sizes are in decimal GB (1e9 bytes).
"""

import json
import os
import shutil
from dataclasses import dataclass, field

from infoflow.base_models import pretrained_models

GB = 1e9
SPLITS = 2  # test_id and test_ood, the splits extraction reads
VECTOR_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}  # bfloat16 files hold float32 whose zero halves compress away
SAVED_BYTES = {"bf16-pure": 2}  # every other precision saves float32 weights
ADAM_STATES = 2
# Per run: the default run's evaluations, MI tables, probes, betas and logs took 0.25 MB a run; fixed:
# its world, tables, figures, claims and report took 28 MB (the run of 2026-12-01).
OTHER_PER_RUN, OTHER_FIXED = 0.5e6, 40e6
# Tokens of the embedded world besides its names and values: the template words, the modular
# task's signal numbers beyond the moduli, special tokens (the default world has 50 such, of 480).
WORLD_OTHER_TOKENS = 200
# Decoder families whose MLP has two matrices (up, down), not three (gate, up, down), and which
# learn position embeddings.
UNGATED = {"gpt2", "gpt_neox", "gptj", "gpt_neo", "phi", "opt", "bloom", "falcon", "starcoder2"}
LEARNED_POSITIONS = {"gpt2", "gpt_neo", "opt"}


LESS = "write less (fewer runs or checkpoints, 16-bit inforidge.extraction.dtype, inforidge.keep_checkpoints: false)"


class DiskBudgetError(Exception):
    """The estimate exceeds the budget or the free space; the message is one line naming which."""


@dataclass
class Estimate:
    kept: dict = field(default_factory=dict)  # {part: bytes} on disk when the run is done
    temporary: dict = field(default_factory=dict)  # {part: bytes} on disk at most at once, deleted by the run
    parameters: int | None = None
    source: str = ""  # where the parameter count comes from
    missing: list = field(default_factory=list)  # why parts are left out (a partial estimate)

    @property
    def total(self):
        return sum(self.kept.values())

    @property
    def peak(self):
        return self.total + sum(self.temporary.values())


def first(shape, *keys, default=None):
    """The value of the first of `keys` in a config.json dict (model families name fields differently)."""
    return next((shape[k] for k in keys if shape.get(k) is not None), default)


def model_shape(shape):
    """(parameters, hidden width, decoder layers) of a Hugging Face decoder config.json dict.

    Attention, MLP, embeddings and norm weights; biases (under 0.1% of a model) are left out.
    """
    shape = shape.get("text_config") or shape  # multimodal configs nest the language model's
    hidden = first(shape, "hidden_size", "n_embd", "d_model")
    layers = first(shape, "num_hidden_layers", "n_layer", "num_layers")
    heads = first(shape, "num_attention_heads", "n_head")
    if None in (hidden, layers, heads) or "vocab_size" not in shape:
        raise ValueError("no hidden size, layer count, head count or vocab_size in it")
    kind = shape.get("model_type", "")
    head_dim = first(shape, "head_dim", default=hidden // heads)
    kv_heads = first(shape, "num_key_value_heads", default=heads)
    intermediate = first(shape, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
    experts = first(shape, "num_local_experts", "num_experts", default=1)
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim  # q, o; k, v
    mlp = (2 if kind in UNGATED else 3) * hidden * intermediate * experts
    # An absent tie_word_embeddings is True, as in transformers' PretrainedConfig.
    embeddings = shape["vocab_size"] * hidden * (1 if shape.get("tie_word_embeddings", True) else 2)
    if kind in LEARNED_POSITIONS:
        embeddings += first(shape, "n_positions", "max_position_embeddings", default=0) * hidden
    return layers * (attention + mlp + 2 * hidden) + embeddings + hidden, hidden, layers


def embedded_vocabulary(config):
    """An upper bound on the word-level vocabulary of the world the embedded base model learns."""
    world, task = config["knowledge_world"], config["modular_task"]
    names = world["entities"] + max(4, world["entities"] // 10)  # last names, first names (knowledge_world.make_facts)
    values = sum(world[k] for k in ("cities", "years", "companies", "fields"))
    signals = max(task["id_modulus"], *task["ood_moduli"])
    return names + values + signals + task["noise_values"] + WORLD_OTHER_TOKENS


def pretrained_shapes(config):
    """config.json-style dicts of the base models pretrained here (infoflow.config.pretrained_models)."""
    settings = [s for _, s in pretrained_models(config).values()]
    return [{"model_type": s["architecture"], "hidden_size": s["hidden_size"], "intermediate_size": s["intermediate_size"],
             "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"], "vocab_size": embedded_vocabulary(config),
             "max_position_embeddings": s["block_size"], "tie_word_embeddings": True}  # as pretrain.build_model
            for s in settings]


def base_shape(config):
    """(config.json-style dict, where it comes from) of the base model (of those pretrained here, the
    largest: an upper bound for every run); ValueError saying why there is none."""
    base = config["base_model"]
    pretrained = base.get("pretrained")
    if not pretrained:
        return max(pretrained_shapes(config), key=lambda shape: model_shape(shape)[0]), "base_model's shape"
    if os.path.isdir(pretrained):
        path = os.path.join(pretrained, "config.json")
        if not os.path.isfile(path):
            raise ValueError(f"{path} is missing")
    else:
        path = cached_config(pretrained, base.get("revision"))
        if path is None:
            raise ValueError(f"{pretrained}: not a folder, and no config.json of it in the local Hugging Face cache")
    with open(path, encoding="utf-8") as f:
        return json.load(f), path


def cached_config(repo_id, revision):
    """The path of a hub model's config.json in the local Hugging Face cache, or None; never downloads."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        path = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except ValueError:  # not a valid hub id either (e.g. a missing local folder)
        return None
    return path if isinstance(path, str) else None  # else None, or a marker for "known not to exist"


def estimate(config, n_runs, n_extracted, concurrent_runs=None):
    """The Estimate of the disk the (merged, validated) `config` writes with `n_runs` post-training
    runs (task, method, seed), of which `n_extracted` have their InfoRidge activations extracted;
    `concurrent_runs`: how many post-training runs hold temporary files at once (the jobs Snakemake
    runs at once: its schedulers start the extraction that deletes a run's checkpoints before new
    training), default all runs."""
    ridge = config["inforidge"]
    extraction = ridge["extraction"]
    live = n_runs if concurrent_runs is None else min(concurrent_runs, n_runs)
    result, other = Estimate(), OTHER_PER_RUN * n_runs + OTHER_FIXED
    try:
        shape, result.source = base_shape(config)
        result.parameters, width, layers = model_shape(shape)
    except ValueError as e:  # json's decoding errors are ValueErrors too
        result.kept["other"] = other
        result.missing.append(f"models, checkpoints and activations not counted ({': '.join(filter(None, [result.source, str(e)]))})")
        return result
    model = result.parameters * SAVED_BYTES.get(config["sft"].get("precision"), 4)
    points = ridge["checkpoints"] + 1
    result.kept["final models"] = n_runs * model
    if not config["base_model"].get("pretrained"):
        # Pretraining keeps float32 weights.
        result.kept["base model"] = sum(model_shape(shape)[0] for shape in pretrained_shapes(config)) * 4
    if ridge.get("keep_checkpoints", False):
        result.kept["InfoRidge checkpoints"] = n_runs * points * model
    else:
        result.temporary["InfoRidge checkpoints"] = live * points * model
    if config["resume_every_steps"] > 0:
        result.temporary["resume checkpoints"] = live * 2 * model * (1 + ADAM_STATES)
        # A resumable job keeps its InfoRidge checkpoints with its resume checkpoints and copies
        # them out at its end (posttrain.finetune.publish): both copies exist for a moment.
        result.temporary["staged InfoRidge checkpoints"] = live * points * model
    rows = layers + (2 if extraction["last_layer"] == "both" else 1)
    vectors = SPLITS * extraction["examples"] * (2 * rows + 1) * width
    result.kept["activations"] = n_extracted * points * vectors * VECTOR_BYTES[extraction.get("dtype", "float32")]
    result.kept["other"] = other
    return result


def gigabytes(n):
    return f"{n / GB:.2f} GB"


def describe(result):
    """One line per figure: what stays, the most at once, and a partial estimate's gaps."""
    parts = lambda figures: ", ".join(f"{name} {gigabytes(n)}" for name, n in figures.items())  # noqa: E731
    size = f"{result.parameters:,} parameters from {result.source}" if result.parameters else "no parameter count"
    lines = [f"disk estimate: {gigabytes(result.total)} kept ({parts(result.kept)}); {size}"]
    if result.temporary:
        lines.append(f"disk estimate: at most {gigabytes(result.peak)} at once, with {parts(result.temporary)} deleted during the run")
    lines += [f"disk estimate is partial: {gap}" for gap in result.missing]
    return "\n".join(lines)


def existing_folder(folder):
    """`folder`, or its nearest existing parent (the results folder may not exist before the first job)."""
    folder = os.path.abspath(folder)
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return folder


def check(result, folder, budget_gb=None, written=0):
    """DiskBudgetError if the most the run has on disk at once exceeds `budget_gb` (disk_budget_gb;
    None: no budget), or if what it has yet to write (that, less the `written` bytes of its outputs
    already on disk) exceeds the free space of the file system of `folder`."""
    need = gigabytes(result.peak) + (" (partial)" if result.missing else "")
    if budget_gb is not None and result.peak > budget_gb * GB:
        raise DiskBudgetError(f"the run needs about {need} of disk at most, over disk_budget_gb: {budget_gb:g}; "
                              f"raise it, or {LESS}")
    free = shutil.disk_usage(existing_folder(folder)).free
    if result.peak - written > free:
        more = gigabytes(result.peak - written) + (" (partial)" if result.missing else "")
        raise DiskBudgetError(f"the run needs about {more} more disk at most, over the {gigabytes(free)} free for {folder}; "
                              f"free space there, or {LESS}")
