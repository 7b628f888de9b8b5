"""One place where the Hugging Face Trainer is configured, for pretraining and post-training alike.

A stage given `--resume-dir` continues a killed job from its last checkpoint (infoflow.training.resume);
a job started by a launcher trains on several devices (infoflow.training.distributed).
"""

import importlib.util
import logging
import math
import os
import tempfile
import time

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from infoflow.cli import StageFailure, duration
from infoflow.training import distributed, models
from infoflow.training.resume import MarkComplete, fingerprint, resumable, resume_checkpoint

log = logging.getLogger("infoflow.training.trainer")

TRAINER_FLAGS = {
    "--batch-size": int,
    "--learning-rate": float,
    "--epochs": float,
    "--warmup-steps": int,
    "--weight-decay": float,
    "--seed": int,
    "--threads": int,
}
# Where the Trainer may also report its logs, and the package each one needs.
REPORT_TO = {"none": None, "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def add_arguments(parser):
    """The Trainer settings and outputs that every training stage takes on its command line."""
    for flag, kind in TRAINER_FLAGS.items():
        parser.add_argument(flag, type=kind, required=True)
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1, help="effective batch = batch size x this")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in the backward pass")
    parser.add_argument("--precision", choices=models.PRECISIONS, default="auto",
                        help="auto: bf16-mixed on GPUs with bf16, else fp32; bf16-pure is lossy (no fp32 master weights)")
    parser.add_argument("--out", required=True, help="model folder")
    parser.add_argument("--history", required=True, help="JSON file of the logged training losses")
    parser.add_argument("--resume-dir", help="folder of the checkpoints a rerun of a killed job resumes from")
    parser.add_argument("--resume-every", type=int, default=0, help="steps between resume checkpoints (0: none)")
    add_report_argument(parser)


# The workflow sets the tracker in the environment, not on the command line: where progress is
# reported does not change what a job computes, so changing it must not rerun the job.
REPORT_TO_VARIABLE = "INFOFLOW_REPORT_TO"


def add_report_argument(parser):
    """`--report-to`, for stages that build their Trainer settings in code (residual scaling)."""
    parser.add_argument("--report-to", choices=REPORT_TO, default=os.environ.get(REPORT_TO_VARIABLE, "none"),
                        help="also report the training logs to this tracker (tensorboard: to $TENSORBOARD_LOGGING_DIR)")


def check_report_to(report_to):
    """Stop before training when the tracker `report_to` cannot be reported to."""
    package = REPORT_TO[report_to]
    if package and importlib.util.find_spec(package) is None:
        raise StageFailure(f"training.report_to: {report_to} needs the '{package}' package (pip install {package})")
    # The Trainer's default folder for event files is inside its output folder, which is deleted.
    if report_to == "tensorboard" and not os.environ.get("TENSORBOARD_LOGGING_DIR"):
        raise StageFailure("training.report_to: tensorboard needs TENSORBOARD_LOGGING_DIR, the folder for its event files")


class NonFiniteLoss(StageFailure):
    """The training loss became NaN or infinite."""


class CheckedTrainer(Trainer):
    """The Trainer, stopped before the update of the first step whose loss is not finite."""

    def __init__(self, *args, run_label, **kwargs):
        super().__init__(*args, **kwargs)
        self.run_label, self.last_finite_loss = run_label, None

    def create_accelerator_and_postprocess(self):
        super().create_accelerator_and_postprocess()
        distributed.shard_on_cpu(self)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLoss(
                f"{self.run_label}: training loss is {value} at step {self.state.global_step + 1}"
                f" (last finite loss {self.last_finite_loss}); no model was saved"
            )
        self.last_finite_loss = value
        return loss


