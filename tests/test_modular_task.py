import random

from infoflow.world import modular_task as mt


def signals_and_noise(prompt):
    tokens = prompt.split()
    return [int(t[1:]) for t in tokens[0::2]], tokens[1::2]


def infer_step(signals, modulus):
    return (signals[1] - signals[0]) % modulus


def test_example_follows_the_progression():
    rng = random.Random(0)
    for _ in range(200):
        modulus = rng.randrange(5, 26)
        prompt, answer = mt.noisy_example(rng, modulus, 10, noise_values=50)
        signals, noise = signals_and_noise(prompt)
        assert len(signals) == 5 and len(noise) == 5
        assert all(n.startswith("N") and 0 <= int(n[1:]) < 50 for n in noise)
        step = infer_step(signals, modulus)
        assert all((a + step) % modulus == b for a, b in zip(signals, signals[1:]))
        assert answer == f"S{(signals[-1] + step) % modulus}"


def test_splits_use_their_moduli_and_never_share_prompts():
    data = mt.make_task(13, [5, 9, 21], 10, 50, n_train=300, n_test=100, n_corpus=20, seed=0)
    assert {r["modulus"] for r in data["train"]} == {13} == {r["modulus"] for r in data["test_id"]}
    assert {r["modulus"] for r in data["test_ood"]} == {5, 9, 21}
    train = {r["prompt"] for r in data["train"]}
    assert not train & {r["prompt"] for r in data["test_id"]}
    assert not train & {r["prompt"] for r in data["test_ood"]}
    assert len({r["id"] for r in data["train"]}) == 300


def test_task_is_deterministic_per_seed():
    make = lambda seed: mt.make_task(13, [7], 10, 50, n_train=20, n_test=5, n_corpus=5, seed=seed)
    assert make(1) == make(1) and make(1) != make(2)


def test_corpus_holds_noise_free_progressions():
    data = mt.make_task(13, [7, 19], 10, 50, n_train=5, n_test=5, n_corpus=50, seed=0)
    for line in data["corpus"]:
        values = [int(t[1:]) for t in line.split()]
        assert len(values) == 10 and all(t.startswith("S") for t in line.split())
        assert any(all((a + d) % k == b for a, b in zip(values, values[1:])) for k in (7, 13, 19) for d in range(1, k))
