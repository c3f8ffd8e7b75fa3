# The run report: `snakemake --report report.html` after the evaluations.
# One job reads metrics.jsonl, eval.json, the corpus statistics, the records'
# stats files and the benchmark TSVs and writes plots (SVG) and tables (HTML)
# to report/; the report() flags put them, with their captions, into
# Snakemake's HTML report (which adds the rule graph and job runtimes itself).

_REPORT_SEGMENTS = json.dumps(
    [{"phase": s.phase, "start": s.start_step, "end": s.end_step} for s in SEGMENTS]
)


rule plot_training:
    input:
        # The evaluations come after every segment's final checkpoint, so all
        # metrics.jsonl lines and segment benchmarks exist (neither is a
        # declared output of the training rules: they are read, not required).
        evals=[LAYOUT.eval_json(phase.name) for phase in PHASES],
        sidecars=[LAYOUT.records_sidecar(seq) for seq in SEQ_LENGTHS],
        stats=[
            LAYOUT.records_stats(seq, part)
            for seq in SEQ_LENGTHS
            for part in [*SHARDS, HELDOUT_PART]
        ],
        # Read by build_report from the run directory (RunLayout.corpus_statistics).
        corpus=rules.shard_corpus.output.statistics,
    output:
        training_curves=report(
            LAYOUT.report_file("training_curves"),
            caption="../workflow/report/training_curves.rst",
            category="Training",
            labels={"figure": "loss and accuracy"},
        ),
        learning_rate=report(
            LAYOUT.report_file("learning_rate"),
            caption="../workflow/report/learning_rate.rst",
            category="Training",
            labels={"figure": "learning rate"},
        ),
        throughput=report(
            LAYOUT.report_file("throughput"),
            caption="../workflow/report/throughput.rst",
            category="Performance",
            labels={"figure": "throughput per log interval"},
        ),
        segments=report(
            LAYOUT.report_file("segments"),
            caption="../workflow/report/segments.rst",
            category="Performance",
            labels={"figure": "segments: wall time and throughput"},
        ),
        jobs=report(
            LAYOUT.report_file("jobs"),
            caption="../workflow/report/jobs.rst",
            category="Performance",
            labels={"figure": "all jobs: benchmarks"},
        ),
        evaluation=report(
            LAYOUT.report_file("evaluation"),
            caption="../workflow/report/evaluation.rst",
            category="Evaluation",
            labels={"figure": "held-out evaluation"},
        ),
        records_plot=report(
            LAYOUT.report_file("records_plot"),
            caption="../workflow/report/records_plot.rst",
            category="Records",
            labels={"figure": "histograms"},
        ),
        records=report(
            LAYOUT.report_file("records"),
            caption="../workflow/report/records.rst",
            category="Records",
            labels={"figure": "per records file"},
        ),
        corpus_plot=report(
            LAYOUT.report_file("corpus_plot"),
            caption="../workflow/report/corpus.rst",
            category="Corpus",
            labels={"figure": "words per sentence"},
        ),
        corpus=report(
            LAYOUT.report_file("corpus"),
            caption="../workflow/report/corpus.rst",
            category="Corpus",
            labels={"figure": "per input file"},
        ),
    log:
        LAYOUT.log("plot_training"),
    benchmark:
        LAYOUT.benchmark("plot_training")
    # Seconds of reading small files and plotting: run where Snakemake runs
    # (the login node), not queued as a SLURM job.
    localrule: True
    params:
        # report/ and the run directory above it, from the output (not hard-coded).
        output_dir=lambda wildcards, output: os.path.dirname(output.segments),
        run_dir=lambda wildcards, output: os.path.dirname(
            os.path.dirname(output.segments)
        ),
        segments=_REPORT_SEGMENTS,
        seqs=",".join(str(seq) for seq in SEQ_LENGTHS),
    shell:
        "MPLBACKEND=Agg {PYTHON} {SCRIPTS}/plot_training.py --run_dir={params.run_dir:q}"
        " --segments={params.segments:q} --seq_lengths={params.seqs}"
        " --output_dir={params.output_dir:q} > {log:q} 2>&1"