class SteeredTrainer(CheckedTrainer):
    """The (checked) Trainer with an InfoSteer method (infoflow.infosteer.steer.Steering) active in every forward pass.

    The regulariser's key entropy is a mean over the steered positions of the whole update, as the LM
    loss is over its labels: every micro-batch of the accumulation window on every process. So the
    update, and the logged key entropy (the mean over a logging window's updates), equal those of one
    large batch on one device, whatever the accumulation, the processes and their sharding.
    """

    def __init__(self, *args, steering, **kwargs):
        super().__init__(*args, **kwargs)
        self.steering = steering
        self.entropy_share, self.updates = 0.0, 0  # this process's part of the logging window's entropies

    def positions(self, batch):
        """Set the steered positions of `batch` (Steering.set_positions) and count them."""
        self.steering.set_positions(batch.get("attention_mask"), batch.get("labels"))
        return batch["input_ids"].numel() if self.steering.mask is None else int(self.steering.mask.sum())

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        if self.steering.adds_loss:  # one update's batches: count its positions everywhere
            count = torch.tensor(float(sum(self.positions(batch) for batch in batches)), device=device)
            self.update_positions = self.accelerator.reduce(count, "sum")
            self.updates += 1
        return batches, num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        count = self.positions(inputs)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if self.steering.adds_loss:
            # This micro-batch's part of the mean. Its weight is divided in Python, where a count over
            # itself is exactly 1 (torch's scalar / tensor is not), so one device without accumulation
            # trains exactly as the plain mean does.
            share = self.steering.entropy() * (count / self.update_positions.item())
            # Processes average their gradients, so each one's part counts n times (the Trainer's LM loss rule).
            term = self.steering.lam * share * self.accelerator.num_processes
            # Unless the LM loss was normalised over the accumulation window, the Trainer divides
            # the whole loss by the accumulation steps; the term is already normalised.
            if not (self.model_accepts_loss_kwargs and num_items_in_batch is not None):
                term = term * self.current_gradient_accumulation_steps
            loss = loss - term
            self.entropy_share += share.detach()
        return (loss, outputs) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        if self.updates and "loss" in logs:  # every process logs the same steps
            total = self.accelerator.reduce(torch.as_tensor(self.entropy_share, device=self.args.device), "sum")
            logs["key_entropy"] = total.item() / self.updates
            self.entropy_share, self.updates = 0.0, 0
        super().log(logs, *args, **kwargs)


