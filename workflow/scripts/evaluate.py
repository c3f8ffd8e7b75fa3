"""Evaluate a checkpoint on held-out records: masked-LM and NSP accuracy and loss, as JSON."""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from bert_pretraining.cli import setup_logging
from bert_pretraining.errors import run_main
from bert_pretraining.files import write_json
from bert_pretraining.job_flags import add_job_flags


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="checkpoint prefix or its .index file")
    parser.add_argument("--bert_config_file", required=True)
    parser.add_argument("--input_file", required=True, help="held-out records: comma-separated paths or globs")
    parser.add_argument("--records_sidecar", help="records.json to check the flags against")
    parser.add_argument(
        "--training_file", default="",
        help="training records (comma-separated paths or globs): the baseline, the accuracy of always predicting "
        "their most frequent masked token, is reported beside the model's",
    )
    parser.add_argument("--vocab_file", help="vocab.txt, to name the baseline's token")
    add_job_flags(parser, "evaluate")
    parser.add_argument("--output", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    setup_logging()

    from bert_pretraining.checkpoints import recovered_prefix
    from bert_pretraining.evaluation import evaluate_checkpoint
    from bert_pretraining.inputs import expand_input_files
    from bert_pretraining.modeling import BertConfig
    from bert_pretraining.records_sidecar import check_records_sidecar
    from bert_pretraining.tokenization import read_vocabulary

    if args.records_sidecar:
        check_records_sidecar(
            args.records_sidecar,
            max_seq_length=args.max_seq_length,
            max_predictions_per_seq=args.max_predictions_per_seq,
        )
    result = evaluate_checkpoint(
        recovered_prefix(args.checkpoint),  # a damaged final checkpoint is repaired from its copy
        BertConfig.from_json_file(args.bert_config_file),
        expand_input_files(args.input_file),
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        max_predictions_per_seq=args.max_predictions_per_seq,
        use_next_sentence_prediction=args.use_next_sentence_prediction,
        training_files=expand_input_files(args.training_file, "--training_file") if args.training_file else (),
        tokens=read_vocabulary(args.vocab_file) if args.vocab_file else None,
    )
    write_json(args.output, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
