"""What every stage's command line shares: thread setup, progress lines in the job log and one-line
errors for bad input."""

import logging
import math
import sys
import time

from infoflow.io import DataError


def setup(threads=None):
    """Configure logging; for torch stages, bound torch to the job's threads (Snakemake's `threads:`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if threads is not None:
        import torch  # only torch stages pass threads; data stages run where torch is not installed

        torch.set_num_threads(threads)


def duration(seconds):
    """'17s', '1m21s' or '2h03m'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def batches(items, batch_size, log):
    """Yield `items` in batches of `batch_size`; once each batch is done, log at INFO to `log`
    e.g. 'batch 3/12 (96/380 examples, 1.9 s/batch, ETA 17s)'.

    A single batch logs nothing: there is no progress to tell (and flux decodes each of its own
    batches as one batch of infoflow.training.generation.generate_ids).
    """
    total, started = math.ceil(len(items) / batch_size), time.monotonic()
    for index, start in enumerate(range(0, len(items), batch_size), 1):
        yield items[start : start + batch_size]
        if total > 1:
            per_batch = (time.monotonic() - started) / index
            log.info("batch %d/%d (%d/%d examples, %.1f s/batch, ETA %s)", index, total, min(start + batch_size, len(items)),
                     len(items), per_batch, duration(per_batch * (total - index)))


def parse_tags(tokens):
    """{'key': 'value'} from command-line labels 'key=value'."""
    return dict(token.split("=", 1) for token in tokens)


def parse_params(tokens, types, method):
    """{'key': value} from command-line parameters 'key=value', each converted by `types[key]`."""
    params = {}
    for token in tokens:
        key, _, value = token.partition("=")
        if key not in types:
            raise ValueError(f"unknown {method} parameter '{key}' (expected one of {', '.join(types)})")
        params[key] = types[key](value)
    return params


class StageFailure(RuntimeError):
    """A stage cannot go on for a reason its message states in one line (e.g. a diverged loss)."""


def run(main):
    """Run a stage; bad input ends it with one line naming the file and row, not a traceback."""
    try:
        main()
    except (DataError, StageFailure) as e:
        print(f"infoflow: {e}", file=sys.stderr)
        sys.exit(1)
