"""Loading and saving causal LMs the Hugging Face way, so a local checkpoint and a hub model share one path.

Weights are read from safetensors only, and a model's own code (`trust_remote_code`) runs only when
asked for. Before the weights load, the model's size (from its config, on the meta device) is checked
against the memory the job has (for training, the bytes per parameter of its precision), so a model
too big for the job fails with a message that says so.

A post-trained model folder also holds METHOD_FILE, the method it was trained with:
{"method": ..., "params": {...}} (no params for sft), and for InfoSteer methods "at_eval", whether the
steering stays on while decoding (infoflow.infosteer.steer.from_folder re-applies it).
"""

import json
import os

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from infoflow.cli import StageFailure
from infoflow.io import DataError, staged_folder, write_json

METHOD_FILE = "method.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Training precisions. The -mixed ones keep float32 weights, gradients and AdamW states (the master
# copy) and run forward and backward under autocast; bf16-pure keeps all of them in bfloat16, which is
# lossy: an update below bf16's resolution of a weight is rounded away. 'auto': see resolve_precision.
PRECISIONS = ("auto", "bf16-mixed", "fp16-mixed", "bf16-pure", "fp32")
# Bytes per trained parameter: weights + gradients + AdamW's two moments (torch.optim.AdamW keeps
# them in each parameter's dtype), and under autocast the 16-bit copy of the weights that the
# backward pass keeps.
TRAINING_BYTES = {"fp32": 4 + 4 + 8, "bf16-mixed": 4 + 4 + 8 + 2, "fp16-mixed": 4 + 4 + 8 + 2, "bf16-pure": 2 + 2 + 4}
# Activations on top, as a share of those bytes: enough for small batches and short sequences only
# (their real size depends on batch x length); the check stops a model that cannot train at all.
ACTIVATION_ALLOWANCE = 0.25


def device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(name):
    """'auto': bfloat16 on a GPU that supports it, float32 otherwise (CPU)."""
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return DTYPES[name]


def resolve_precision(name):
    """The training precision `name` means on this job's device ('auto': bf16-mixed on a GPU with
    bf16, else fp32); a precision the device cannot train in fails here, before anything loads."""
    gpu = torch.cuda.is_available()
    bf16_gpu = gpu and torch.cuda.is_bf16_supported()
    if name == "auto":
        return "bf16-mixed" if bf16_gpu else "fp32"
    if name == "fp16-mixed" and not gpu:  # the Trainer would silently train in fp32 instead
        raise StageFailure("--precision fp16-mixed needs a CUDA GPU (no fp16 autocast on the CPU); use bf16-mixed or fp32")
    if name.startswith("bf16") and gpu and not bf16_gpu:
        raise StageFailure(f"--precision {name} needs a GPU with bf16 (Ampere or newer); use fp16-mixed or fp32 on this one")
    return name


def training_dtype(precision):
    """The dtype of the weights that train in `precision`: bfloat16 for bf16-pure, else float32."""
    return torch.bfloat16 if resolve_precision(precision) == "bf16-pure" else torch.float32


def add_arguments(parser):
    """The model-loading options every stage that loads a model takes."""
    parser.add_argument("--dtype", choices=("auto", *DTYPES), default="auto", help="auto: bf16 on GPUs that support it, else float32")
    parser.add_argument("--trust-remote-code", action="store_true", help="run code shipped with the model (off by default)")
    parser.add_argument("--revision", help="branch, tag or commit of a hub model (default: its main branch)")


def options(args):
    """The keyword arguments of `load` from the parsed options of `add_arguments`."""
    return {"dtype": args.dtype, "trust_remote_code": args.trust_remote_code, "revision": args.revision}


def available_memory_mb():
    """Free memory of the job's device: the GPU's, or the machine's (capped by the job's cgroup)."""
    if torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0] / 2**20
    with open("/proc/meminfo") as f:
        free = next(int(line.split()[1]) / 1024 for line in f if line.startswith("MemAvailable:"))
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            free = min(free, int(limit) / 2**20)
    except OSError:
        pass
    return free


def required_memory_mb(config, dtype, precision=None, training_bytes=None):
    """(MB, parameters) to run the model of `config` in `dtype`, or to train it in `precision` when given,
    with `training_bytes` per parameter on this device (default TRAINING_BYTES; less when devices share it)."""
    with torch.device("meta"):
        n_parameters = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    per_parameter = (training_bytes or TRAINING_BYTES[precision]) * (1 + ACTIVATION_ALLOWANCE) if precision else dtype.itemsize
    return n_parameters * per_parameter / 2**20, n_parameters


def load(model_dir, dtype="auto", trust_remote_code=False, precision=None, revision=None, training_bytes=None):
    """(model, tokenizer) from a folder or hub id (at `revision`, default main), model on the job's device, in eval mode.

    The weights load in `dtype`, or, for training in `precision` (PRECISIONS), in its training_dtype;
    `training_bytes`: see required_memory_mb.
    """
    if precision:
        precision = resolve_precision(precision)
    torch_dtype = training_dtype(precision) if precision else resolve_dtype(dtype)
    if revision and os.path.isdir(model_dir):  # transformers would ignore it silently
        raise DataError(f"{model_dir}: a revision ({revision}) selects a version of a hub model, not of a local folder")
    source = {"trust_remote_code": trust_remote_code, "revision": revision}
    try:
        config = AutoConfig.from_pretrained(model_dir, **source)
    except ValueError as e:
        if "trust_remote_code" not in str(e):
            raise
        raise DataError(
            f"{model_dir}: the model ships its own code, which runs only with model_loading.trust_remote_code: true"
            " (set it only for a source you trust)"
        ) from None
    if os.path.isdir(model_dir) and not any(name.endswith(".safetensors") for name in os.listdir(model_dir)):
        raise DataError(
            f"{model_dir}: no .safetensors weights (pickled weights such as pytorch_model.bin are never loaded;"
            " convert them to safetensors)"
        )
    needed, n_parameters = required_memory_mb(config, torch_dtype, precision, training_bytes)
    available = available_memory_mb()
    if needed > available:
        purpose = f"training in {precision}" if precision else f"inference in {str(torch_dtype).removeprefix('torch.')}"
        raise DataError(
            f"{model_dir}: {n_parameters / 1e9:.2f}B parameters need about {needed:,.0f} MB for {purpose}, "
            f"the job has {available:,.0f} MB free on {device()} "
            "(give the rule more memory or a larger GPU, or choose a smaller model)"
        )
    tokenizer = AutoTokenizer.from_pretrained(model_dir, **source)
    if tokenizer.pad_token is None:  # GPT-2 and Llama 3 ship without one; padded positions are masked
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, config=config, dtype=torch_dtype, use_safetensors=True, **source
    ).to(device())
    return model.eval(), tokenizer


def save(model, tokenizer, out_dir, method=None, state_dict=None):
    """Write model (safetensors), tokenizer and the post-training `method` record (METHOD_FILE, when
    given) to `out_dir`, each file appearing only when complete and the weights last; `state_dict`:
    the model's weights when its parameters do not hold them whole (a sharded model's, gathered)."""
    with staged_folder(out_dir, last=".safetensors") as staging:  # the weights are what rules declare
        model.save_pretrained(staging, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(staging)
        if method is not None:
            write_json(os.path.join(staging, METHOD_FILE), method)


def read_method(model_dir):
    """The METHOD_FILE record of a model folder; None for a hub id or a folder without one (base models)."""
    path = os.path.join(model_dir, METHOD_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("method"), str):
        raise DataError(f"{path}: expected an object with a 'method' name")
    return record
