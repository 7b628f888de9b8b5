rule evaluate:
    """Greedy decoding and exact match of one post-trained model on one test split."""
    input:
        weights="results/runs/{task}/{method}/seed{seed}/model/model.safetensors",
        examples="results/data/{task}/{split}.jsonl",
        code=code("evaluate", "models"),
    output:
        predictions="results/runs/{task}/{method}/seed{seed}/eval/{split}.csv",
        metrics="results/runs/{task}/{method}/seed{seed}/eval/{split}.json",
    params:
        evaluation=config["evaluation"],
    log:
        "results/logs/evaluate/{task}/{method}/seed{seed}/{split}.log",
    benchmark:
        "results/benchmarks/evaluate/{task}/{method}/seed{seed}/{split}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=1,
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m infoflow.evaluate --model $(dirname {input.weights}) --examples {input.examples}"
        " --max-new-tokens {params.evaluation[max_new_tokens]} --batch-size {params.evaluation[batch_size]}"
        " --tags task={wildcards.task} method={wildcards.method} seed={wildcards.seed} split={wildcards.split}"
        " --threads {threads} --predictions {output.predictions} --metrics {output.metrics} > {log} 2>&1"
