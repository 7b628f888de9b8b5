"""Train the word-level tokenizer of the embedded world and save it as a Hugging Face fast tokenizer.

Word-level keeps every attribute value and every `S{n}` signal a single token, so answers are one
token. Later stages load it with `AutoTokenizer.from_pretrained`, exactly like a hub tokenizer.
"""

import argparse

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from infoflow import cli
from infoflow.io import read_examples, staged_folder

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def train_tokenizer(texts):
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=[PAD, EOS, UNK]))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS, unk_token=UNK)


def texts_of(corpus_paths, example_paths):
    for path in corpus_paths:
        with open(path, encoding="utf-8") as f:
            yield from f
    for path in example_paths:
        for row in read_examples(path):
            yield row["prompt"]
            yield row["answer"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", nargs="+", required=True, help="text files, one document a line")
    parser.add_argument("--examples", nargs="+", required=True, help="example files whose words must be known")
    parser.add_argument("--out", required=True, help="tokenizer folder")
    args = parser.parse_args()
    cli.setup()
    tokenizer = train_tokenizer(texts_of(args.corpus, args.examples))
    with staged_folder(args.out) as staging:
        tokenizer.save_pretrained(staging)


if __name__ == "__main__":
    cli.run(main)
