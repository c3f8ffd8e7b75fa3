#!/usr/bin/env python3
"""Export a checkpoint as a usable model: Google's TF release layout, a Transformers directory, a model card.

    export_model.py --checkpoint results/RUN/phase512/model.ckpt-1000000 \
        --bert_config_file results/RUN/bert_config.json --vocab_file results/RUN/vocab.txt \
        [--do_lower_case[=true|false]] [--use_next_sentence_prediction[=true|false]] \
        [--eval_json results/RUN/phase128/eval.json results/RUN/phase512/eval.json] \
        [--records_sidecar results/RUN/records/seq128/records.json ...] \
        [--phases_json '[{"name": "phase128", ...}]'] --output results/RUN/export

Writes OUTPUT/tf/ (bert_model.ckpt with the model variables only,
bert_config.json, vocab.txt), OUTPUT/hf/ (config.json, model.safetensors,
tokenizer files) and OUTPUT/README.md. OUTPUT must not exist or be empty; it
appears only when the export is complete. Without
--use_next_sentence_prediction the checkpoint decides (an NSP head or not);
without --do_lower_case the records sidecars do (one of the two is needed).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from bert_pretraining.cli import setup_logging
from bert_pretraining.errors import WorkflowError, run_main
from bert_pretraining.job_flags import add_job_flags


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint prefix or one of its files (.index)")
    parser.add_argument("--bert_config_file", required=True, help="the model's bert_config.json")
    parser.add_argument("--vocab_file", required=True, help="the vocab.txt the records were made with")
    # --use_next_sentence_prediction (default: if the checkpoint has the head) and --do_lower_case (default: as
    # the --records_sidecar files say), as the schema declares them (x-jobs: export).
    add_job_flags(parser, "export")
    parser.add_argument("--eval_json", nargs="+", action="extend", default=[], help="each phase's eval.json")
    parser.add_argument(
        "--records_sidecar", nargs="+", action="extend", default=[], help="records.json files (corpus size)"
    )
    parser.add_argument("--phases_json", help="JSON list of the run's phases, for the model card")
    parser.add_argument("--model_name", help="title of the model card; default: the run's directory name")
    parser.add_argument("--initialised_from", default="", help="the model the run continued from, for the model card")
    parser.add_argument("--output", required=True, help="export directory to create")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging()

    from bert_pretraining.export import export_model

    phases = []
    if args.phases_json:
        try:
            phases = json.loads(args.phases_json)
        except ValueError as error:
            raise WorkflowError(f"--phases_json is not valid JSON: {error}") from None
        if not isinstance(phases, list) or not all(isinstance(phase, dict) for phase in phases):
            raise WorkflowError("--phases_json must be a JSON list of objects (one per phase)")
    summary = export_model(
        args.checkpoint,
        args.bert_config_file,
        args.vocab_file,
        args.output,
        do_lower_case=args.do_lower_case,
        use_next_sentence_prediction=args.use_next_sentence_prediction,
        eval_files=args.eval_json,
        records_sidecars=args.records_sidecar,
        phases=phases,
        model_name=args.model_name,
        initialised_from=args.initialised_from or None,
    )
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
