rule knowledge_facts:
    """Draw the synthetic people and their attributes."""
    input:
        code=code("world.knowledge_world"),
    output:
        facts="<world>/data/knowledge/facts.csv",
    log:
        "<world>/logs/knowledge_facts.log",
    benchmark:
        "<world>/benchmarks/knowledge_facts.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        world=config.get("knowledge_world"),
    shell:
        "python -m infoflow.world.knowledge_world facts --entities {params.world[entities]}"
        " --cities {params.world[cities]} --years {params.world[years]}"
        " --companies {params.world[companies]} --fields {params.world[fields]}"
        " --seed {params.world[seed]} --out {output.facts} > {log} 2>&1"


rule knowledge_data:
    """Biographies for pretraining; QA splits for post-training and testing."""
    input:
        facts="<world>/data/knowledge/facts.csv",
        code=code("world.knowledge_world"),
    output:
        corpus="<world>/data/knowledge/corpus.txt",
        train="<world>/data/knowledge/train.jsonl",
        test_id="<world>/data/knowledge/test_id.jsonl",
        test_ood="<world>/data/knowledge/test_ood.jsonl",
        cloze="<world>/data/knowledge/cloze.jsonl",
    log:
        "<world>/logs/knowledge_data.log",
    benchmark:
        "<world>/benchmarks/knowledge_data.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        world=config.get("knowledge_world"),
    shell:
        "python -m infoflow.world.knowledge_world render --facts {input.facts}"
        " --biographies-per-entity {params.world[biographies_per_entity]}"
        " --qa-documents-per-entity {params.world[qa_documents_per_entity]}"
        " --qa-phrasings {params.world[qa_phrasings]}"
        " --sft-fraction {params.world[sft_fraction]}"
        " --seed {params.world[seed]} --corpus {output.corpus} --train {output.train}"
        " --test-id {output.test_id} --test-ood {output.test_ood} --cloze {output.cloze} > {log} 2>&1"


rule modular_data:
    """The modular-progression task: noise-free progressions for pretraining, noisy QA splits."""
    input:
        code=code("world.modular_task"),
    output:
        corpus="<world>/data/modular/corpus.txt",
        train="<world>/data/modular/train.jsonl",
        test_id="<world>/data/modular/test_id.jsonl",
        test_ood="<world>/data/modular/test_ood.jsonl",
    log:
        "<world>/logs/modular_data.log",
    benchmark:
        "<world>/benchmarks/modular_data.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        task=config.get("modular_task"),
        ood_moduli=lambda w: " ".join(str(k) for k in config["modular_task"]["ood_moduli"]),
    shell:
        "python -m infoflow.world.modular_task --id-modulus {params.task[id_modulus]}"
        " --ood-moduli {params.ood_moduli} --elements {params.task[elements]}"
        " --noise-values {params.task[noise_values]} --train-examples {params.task[train_examples]}"
        " --test-examples {params.task[test_examples]} --corpus-sequences {params.task[corpus_sequences]}"
        " --seed {params.task[seed]} --corpus {output.corpus} --train {output.train}"
        " --test-id {output.test_id} --test-ood {output.test_ood} > {log} 2>&1"


rule dataset_split:
    """One split of a task built from public data sets: its entries' adapted rows, concatenated.
    The summary counts the rows read, kept and skipped (entries with on_bad_rows: skip)."""
    input:
        code=code("world.public_data"),
    output:
        rows="resources/datasets/{task}/{split}-{key}.parquet",
        summary="resources/datasets/{task}/{split}-{key}.summary.json",
    log:
        "resources/datasets/logs/{task}/{split}-{key}.log",
    benchmark:
        "resources/datasets/benchmarks/{task}/{split}-{key}.tsv"
    wildcard_constraints:
        task="|".join(DATASET_TASKS) or "(?!)",
        split="train|test_id|test_ood",
        key="[0-9a-f]{10}",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # Each entry carries its own on_bad_rows.
        entries=lambda w: json.dumps(config["datasets"][w.task][w.split]),
    shell:
        "python -m infoflow.world.public_data --entries {params.entries:q} --split-name {wildcards.split}"
        " --out {output.rows} --summary {output.summary} > {log} 2>&1"
