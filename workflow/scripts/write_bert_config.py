"""Write Google's bert_config.json: the model sizes from the config, vocab_size from the vocabulary."""

import argparse
import sys

from bert_pretraining.errors import run_main
from bert_pretraining.job_flags import add_job_flags, job_settings_from_args


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vocab", required=True, help="vocab.txt, one token per line")
    add_job_flags(parser, "bert_config")  # the model keys of config.yaml
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    from bert_pretraining.modeling import BertConfig

    with open(args.vocab, encoding="utf-8") as handle:
        vocab_size = sum(1 for _ in handle)
    config = BertConfig.from_dict({"vocab_size": vocab_size, **job_settings_from_args("bert_config", args)})
    config.to_json_file(args.output)
    print(f"wrote {args.output}: vocab_size {vocab_size}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
