# The base model's cloze recall of the facts: only for a model pretrained here on the knowledge world.
RECALL_TABLES = (
    []
    if PRETRAINED or "knowledge" not in TASKS
    else ["<results>/tables/knowledge_recall.csv", "<results>/tables/knowledge_recall.md"]
)
# Cloze recall depends on the evaluation settings only (the cloze file is the world's).
RECALL_KEY = settings_key(config["evaluation"], config["model_loading"])
# The claims' precondition that the knowledge is in the base model, where it has been measured.
RECALL_METRICS = [] if not RECALL_TABLES else [f"<world>/base/recall-{RECALL_KEY}/metrics.json"]
CORPORA = [f"<world>/data/{task}/corpus.txt" for task in SYNTHETIC]
# The base models pretrained here (infoflow.base_models.pretrained_models): folder in <world>/ -> (the
# tasks whose corpora it learns, its settings).
PRETRAINED_MODELS = pretrained_models(config)


wildcard_constraints:
    base="model(-[A-Za-z0-9_]+)*",


EXAMPLE_FILES = [
    f"<world>/data/{task}/{split}.jsonl"
    for task in ("knowledge", "modular")
    for split in ("train", "test_id", "test_ood")
] + ["<world>/data/knowledge/cloze.jsonl"]


rule tokenizer:
    """A word-level tokenizer over every word of the world, saved in Hugging Face format."""
    input:
        corpus=CORPORA,
        examples=EXAMPLE_FILES,
        code=code("world.tokenizer"),
    output:
        tokenizer="<world>/tokenizer/tokenizer.json",
        tokenizer_config="<world>/tokenizer/tokenizer_config.json",
    log:
        "<world>/logs/tokenizer.log",
    benchmark:
        "<world>/benchmarks/tokenizer.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m infoflow.world.tokenizer --corpus {input.corpus} --examples {input.examples}"
        " --out $(dirname {output.tokenizer}) > {log} 2>&1"


rule pretrain_base_model:
    """Pretrain a base model on biographies and progressions (or one task's corpus, for a task with
    its own), so the facts live in its weights."""
    input:
        tokenizer="<world>/tokenizer/tokenizer.json",
        corpus=lambda w: [f"<world>/data/{t}/corpus.txt" for t in PRETRAINED_MODELS[w.base][0]],
        code=code("training.pretrain"),
    output:
        weights="<world>/{base}/model.safetensors",
        config="<world>/{base}/config.json",
        history="<world>/history/{base}.json",
    log:
        "<world>/logs/pretrain_{base}.log",
    benchmark:
        "<world>/benchmarks/pretrain_{base}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    params:
        model=lambda w: PRETRAINED_MODELS[w.base][1],
        resume_every=config["resume_every_steps"],
        resume_dir=lambda w: f"{WORLD}/resume/{w.base}",
    shell:
        GPU_JOB
        + "python -m infoflow.training.pretrain --tokenizer $(dirname {input.tokenizer}) --corpus {input.corpus}"
        " --architecture {params.model[architecture]} --hidden-size {params.model[hidden_size]}"
        " --intermediate-size {params.model[intermediate_size]} --layers {params.model[layers]}"
        " --heads {params.model[heads]} --block-size {params.model[block_size]}"
        " --batch-size {params.model[batch_size]} --learning-rate {params.model[learning_rate]}"
        " --warmup-steps {params.model[warmup_steps]} --weight-decay {params.model[weight_decay]}"
        " --epochs {params.model[epochs]} --seed {params.model[seed]} --threads {threads}"
        " --resume-dir {params.resume_dir} --resume-every {params.resume_every}"
        " --out $(dirname {output.weights}) --history {output.history} > {log} 2>&1"


rule knowledge_recall:
    """Cloze completion of every fact by the base model: is the knowledge in the parameters?"""
    input:
        weights=f"<world>/{base_folder(config, 'knowledge')}/model.safetensors",
        examples="<world>/data/knowledge/cloze.jsonl",
        code=code("posttrain.evaluate"),
    output:
        predictions="<world>/base/recall-{evaluation}/predictions.csv",
        metrics="<world>/base/recall-{evaluation}/metrics.json",
    log:
        "<world>/base/recall-{evaluation}/knowledge_recall.log",
    benchmark:
        "<world>/base/recall-{evaluation}/knowledge_recall.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=20,
        gpu=1,
    params:
        model_options=MODEL_OPTIONS,
        evaluation=config["evaluation"],
    shell:
        GPU_JOB
        + "python -m infoflow.posttrain.evaluate --model $(dirname {input.weights}) --examples {input.examples}"
        " --max-new-tokens {params.evaluation[max_new_tokens]} --batch-size {params.evaluation[batch_size]}"
        " --splits cloze --tags model=base --threads {threads} {params.model_options}"
        " --predictions {output.predictions} --metrics {output.metrics} > {log} 2>&1"
