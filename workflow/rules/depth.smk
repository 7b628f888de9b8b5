# InfoRidge's depth threshold (capacity analysis): the information curves of the SFT runs from base
# models of several depths (inforidge.depths; the runs themselves are methods sft_depth<n>, trained,
# extracted and analysed by the rules of sft.smk and ridge.smk).
DEPTH_TARGETS = (
    [
        "<results>/tables/depth.csv",
        "<results>/tables/depth_curves.csv",
        "<results>/tables/depth.md",
        "<results>/figures/depth_ridge.png",
    ]
    if DEPTH_RUNS
    else []
)


rule depth_report:
    """Per base-model depth: the ridge layer and the drop from the inner peak to the last layer, with
    CIs, and I(Z;Y) against relative depth, a curve per depth."""
    input:
        mi=run_files(f"{RIDGE_ANALYSIS}/mi.csv", runs=DEPTH_RUNS),
        early_exit=run_files(f"{RIDGE_ANALYSIS}/early_exit.csv", runs=DEPTH_RUNS),
        code=code("report.depth_tables") + code("report.depth_figures"),
    output:
        summary=result(
            "<results>/tables/depth.csv",
            "InfoRidge",
            "Depth threshold",
            "depth",
            table="ridge per depth",
        ),
        curves=result(
            "<results>/tables/depth_curves.csv",
            "InfoRidge",
            "Depth threshold",
            "depth",
            table="information per layer and depth",
        ),
        markdown="<results>/tables/depth.md",
        figure=result(
            "<results>/figures/depth_ridge.png",
            "InfoRidge",
            "Depth threshold",
            "depth",
            figure="information against relative depth",
        ),
    log:
        "<results>/logs/depth_report.log",
    benchmark:
        "<results>/benchmarks/depth_report.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        task=DEPTHS["task"] if DEPTHS else None,
        methods=DEPTH_METHODS,
        statistics=config["statistics"],
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.depth_tables --mi {input.mi} --early-exit {input.early_exit}"
        " --task {params.task} --methods {params.methods}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --summary {output.summary} --curves {output.curves} --markdown {output.markdown} > {log} 2>&1"
        " && python -m infoflow.report.depth_figures --summary {output.summary} --curves {output.curves}"
        " --dpi {params.dpi} --figure {output.figure} >> {log} 2>&1"
