"""What every stage's command line shares: thread setup and one-line errors for bad input."""

import logging
import sys

from infoflow.io import DataError


def setup(threads=None):
    """Configure logging; for torch stages, bound torch to the job's threads (Snakemake's `threads:`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if threads is not None:
        import torch  # only torch stages pass threads; data stages run where torch is not installed

        torch.set_num_threads(threads)


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
