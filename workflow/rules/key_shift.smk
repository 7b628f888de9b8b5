KEY_SHIFT = config["key_shift"]
# Key-region shares of every run of the analysed task.
KEY_SHIFT_RUN_SHARES = run_files(
    "<results>/key_shift/{task}/{method}/seed{seed}.json",
    runs=[(t, m) for t, m in RUNS if t == KEY_SHIFT["task"]],
)


rule key_thresholds:
    """The base model's 25th / 75th key percentiles per layer on the fixed prompt sample."""
    input:
        base=BASE_MODEL_FILES,
        examples=data_file(KEY_SHIFT["task"], "test_id"),
        code=code("infosteer.key_shift"),
    output:
        thresholds="<results>/key_shift/base_thresholds.json",
        shares="<results>/key_shift/base.json",
    log:
        "<results>/logs/key_thresholds.log",
    benchmark:
        "<results>/benchmarks/key_thresholds.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=1,
    params:
        model_options=BASE_MODEL_OPTIONS,
        base_model=base_model_arg,
        sample=KEY_SHIFT,
    shell:
        GPU_JOB
        + "python -m infoflow.infosteer.key_shift thresholds --model {params.base_model:q} --examples {input.examples}"
        " --n {params.sample[examples]} --seed {params.sample[seed]} --batch-size {params.sample[batch_size]}"
        " --threads {threads} {params.model_options} --out {output.thresholds} --shares {output.shares} > {log} 2>&1"


rule key_shares:
    """Share of one post-trained model's key coefficients in the base model's low / medium / high regions."""
    input:
        weights="<results>/runs/{task}/{method}/seed{seed}/model/model.safetensors",
        thresholds="<results>/key_shift/base_thresholds.json",
        examples=data_file(KEY_SHIFT["task"], "test_id"),
        code=code("infosteer.key_shift"),
    output:
        shares="<results>/key_shift/{task}/{method}/seed{seed}.json",
    log:
        "<results>/logs/key_shares/{task}/{method}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/key_shares/{task}/{method}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        sample=KEY_SHIFT,
    shell:
        GPU_JOB
        + "python -m infoflow.infosteer.key_shift shares --model $(dirname {input.weights}) --examples {input.examples}"
        " --n {params.sample[examples]} --seed {params.sample[seed]} --batch-size {params.sample[batch_size]}"
        " --thresholds {input.thresholds} --tags method={wildcards.method} seed={wildcards.seed}"
        " --threads {threads} {params.model_options} --out {output.shares} > {log} 2>&1"


rule key_shift_report:
    """Key-region shares per method (mean over seeds), as a table and a stacked bar figure."""
    input:
        base="<results>/key_shift/base.json",
        runs=KEY_SHIFT_RUN_SHARES,
        code=code("report.key_shift_tables") + code("report.key_shift_figures"),
    output:
        csv=result(
            "<results>/tables/key_shift.csv",
            "InfoSteer",
            "Key-distribution shift",
            "key_shift",
            table="region shares",
        ),
        markdown="<results>/tables/key_shift.md",
        figure=result(
            "<results>/figures/key_shift.png",
            "InfoSteer",
            "Key-distribution shift",
            "key_shift",
            figure="region shares",
        ),
    log:
        "<results>/logs/key_shift_report.log",
    benchmark:
        "<results>/benchmarks/key_shift_report.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        dpi=config["figures"]["dpi"],
    shell:
        "python -m infoflow.report.key_shift_tables --shares {input.base} {input.runs}"
        " --csv {output.csv} --markdown {output.markdown} > {log} 2>&1"
        " && python -m infoflow.report.key_shift_figures --table {output.csv} --dpi {params.dpi}"
        " --figure {output.figure} >> {log} 2>&1"
