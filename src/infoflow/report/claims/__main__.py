"""`python -m infoflow.report.claims`: the claims check (infoflow.report.claims.check)."""

from infoflow import cli
from infoflow.report.claims.check import main

if __name__ == "__main__":
    cli.run(main)
