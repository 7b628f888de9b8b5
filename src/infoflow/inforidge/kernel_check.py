"""I(Z;Y) per layer of one run's final checkpoint under other kernel settings than the main
estimate's, so the claims check can ask whether the ridge depends on the estimator (InfoRidge
App. E varies the kernel; varying the width is our extension).

Each setting is `kernel:sigma` (infoflow.inforidge.mi.KERNELS; the polynomial kernel ignores sigma). The
output is infoflow.inforidge.ridge's information table with `kernel` and `sigma` columns added.
"""

import argparse

import polars as pl
from threadpoolctl import threadpool_limits

from infoflow import cli
from infoflow.inforidge import mi
from infoflow.io import write_csv
from infoflow.inforidge.ridge import Checkpoint, information


def setting(text):
    """('kernel', sigma) from 'kernel:sigma'."""
    kernel, _, sigma = text.partition(":")
    if kernel not in mi.KERNELS:
        raise argparse.ArgumentTypeError(f"unknown kernel {kernel!r} in {text!r} (one of {', '.join(mi.KERNELS)})")
    try:
        return kernel, float(sigma)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not KERNEL:SIGMA") from None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", required=True, help="the run's Parquet file of its last checkpoint")
    parser.add_argument("--settings", nargs="+", type=setting, required=True, metavar="KERNEL:SIGMA")
    parser.add_argument("--examples", type=int, required=True, help="N examples per MI estimate")
    parser.add_argument("--sample-seeds", type=int, required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--out", required=True, help="CSV of I(Z;Y) and I(dZ;Y) per setting")
    args = parser.parse_args()
    cli.setup(args.threads)

    checkpoint = Checkpoint(args.activations)
    with threadpool_limits(args.threads):
        tables = [
            information(checkpoint, args.examples, args.sample_seeds, kernel, sigma, args.alpha).with_columns(
                kernel=pl.lit(kernel), sigma=pl.lit(sigma, dtype=pl.Float64)
            )
            for kernel, sigma in args.settings
        ]
    write_csv(args.out, pl.concat(tables))


if __name__ == "__main__":
    cli.run(main)
