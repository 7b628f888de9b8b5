"""Resume checkpoints of a training job: a job given `--resume-dir` keeps Trainer checkpoints there,
outside its declared outputs, so a job killed at any point (preemption, time limit, out of memory)
continues from its last checkpoint when it is run again and ends with the same weights and losses as
an uninterrupted run. In a job of several processes (infoflow.training.distributed), rank 0 keeps the folder.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

from transformers import TrainerCallback

from infoflow.training import distributed

COMPLETE = "complete"  # the marker file of a checkpoint whose files are all written


class MarkComplete(TrainerCallback):
    """Mark each Trainer checkpoint once all its files are written: a job killed while saving one
    leaves it unmarked, and a rerun resumes from the checkpoint before."""

    def on_save(self, args, state, control, **kwargs):
        distributed.barrier()  # every process has written its part (its RNG state)
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            open(os.path.join(folder, COMPLETE), "w").close()


def fingerprint(args, inputs):
    """A digest of a training job's settings, process count and input files: checkpoints of other
    settings or data are not resumed from."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in vars(args).items() if k not in ("threads", "resume_every", "report_to")}
    settings["processes"] = distributed.world_size()
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in inputs:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def resumable(args):
    """Whether a run keeps resume checkpoints; settings built in code (residual scaling fits, tests)
    may leave the resume options out."""
    return bool(getattr(args, "resume_dir", None)) and args.resume_every > 0


def resume_checkpoint(folder, key):
    """The newest complete checkpoint in `folder` of the run with fingerprint `key`, or None.

    The folder is emptied when it holds another run's checkpoints; unmarked checkpoints (the job was
    killed while writing them) are deleted, by rank 0 while the other processes wait.
    """
    stamp = Path(folder) / "fingerprint"
    if distributed.is_main():
        if not stamp.exists() or stamp.read_text() != key:
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            with open(stamp, "w") as f:
                f.write(key)
        for path in Path(folder).glob("checkpoint-*"):
            if not (path / COMPLETE).exists():
                shutil.rmtree(path)
    distributed.barrier()
    complete = [str(path) for path in Path(folder).glob("checkpoint-*") if (path / COMPLETE).exists()]
    return max(complete, key=lambda path: int(path.rsplit("-", 1)[1]), default=None)
