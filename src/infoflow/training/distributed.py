"""Training one model on several devices of one job (sft.devices_per_job), through the Trainer and accelerate.

A launcher (torchrun) starts one process per device; `sharding` says how they share the model:
  none:      DDP: each process holds the whole model and its AdamW states; gradients are averaged;
  fsdp:      FSDP2 full sharding (accelerate's plugin): weights, gradients and AdamW states are split
             between the processes, and each decoder layer is gathered whole only while it runs;
  deepspeed: DeepSpeed ZeRO stage 2 (as the InfoSteer paper): gradients and AdamW states split, the
             weights whole on each device; it needs the deepspeed package and CUDA GPUs.
Each process runs every layer on its own part of the batch, so steering hooks fire in every process;
the regulariser's term is normalised over the whole batch (infoflow.training.trainer.SteeredTrainer).
Files are written by rank 0 alone, sharded weights gathered first (`full_state_dict`), so every
saved model is a plain Hugging Face folder.
"""

import importlib.util
import logging
import os

import torch
from torch import distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.tensor import DTensor
from transformers import TrainerCallback

from infoflow.cli import StageFailure
from infoflow.training import models
from infoflow.training.layers import decoder_layers

log = logging.getLogger("infoflow.training.distributed")

SHARDINGS = ("none", "fsdp", "deepspeed")
# DeepSpeed is optional (not in requirements.txt): the version this code was written for.
DEEPSPEED = "deepspeed==0.19.8"
# ZeRO-2; "auto" values are filled in from the Trainer's settings (batch sizes, clipping, precision).
ZERO2 = {
    "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
    "bf16": {"enabled": "auto"},
    "fp16": {"enabled": "auto"},
    "train_micro_batch_size_per_gpu": "auto",
    "train_batch_size": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
}


def world_size():
    """Processes of this job: set by the launcher, 1 for a plain `python -m`."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main():
    """Whether this process writes the job's files (rank 0)."""
    return int(os.environ.get("RANK", "0")) == 0


def barrier():
    """Wait for every process of the job (nothing to wait for in a single-process job)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def prepare(sharding):
    """Before a model loads: stop with one line if `sharding` cannot run here, put this process on
    its own GPU (all would load onto cuda:0 otherwise), and leave the job log to rank 0."""
    if sharding == "deepspeed":
        if importlib.util.find_spec("deepspeed") is None:
            raise StageFailure(f"sft.sharding: deepspeed needs the 'deepspeed' package (pip install {DEEPSPEED})")
        if not torch.cuda.is_available():
            # accelerate 1.15 counts one process in a DeepSpeed run on the CPU, and DeepSpeed refuses the batch sizes.
            raise StageFailure("sft.sharding: deepspeed needs CUDA GPUs; on the CPU use fsdp or none")
    if world_size() > 1 and torch.cuda.is_available():
        processes, devices = int(os.environ["LOCAL_WORLD_SIZE"]), torch.cuda.device_count()
        if devices < processes:
            raise StageFailure(f"sft.devices_per_job: {processes} processes on this node, which gives the job "
                               f"{devices} GPU(s) (CUDA_VISIBLE_DEVICES); ask for {processes} GPUs per job")
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if not is_main():
        logging.getLogger("infoflow").setLevel(logging.WARNING)


def training_bytes(precision, sharding):
    """Bytes per parameter on each device to train in `precision` (models.TRAINING_BYTES) with this
    job's processes sharing the model by `sharding`: FSDP splits all of them, ZeRO-2 all but the
    weights; either way each device first loads the whole weights."""
    total, weights = models.TRAINING_BYTES[precision], models.training_dtype(precision).itemsize
    if world_size() == 1 or sharding == "none":
        return total
    split = total if sharding == "fsdp" else total - weights
    return max(weights, total - split + split / world_size())


def trainer_options(sharding, model):
    """The TrainingArguments settings of `sharding` for this job (none for a single process)."""
    if world_size() == 1 or sharding == "none":
        return {}
    if sharding == "deepspeed":
        return {"deepspeed": ZERO2}
    layer_class = type(decoder_layers(model)[0]).__name__
    return {"fsdp": True, "fsdp_config": {"version": 2, "transformer_layer_cls_to_wrap": [layer_class],
                                          "reshard_after_forward": True, "state_dict_type": "FULL_STATE_DICT"}}


def shard_on_cpu(trainer):
    """Turn on a CPU job's FSDP plugin. accelerate 1.15 applies it on accelerator devices only and
    trains a CPU job (gloo) with DDP instead, without a word; FSDP2 itself shards on the CPU, so the
    plugin is turned on here as accelerate's AcceleratorState does on a GPU."""
    from accelerate import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    if trainer.args.fsdp_plugin_args is None or state.distributed_type != DistributedType.MULTI_CPU:
        return
    plugin = FullyShardedDataParallelPlugin(**trainer.args.fsdp_plugin_args)
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = plugin
    # Both states: a later AcceleratorState() copies the PartialState's distributed type over its own.
    state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    trainer.is_fsdp_enabled = True


def is_sharded(model):
    return any(isinstance(p, DTensor) for p in model.parameters())


def full_state_dict(model):
    """The whole weights of a sharded `model` (FSDP2) on rank 0, on the CPU, gathered from every
    process, which must all call this; None for a model that each process holds whole."""
    if not is_sharded(model):
        return None
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    # A tied weight (GPT-2's, Qwen2.5-0.5B's output embedding) is gathered under both names; save_pretrained
    # writes it once, under the name that named_parameters keeps.
    tied = {n for n, _ in model.named_parameters(remove_duplicate=False)} - {n for n, _ in model.named_parameters()}
    return {name: tensor for name, tensor in state.items() if name not in tied}


class LogSharding(TrainerCallback):
    """One line in the job log once the model is sharded, e.g. 'fsdp over 2 processes: rank 0 holds
    1,234 of 2,468 weights', so a job log shows that the sharding happened."""

    def __init__(self, sharding):
        self.sharding = sharding

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        held = sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in model.parameters())
        total = sum(p.numel() for p in model.parameters())
        log.info("%s over %d processes: rank 0 holds %s of %s weights", self.sharding, world_size(), f"{held:,}", f"{total:,}")