class SaveCheckpoints(TrainerCallback):
    """Call `save(model, point, step)` before the first update (point 0) and after `count` evenly
    spaced steps up to the last one (points 1..count), so information can be traced over training."""

    def __init__(self, count, save):
        self.count, self.save = count, save

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.max_steps < self.count:
            raise ValueError(f"{self.count} checkpoints need at least as many training steps (this run has {state.max_steps})")
        self.points = {round(i * state.max_steps / self.count): i for i in range(1, self.count + 1)}
        if state.global_step == 0:  # a resumed run saved point 0 before it was killed
            self.save(model, 0, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.points:
            self.save(model, self.points[state.global_step], state.global_step)


class LogProgress(TrainerCallback):
    """One line per logging window in the job log, e.g.
    'step 40/300 (13%)  loss 2.314  lr 4.1e-04  3.2 steps/s  ETA 1m21s' (and the key entropy when steered)."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.window = (time.monotonic(), state.global_step)  # a resumed run starts at its checkpoint's step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" not in logs:  # the end-of-training summary
            return
        now, step = time.monotonic(), state.global_step
        rate = (step - self.window[1]) / max(now - self.window[0], 1e-9)
        self.window = (now, step)
        entropy = f"  key entropy {logs['key_entropy']:.3f}" if "key_entropy" in logs else ""
        log.info("step %d/%d (%d%%)  loss %.3f  lr %.1e  %.1f steps/s  ETA %s%s", step, state.max_steps,
                 100 * step // state.max_steps, logs["loss"], logs["learning_rate"], rate,
                 duration((state.max_steps - step) / rate) if rate else "unknown", entropy)


def check_trainable_dtype(model, precision, run_label):
    """Stop before training when the trained parameters are not in the dtype `precision` trains:
    mixed precision on 16-bit weights would have no float32 master copy."""
    wanted = models.training_dtype(precision)
    found = {str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad and p.dtype != wanted}
    if found:
        raise StageFailure(f"{run_label}: --precision {precision} trains {str(wanted).removeprefix('torch.')}"
                           f" parameters, the model's are {', '.join(sorted(found))}")


def train(model, train_set, args, *, scheduler, run_label, collator=None, logging_steps=10, steering=None,
          callbacks=(), inputs=()):
    """Train `model` in place on `train_set` with the settings in `args`; return the logged losses.

    With `steering` (an active infoflow.infosteer.steer.Steering), every training forward pass is steered.
    With `args.resume_dir`, Trainer checkpoints are kept there every `args.resume_every` steps
    (rounded up to whole logging windows, so a resumed run logs the same losses) and the newest one
    of the same settings and `inputs` files is resumed from; the caller deletes the folder once its
    outputs are written. `run_label` names the run in errors. Progress goes to the log every
    `logging_steps` steps, and to `args.report_to` (settings built in code may leave it out). The model
    trains in `args.precision` (models.PRECISIONS; left out: auto), its trained parameters already in
    that precision's models.training_dtype. Under a launcher, every process calls this, and the job's
    processes share the model by `args.sharding` (infoflow.training.distributed; left out: none).
    """
    report_to = getattr(args, "report_to", "none")
    check_report_to(report_to)
    precision = models.resolve_precision(getattr(args, "precision", "auto"))
    check_trainable_dtype(model, precision, run_label)
    sharding = getattr(args, "sharding", "none")
    with tempfile.TemporaryDirectory() as scratch:
        resume = resumable(args)
        save_steps = math.ceil(args.resume_every / logging_steps) * logging_steps if resume else None
        training_args = TrainingArguments(
            output_dir=args.resume_dir if resume else scratch,
            per_device_train_batch_size=args.batch_size,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            gradient_checkpointing=args.gradient_checkpointing,
            # Non-reentrant: steering hooks and the regulariser get their graph in the first forward pass.
            gradient_checkpointing_kwargs={"use_reentrant": False},
            learning_rate=args.learning_rate,
            num_train_epochs=args.epochs,
            warmup_steps=args.warmup_steps,
            weight_decay=args.weight_decay,
            lr_scheduler_type=scheduler,
            max_grad_norm=1.0,
            logging_steps=logging_steps,
            save_strategy="steps" if resume else "no",
            save_steps=save_steps,
            save_total_limit=1,
            report_to=report_to,
            disable_tqdm=True,  # progress bars are noise in a log file: LogProgress writes lines
            seed=args.seed,
            remove_unused_columns=False,
            # Autocast over fp32 weights; bf16-pure weights need none. The Trainer takes bf16 autocast
            # on the CPU only when told it runs there.
            bf16=precision == "bf16-mixed",
            fp16=precision == "fp16-mixed",
            use_cpu=models.device() == "cpu",
            **distributed.trainer_options(sharding, model),
        )
        # After the settings, which start the processes' group: rank 0 tidies the folder, the others wait.
        checkpoint = resume_checkpoint(args.resume_dir, fingerprint(args, inputs)) if resume else None
        if checkpoint:
            log.info("continuing from %s", checkpoint)
        if distributed.world_size() > 1:
            callbacks = [*callbacks, distributed.LogSharding(sharding)]
        trainer_class, extra = (CheckedTrainer, {}) if steering is None else (SteeredTrainer, {"steering": steering})
        trainer = trainer_class(model=model.train(), args=training_args, train_dataset=train_set, data_collator=collator,
                                callbacks=[*callbacks, MarkComplete(), LogProgress()], run_label=run_label, **extra)
        # It prints the same logs as dicts to stdout, which a job log gets only when the buffer fills.
        trainer.remove_callback(PrinterCallback)
        trainer.train(resume_from_checkpoint=checkpoint)
        distributed.barrier()  # every process is done with the folders before the caller moves them
    model.eval()
    return [entry for entry in trainer.state.log_history if "loss" in entry]
