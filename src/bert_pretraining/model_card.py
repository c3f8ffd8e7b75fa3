"""The model card (README.md) of an export: what was trained, on what, how well, and how to load it.

The prose lives in ``templates/model_card/`` (``string.Template`` files): the
card in ``card.md`` and the parts a run may lack (training, corpus and
evaluation tables, notes for an untrained pooler or the exact GELU) in one
file each. This module fills in the values and the table rows.
"""

from __future__ import annotations

import os
from importlib import resources
from string import Template

from .bert_config import (
    ACTIVATION_FUNCTIONS,
    GOOGLE_ACTIVATIONS,
    HF_ACTIVATIONS,
    BertConfig,
    hf_architecture,
    parameter_count,
)
from .metrics import CARD, accuracy_against_baseline, is_next_sentence, shown_in
from .tokenization import SPECIAL_TOKENS


def _template(name: str, **values) -> str:
    """``templates/model_card/<name>.md`` filled in, without its final newline."""
    text = resources.files(__package__).joinpath("templates", "model_card", f"{name}.md").read_text(encoding="utf-8")
    return Template(text).substitute(values).rstrip("\n")


def _section(name: str, **values) -> str:
    """An optional part of the card: a paragraph or section followed by a blank line."""
    return _template(name, **values) + "\n\n"


def _number(value, spec=".4f"):
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _yes_no(value):
    if value is None:
        return "–"
    return "yes" if value else "no"


def _activation_description(hidden_act: str) -> str:
    return (
        f"{ACTIVATION_FUNCTIONS[hidden_act]}: Transformers `{HF_ACTIVATIONS[hidden_act]}`, Google's bert_config.json "
        f"`{GOOGLE_ACTIVATIONS[hidden_act]}`"
    )


def _phase_rows(phases: list[dict], evaluations: list[tuple[str, dict]]) -> list[dict]:
    """One row per phase: its plan (when known) and its evaluation (when given).

    An eval.json belongs to the phase named by its directory
    (``results/<run>/<phase>/eval.json``); without a plan, the evaluations
    in the order given are the phases.
    """
    by_name = {os.path.basename(os.path.dirname(os.path.abspath(path))): result for path, result in evaluations}
    rows = []
    if phases:
        for phase in phases:
            rows.append({**phase, "eval": by_name.get(phase.get("name"))})
        named = {phase.get("name") for phase in phases}
        for path, result in evaluations:
            name = os.path.basename(os.path.dirname(os.path.abspath(path)))
            if name not in named:
                rows.append({"name": name, "last_step": result.get("step"), "eval": result})
    else:
        previous = 0
        for path, result in evaluations:
            step = result.get("step")
            rows.append(
                {
                    "name": os.path.basename(os.path.dirname(os.path.abspath(path))),
                    "first_step": previous,
                    "last_step": step,
                    "eval": result,
                }
            )
            previous = step if isinstance(step, int) else previous
    return rows


def _training_section(rows: list[dict]) -> str:
    if not rows:
        return ""
    lines = []
    for row in rows:
        first, last = row.get("first_step"), row.get("last_step")
        if isinstance(first, int) and isinstance(last, int):
            steps = f"{first:,} → {last:,} ({last - first:,} steps)"
        else:
            steps = f"to {_number(last)}"
        lines.append(
            f"| {row.get('name', '–')} | {_number(row.get('max_seq_length'))} | "
            f"{_number(row.get('max_predictions_per_seq'))} | {steps} | {_number(row.get('batch_size_per_gpu'))} |"
        )
    return _section("training", rows="\n".join(lines))


def _corpus_section(sidecars: list[tuple[str, dict]]) -> str:
    if not sidecars:
        return ""
    lines = []
    for _, sidecar in sidecars:
        heldout = sidecar.get("heldout") or {}
        lines.append(
            f"| sequence length {_number(sidecar.get('max_seq_length'))} | {_number(sidecar.get('num_instances'))} | "
            f"{_number(heldout.get('num_instances'))} | {_number(sidecar.get('num_documents'))} | "
            f"{_number(sidecar.get('num_tokens'))} | {_number(sidecar.get('dupe_factor'))} | "
            f"{_number(sidecar.get('masked_lm_prob'), '.2f')} | {_yes_no(sidecar.get('do_whole_word_mask'))} |"
        )
    return _section("corpus", rows="\n".join(lines))


def _evaluation_section(rows: list[dict], use_next_sentence_prediction: bool) -> str:
    evaluated = [row for row in rows if row.get("eval")]
    if not evaluated:
        return ""
    columns = [metric for metric in shown_in(CARD) if use_next_sentence_prediction or not is_next_sentence(metric)]
    lines = []
    for row in evaluated:
        result = row["eval"]
        line = f"| {row.get('name', '–')} | {_number(result.get('step'))} | {_number(result.get('instances'))} |"
        for metric in columns:
            # The masked-LM accuracy beside its baseline: did the model learn more than token frequencies?
            shown = (accuracy_against_baseline(result) if metric.name == "masked_lm_accuracy"
                     else _number(result.get(metric.name), metric.format))
            line += f" {shown} |"
        lines.append(line)
    return _section(
        "evaluation",
        columns="".join(f" {metric.label} |" for metric in columns),
        rule=" --- |" * len(columns),
        rows="\n".join(lines),
    )


def model_card(
    *,
    model_name: str,
    config: BertConfig,
    tokens: list[str],
    do_lower_case: bool,
    use_next_sentence_prediction: bool,
    checkpoint: str,
    global_step: int | None,
    phases: list[dict],
    evaluations: list[tuple[str, dict]],
    sidecars: list[tuple[str, dict]],
    hf_keys: list[str],
    initialised_from: str | None = None,
) -> str:
    """The card's Markdown. ``phases``, ``evaluations`` (eval.json path and content) and
    ``sidecars`` (records.json path and content) may be empty; their sections are left out."""
    casing = "uncased (lower-cased, accents stripped)" if do_lower_case else "cased"
    nsp = use_next_sentence_prediction
    rows = _phase_rows(phases, evaluations)
    card = _template(
        "card",
        model_name=model_name,
        objectives=" and next-sentence prediction" if nsp else " only (no next-sentence prediction)",
        casing=casing,
        checkpoint=checkpoint,
        global_step=f" (global step {global_step:,})" if global_step is not None else "",
        initialisation=(
            f"Initialised from `{initialised_from}`: its weights, vocabulary and architecture; the optimizer and the "
            "step count started fresh."
            if initialised_from
            else "Trained from randomly initialised weights."
        ),
        layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        activation=_activation_description(config.hidden_act),
        max_positions=config.max_position_embeddings,
        token_types=config.type_vocab_size,
        vocabulary_size=f"{len(tokens):,}",
        next_sentence_head="yes" if nsp else "no",
        # As in hf/: the parameters of the model as exported (an untrained pooler is not).
        parameters=f"{parameter_count(config, nsp, untrained_pooler=False):,}",
        training=_training_section(rows),
        corpus=_corpus_section(sidecars),
        evaluation=_evaluation_section(rows, nsp),
        architecture=hf_architecture(nsp),
        auto_class="AutoModelForPreTraining" if nsp else "AutoModelForMaskedLM",
        untrained_pooler="" if nsp else " " + _template("untrained_pooler"),
        do_lower_case="True" if do_lower_case else "False",
        exact_gelu=_section("exact_gelu") if config.hidden_act == "gelu" else "",
        special_tokens=", ".join(f"`{token}` {tokens.index(token)}" for token in SPECIAL_TOKENS),
        hf_tensors=len(hf_keys),
    )
    return card + "\n"
