#!/usr/bin/env python3
"""Train a WordPiece vocabulary, or check and copy a given one.

    train_vocab.py --input FILE [FILE ...] --output vocab.txt --vocab_size N \
        [--do_lower_case] [--min_frequency K] [--sample_bytes B --sample_seed S]
    train_vocab.py --given_vocab PATH --output vocab.txt
    train_vocab.py --from_model DIR --output vocab.txt

The special tokens [PAD] [UNK] [CLS] [SEP] [MASK] get ids 0-4 of a trained
vocabulary; a given vocabulary must contain them (anywhere). --from_model writes the vocabulary
of a model to continue from (vocab.txt or tokenizer.json). The same files
and flags give the same vocab.txt, byte for byte.
"""

import argparse
import logging

from bert_pretraining.corpus import expand_corpus_files
from bert_pretraining.errors import ConfigError, run_main
from bert_pretraining.source_model import inspect_source
from bert_pretraining.job_flags import add_job_flags
from bert_pretraining.tokenization import (
    case_mismatch_warning,
    copy_vocabulary,
    train_vocabulary,
    write_vocabulary,
)

log = logging.getLogger("train_vocab")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", metavar="FILE", help="text files to train on (globs allowed)")
    parser.add_argument("--given_vocab", metavar="PATH", help="use this vocabulary instead of training one")
    parser.add_argument("--from_model", metavar="DIR", help="use the vocabulary of this BERT directory (init_from)")
    parser.add_argument("--output", required=True, help="the vocab.txt to write")
    add_job_flags(parser, "vocab")  # vocab_size, do_lower_case, min_frequency, sample_bytes, sample_seed
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.from_model:
        source = inspect_source(args.from_model, "--from_model")
        tokens = list(source.tokens)
        write_vocabulary(args.output, tokens)
        args.do_lower_case = source.do_lower_case
        log.info("wrote the vocabulary of %s (%d tokens, %s) to %s", source.vocabulary_file, len(tokens),
                 "uncased" if source.do_lower_case else "cased", args.output)
    elif args.given_vocab:
        if args.input:
            log.info("--given_vocab is set: the --input files are not used")
        tokens = copy_vocabulary(args.given_vocab, args.output)
        log.info("checked %s (%d tokens) and copied it to %s", args.given_vocab, len(tokens), args.output)
    else:
        if not args.input:
            raise ConfigError("neither --input nor --given_vocab given; expected text files to train on or a vocabulary")
        files = expand_corpus_files(args.input, "--input")
        tokens = train_vocabulary(
            files, args.output, args.vocab_size, args.do_lower_case, args.min_frequency,
            sample_bytes=args.sample_bytes, sample_seed=args.sample_seed,
        )
        log.info("trained %d tokens on %d files; wrote %s", len(tokens), len(files), args.output)
    warning = case_mismatch_warning(tokens, args.do_lower_case)
    if warning:
        log.warning("%s: %s", args.output, warning)
    return 0


if __name__ == "__main__":
    run_main(main)
