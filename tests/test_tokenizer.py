from transformers import AutoTokenizer


def test_round_trip_and_single_token_answers(tiny_world):
    tokenizer = tiny_world["tokenizer"]
    for line in tiny_world["knowledge"]["corpus"][:20] + tiny_world["modular"]["corpus"]:
        ids = tokenizer(line).input_ids
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == line
    for split in ("k_test_ood", "m_test_ood", "k_cloze"):
        rows = tiny_world["knowledge" if split.startswith("k") else "modular"][split[2:]]
        for row in rows:
            assert len(tokenizer(" " + row["answer"], add_special_tokens=False).input_ids) == 1


def test_saved_with_a_model_it_loads_through_autotokenizer(tiny_world, tiny_model_dir):
    loaded = AutoTokenizer.from_pretrained(tiny_model_dir)
    line = tiny_world["knowledge"]["corpus"][0]
    assert loaded(line).input_ids == tiny_world["tokenizer"](line).input_ids
    assert (loaded.eos_token, loaded.pad_token) == ("<eos>", "<pad>")
