"""Where the last full reproduction's time went: its wall time, job-seconds by rule, the longest
jobs, and the critical path (the longest chain of dependent jobs weighted by their durations),
which with the job-seconds bounds the wall time of any schedule on 2 cores.

The jobs and their dependencies come from Snakemake itself: a dry run of the whole DAG
(`snakemake -n --forceall`, forced so that a complete run still lists every job) prints each job
with its rule, wildcards, input and output files, threads and benchmark file. A job depends on
the jobs whose outputs are among its inputs, which is how Snakemake links them (on the default run of
2026-12-01 these are `--d3dag`'s 754 edges exactly; tests/test_benchmarks.py checks it). The dry run was
chosen over `--dag` / `--d3dag` because it names each job's benchmark file as Snakemake expands
it: `--dag` labels a job only with the wildcards its inputs lack and `--d3dag` only with its rule,
so either would need the benchmark patterns re-expanded here. A job's duration is the `s` column of
its benchmark file (summed over the rows of a repeated benchmark), and the file's mtime is the
job's end, so the wall time runs from the earliest end minus duration to the latest end (after a
partial rerun, the files of the jobs it did not rerun are the run's before, and the span holds both). A job
without a benchmark file (`rule all`, or one whose file the last run did not write) counts 0 s and
is counted among the jobs without one.

    python benchmarks/pipeline_profile.py [--root DIR] [--json out]     (used by run_all.py)
"""

import argparse
import datetime
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import headline

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- benchmarks/pipeline_profile.py: start -->", "<!-- benchmarks/pipeline_profile.py: end -->"
CORES, TOP_JOBS = 2, 5
MINOR_RULE_SHARE = 0.01  # rules under this share of the job-seconds share one row of the table
JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
JOB_FIELD = re.compile(r"^    (input|output|benchmark|jobid|wildcards|threads): (.*)$")


@dataclass
class Job:
    jobid: int
    rule: str
    wildcards: str = ""
    inputs: tuple = ()
    outputs: tuple = ()
    benchmark: str = ""
    threads: int = 1
    seconds: float = 0.0
    end: float | None = None  # mtime of the benchmark file; None without one

    @property
    def name(self):
        """The rule and what tells its jobs apart: the wildcards, else the benchmark file."""
        return f"{self.rule} ({self.wildcards or self.benchmark or 'no benchmark'})"


def snakemake(root, *arguments):
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(CORES), "--workflow-profile", "none", *arguments],
                          cwd=root, capture_output=True, text=True)


def dry_run_jobs(text):
    """The jobs a Snakemake dry run prints, in its order."""
    jobs, fields = [], None
    for line in [*text.splitlines(), ""]:
        header = JOB_HEADER.match(line)
        field = JOB_FIELD.match(line)
        if fields is not None and (header or not line.startswith("    ")):
            files = {key: tuple(fields[key].split(", ")) if key in fields else () for key in ("input", "output")}
            jobs.append(Job(jobid=int(fields["jobid"]), rule=fields["rule"], wildcards=fields.get("wildcards", ""),
                            inputs=files["input"], outputs=files["output"], benchmark=fields.get("benchmark", ""),
                            threads=int(fields.get("threads", 1))))
            fields = None
        if header:
            fields = {"rule": header.group(1)}
        elif fields is not None and field:
            fields[field.group(1)] = field.group(2)
    return jobs


def dependencies(jobs):
    """{jobid: the jobids whose outputs it reads}."""
    producer = {path: job.jobid for job in jobs for path in job.outputs}
    return {job.jobid: {producer[path] for path in job.inputs if path in producer} for job in jobs}


def read_durations(jobs, root):
    """Each job's seconds and end from its benchmark file under `root`, where there is one."""
    for job in jobs:
        path = Path(root) / job.benchmark
        if job.benchmark and path.is_file():
            rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]
            if rows:
                job.seconds = sum(float(row[0]) for row in rows)
                job.end = path.stat().st_mtime


def critical_path(jobs, depends_on):
    """(seconds, jobs from first to last) of the chain of dependent jobs with the most seconds."""
    by_id = {job.jobid: job for job in jobs}
    longest = {}  # jobid: (seconds of the longest chain ending with it, the job before it)

    def chain_to(jobid):  # iterative depth-first, as a DAG of thousands of jobs would overflow recursion
        stack = [jobid]
        while stack:
            top = stack[-1]
            pending = [d for d in depends_on[top] if d not in longest]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            before = max(depends_on[top], key=lambda d: longest[d][0], default=None)
            longest[top] = (by_id[top].seconds + (longest[before][0] if before is not None else 0.0), before)

    for job in jobs:
        if job.jobid not in longest:
            chain_to(job.jobid)
    last = max(longest, key=lambda j: longest[j][0], default=None)
    if last is None:
        return 0.0, []
    seconds, path = longest[last][0], []
    while last is not None:
        path.append(by_id[last])
        last = longest[last][1]
    return seconds, path[::-1]


