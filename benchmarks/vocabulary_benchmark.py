"""The vocabulary stage against HF's WordPiece trainer used as is: reproducibility, quality, time.

Each implementation trains --runs times, each in a fresh process (a fresh
hash seed for HF's trainer), on the --train files; the table shows how many
distinct vocab.txt files came out, the tokens per word and the [UNK] rate on
the --heldout text, and the training time.

    .venv/bin/python benchmarks/vocabulary_benchmark.py \
        --train demo/corpus/python-docs-1.txt demo/corpus/python-docs-2.txt \
        --heldout demo/corpus/python-docs-3.txt --vocab-size 4000

"Quality" is tokens per word of held-out text (fewer is better: more words
are whole tokens), with words as BERT's pre-tokenizer splits them, over the
words without [UNK]; the [UNK] rate is given beside it.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "src"))


def train(implementation, files, output, vocab_size, do_lower_case):
    """One training in this process: ours (train_vocabulary) or HF's trainer with our normaliser alone."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece
    from tokenizers.trainers import WordPieceTrainer

    from bert_pretraining.tokenization import SPECIAL_TOKENS, _configure, train_vocabulary, write_vocabulary

    if implementation == "ours":
        train_vocabulary(files, output, vocab_size=vocab_size, do_lower_case=do_lower_case, progress_interval=3600)
        return
    tokenizer = _configure(Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##")), do_lower_case)
    trainer = WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
                               continuing_subword_prefix="##", show_progress=False)
    tokenizer.train(files, trainer)
    vocab = tokenizer.get_vocab()
    write_vocabulary(output, sorted(vocab, key=vocab.get))


def quality(vocab_path, heldout, do_lower_case):
    """(tokens per word, [UNK] per word) of the held-out text.

    Words with an [UNK] are left out of tokens per word: a word that is one
    [UNK] would count as well tokenized.
    """
    from bert_pretraining.tokenization import load_tokenizer

    tokenizer = load_tokenizer(vocab_path, do_lower_case)
    words = tokens = unknown = 0
    with open(heldout, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            encoded = tokenizer.encode(line, add_special_tokens=False)
            pieces = {}
            for word, token in zip(encoded.word_ids, encoded.tokens):
                pieces.setdefault(word, []).append(token)
            for word_pieces in pieces.values():
                if "[UNK]" in word_pieces:
                    unknown += 1
                else:
                    tokens += len(word_pieces)
            words += len(pieces)
    return tokens / (words - unknown), unknown / words


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--heldout", required=True)
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--do-lower-case", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("IMPLEMENTATION", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train(args.child[0], args.train, args.child[1], args.vocab_size, args.do_lower_case)
        return
    megabytes = sum(os.path.getsize(path) for path in args.train) / 2**20
    print(f"training text {megabytes:.1f} MiB, held-out {os.path.getsize(args.heldout) / 2**20:.1f} MiB, "
          f"vocabulary {args.vocab_size}, {'uncased' if args.do_lower_case else 'cased'}, {args.runs} fresh processes each")
    print(f"{'implementation':<16} {'distinct vocab.txt':>18} {'tokens/word':>12} {'[UNK]/word':>11} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        for implementation in ("hf-trainer", "ours"):
            digests, seconds, outputs = set(), [], []
            for run in range(args.runs):
                output = os.path.join(scratch, f"{implementation}-{run}.txt")
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, __file__, "--child", implementation, output, "--train", *args.train,
                     "--heldout", args.heldout, "--vocab-size", str(args.vocab_size),
                     *(["--do-lower-case"] if args.do_lower_case else [])],
                    check=True, capture_output=True,
                )
                seconds.append(time.perf_counter() - start)
                digests.add(hashlib.md5(open(output, "rb").read()).hexdigest())
                outputs.append(output)
            per_word = [quality(path, args.heldout, args.do_lower_case) for path in outputs]
            tokens = sorted(value for value, _ in per_word)
            unknown = max(value for _, value in per_word)
            spread = f"{tokens[0]:.4f}" if tokens[0] == tokens[-1] else f"{tokens[0]:.4f}-{tokens[-1]:.4f}"
            print(f"{implementation:<16} {len(digests):>18} {spread:>12} {unknown:>11.5f} {min(seconds):>8.1f}")


if __name__ == "__main__":
    main()
