# Multi-token decoding information (InfoRidge Sec. 5) of the base model of multitoken.task: one
# folder per setting in <world>/base/, as the base model's key thresholds (key_shift.smk).
MULTITOKEN_MI = f"<world>/base/multitoken-{stage_keys(MULTITOKEN['task'])['multitoken']}/mi.csv"


rule multitoken_information:
    """Greedy continuations of the base model and I(Z;Y) under the sequence kernel per step, layer and sampling seed."""
    input:
        base=base_model_files(MULTITOKEN["task"]),
        prompts=data_file(MULTITOKEN["task"], MULTITOKEN["prompts"]),
        code=code("inforidge.multitoken"),
    output:
        "<world>/base/multitoken-{multitoken}/mi.csv",
    log:
        "<world>/base/multitoken-{multitoken}/multitoken.log",
    benchmark:
        "<world>/base/multitoken-{multitoken}/multitoken.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        # The model, and twice the kernel over every prompt's tokens: (examples x steps)^2 float64
        # values, 288 MB at the default.
        mem_mb=2000 + 2 * (MULTITOKEN["examples"] * MULTITOKEN["steps"]) ** 2 * 8 // 10**6,
        runtime=30,
        gpu=1,
    params:
        model_options=BASE_MODEL_OPTIONS,
        base_model=base_model_arg,
        multitoken=MULTITOKEN,
        mi=MULTITOKEN_ESTIMATOR,
    shell:
        GPU_JOB
        + "python -m infoflow.inforidge.multitoken --model {params.base_model:q} --prompts {input.prompts}"
        " --examples {params.multitoken[examples]} --seed {params.multitoken[seed]} --steps {params.multitoken[steps]}"
        " --batch-size {params.multitoken[batch_size]} --last-layer {params.multitoken[last_layer]}"
        " --mi-examples {params.multitoken[mi_examples]} --sample-seeds {params.multitoken[sample_seeds]}"
        " --sets {params.multitoken[sets]} --kernel {params.mi[kernel]} --sigma {params.mi[sigma]} --alpha {params.mi[alpha]}"
        " --task {params.multitoken[task]} --threads {threads} {params.model_options} --out {output} > {log} 2>&1"


rule multitoken_report:
    """Multi-token information per step and layer (mean, 95% CI over sampling seeds): table, heatmap and curves."""
    input:
        information=MULTITOKEN_MI,
        code=code("report.multitoken_tables") + code("report.multitoken_figures"),
    output:
        csv=result(
            "<results>/tables/multitoken.csv",
            "InfoRidge",
            "Multi-token decoding",
            "multitoken",
            table="information per step and layer",
        ),
        markdown="<results>/tables/multitoken.md",
        heatmap=result(
            "<results>/figures/multitoken_heatmap.png",
            "InfoRidge",
            "Multi-token decoding",
            "multitoken",
            figure="layer x step heatmap",
        ),
        curves=result(
            "<results>/figures/multitoken_curves.png",
            "InfoRidge",
            "Multi-token decoding",
            "multitoken",
            figure="curves and layer profiles",
        ),
    log:
        "<results>/logs/multitoken_report.log",
    benchmark:
        "<results>/benchmarks/multitoken_report.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        statistics=config["statistics"],
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.multitoken_tables --information {input.information}"
        " --bootstrap-samples {params.statistics[bootstrap_samples]} --seed {params.statistics[seed]}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"
        " && python -m infoflow.report.multitoken_figures --table {output.csv} --dpi {params.dpi}"
        " --heatmap {output.heatmap} --curves {output.curves} >> {log} 2>&1"