def profile(root=REPO, *arguments):
    """The profile of the run whose benchmark files are under `root`, for the DAG of `root`'s
    workflow and config (`arguments` go to the dry run, e.g. --configfile)."""
    dry = snakemake(root, "-n", "--forceall", *arguments)
    if dry.returncode != 0:
        raise SystemExit(f"the dry run of the whole DAG failed:\n{dry.stderr[-2000:]}")
    jobs = dry_run_jobs(dry.stdout + dry.stderr)
    read_durations(jobs, root)
    timed = [job for job in jobs if job.end is not None]
    by_rule = {}
    for job in timed:
        by_rule.setdefault(job.rule, []).append(job.seconds)
    path_seconds, path = critical_path(jobs, dependencies(jobs))
    total = sum(job.seconds for job in timed)
    start, end = (min(job.end - job.seconds for job in timed), max(job.end for job in timed)) if timed else (None, None)
    return {
        "jobs": len(jobs),
        "timed_jobs": len(timed),
        "start": start,
        "wall_s": end - start if timed else None,
        "job_s": total,
        "core_s": sum(job.seconds * job.threads for job in timed),
        "rules": sorted(((rule, len(s), sum(s)) for rule, s in by_rule.items()), key=lambda r: -r[2]),
        "top_jobs": [(job.name, job.seconds) for job in sorted(timed, key=lambda j: -j.seconds)[:TOP_JOBS]],
        "critical_path_s": path_seconds,
        "critical_path": [(job.rule, job.seconds) for job in path if job.end is not None],
        "bound_s": max(path_seconds, total / CORES),
    }


def minutes(seconds):
    return f"{seconds / 60:.1f} min"


def headline_rows(p, target_minutes):
    """The summary table's rows: the wall time and the bound of any 2-core schedule, with the target."""
    if p["wall_s"] is None:
        return [headline.row("full default reproduction wall time", "no recorded run: no benchmark file of the DAG's jobs",
                             f"<= {target_minutes} min")]
    target = target_minutes * 60
    return [
        headline.row(f"full default reproduction wall time ({p['timed_jobs']} of {p['jobs']} jobs with a benchmark file; "
                     "first job's start to last job's end)", minutes(p["wall_s"]), f"<= {target_minutes} min", p["wall_s"] <= target),
        headline.row(f"its job-seconds / {CORES} cores", minutes(p["job_s"] / CORES)),
        headline.row("its critical path (the longest chain of dependent jobs)", minutes(p["critical_path_s"])),
        headline.row(f"lower bound of its wall time on {CORES} cores: max(critical path, job-seconds / {CORES})",
                     minutes(p["bound_s"]), f"<= {target_minutes} min", p["bound_s"] <= target),
    ]


def tables(p):
    """The markdown of the profile: job-seconds by rule, the top jobs and the critical path."""
    if p["wall_s"] is None:
        return "No recorded run: none of the DAG's jobs has a benchmark file."
    started = datetime.datetime.fromtimestamp(p["start"]).strftime("%Y-%m-%d %H:%M")
    lines = [f"The run started {started}: {p['jobs']} jobs, {p['timed_jobs']} with a benchmark file; {p['job_s']:,.0f} job-seconds "
             f"({p['core_s']:,.0f} core-seconds counting each job's threads); wall time {minutes(p['wall_s'])}; "
             f"critical path {p['critical_path_s']:,.0f} s; so no schedule on {CORES} cores ends under "
             f"max({p['critical_path_s']:,.0f}, {p['job_s']:,.0f} / {CORES}) s = {minutes(p['bound_s'])}.",
             "", "| rule | jobs | job-seconds | per job (s) |", "|---|---|---|---|"]
    listed = [r for r in p["rules"] if r[2] >= MINOR_RULE_SHARE * p["job_s"]]
    lines += [f"| {rule} | {n} | {s:,.0f} | {s / n:.1f} |" for rule, n, s in listed]
    if minor := p["rules"][len(listed):]:
        lines.append(f"| other rules: {', '.join(r[0] for r in minor)} | {sum(r[1] for r in minor)} | "
                     f"{sum(r[2] for r in minor):,.0f} | |")
    lines += ["", f"The {TOP_JOBS} longest jobs:", "", "| job | seconds |", "|---|---|"]
    lines += [f"| {name} | {s:.1f} |" for name, s in p["top_jobs"]]
    lines += ["", f"The critical path, {p['critical_path_s']:,.0f} s: "
              + " -> ".join(f"{rule} {s:.1f} s" for rule, s in p["critical_path"]) + "."]
    return "\n".join(lines)


def replace_block(text, block):
    """`text` with its profile block replaced by `block` (appended where there is none yet)."""
    generated = f"{START}\n\n{block}\n\n{END}"
    if START in text:
        return text[: text.index(START)] + generated + text[text.index(END) + len(END):]
    return f"{text.rstrip()}\n\n{generated}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=REPO, type=Path, help="the workflow folder whose last run is profiled")
    parser.add_argument("--target-minutes", type=int, default=15, help="the wall time target of the summary rows")
    headline.add_argument(parser)
    args = parser.parse_args()
    p = profile(args.root)
    rows = headline_rows(p, args.target_minutes)
    headline.print_table(rows)
    print()
    print(tables(p))
    headline.write(args.json, rows)


if __name__ == "__main__":
    main()
