rule accuracy_table:
    """ID and OOD accuracy per task and method: mean and 95% CI over seeds."""
    input:
        metrics=run_files("results/runs/{task}/{method}/seed{seed}/eval/{split}.json", split=TEST_SPLITS),
        code=code("tables", "stats"),
    output:
        csv="results/tables/accuracy.csv",
        markdown="results/tables/accuracy.md",
    log:
        "results/logs/accuracy_table.log",
    benchmark:
        "results/benchmarks/accuracy_table.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m infoflow.tables accuracy --metrics {input.metrics}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"


rule knowledge_recall_table:
    """The base model's cloze recall of the facts, per attribute."""
    input:
        metrics="results/base/recall/metrics.json",
        code=code("tables", "stats"),
    output:
        csv="results/tables/knowledge_recall.csv",
        markdown="results/tables/knowledge_recall.md",
    log:
        "results/logs/knowledge_recall_table.log",
    benchmark:
        "results/benchmarks/knowledge_recall_table.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m infoflow.tables recall --metrics {input.metrics}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"


rule accuracy_figure:
    """ID/OOD accuracy per task and method, with 95% CIs and per-seed points."""
    input:
        table="results/tables/accuracy.csv",
        code=code("figures"),
    output:
        figure=report(
            "results/figures/accuracy.png",
            caption="../report/accuracy.rst",
            category="Post-training",
        ),
    params:
        dpi=config["figures"]["dpi"],
    log:
        "results/logs/accuracy_figure.log",
    benchmark:
        "results/benchmarks/accuracy_figure.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m infoflow.figures accuracy --table {input.table} --dpi {params.dpi}"
        " --out {output.figure} > {log} 2>&1"


rule steering_tables:
    """Each steered method against SFT (paired bootstrap), and the ablation table."""
    input:
        metrics=run_files("results/runs/{task}/{method}/seed{seed}/eval/{split}.json", split=TEST_SPLITS),
        predictions=run_files("results/runs/{task}/{method}/seed{seed}/eval/{split}.csv", split=TEST_SPLITS),
        code=code("comparison", "tables", "stats"),
    output:
        csv="results/tables/steering_vs_sft.csv",
        comparison="results/tables/steering_vs_sft.md",
        ablation="results/tables/ablation.md",
    params:
        methods=json.dumps(config["methods"], sort_keys=True),
        statistics=config["statistics"],
    log:
        "results/logs/steering_tables.log",
    benchmark:
        "results/benchmarks/steering_tables.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m infoflow.comparison --metrics {input.metrics} --methods {params.methods:q}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --csv {output.csv} --comparison {output.comparison} --ablation {output.ablation} > {log} 2>&1"
