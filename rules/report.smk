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
        evals=[f"{RESULTS}/{phase.name}/eval.json" for phase in PHASES],
        sidecars=[f"{records_dir(seq)}/records.json" for seq in SEQ_LENGTHS],
        stats=[
            f"{records_dir(seq)}/{part}.json"
            for seq in SEQ_LENGTHS
            for part in [*SHARDS, "heldout"]
        ],
        # Read by build_report from the run directory (report.corpus_statistics_path).
        corpus=rules.shard_corpus.output.statistics,
    output:
        training_curves=report(
            f"{RESULTS}/report/training_curves.svg",
            caption="../workflow/report/training_curves.rst",
            category="Training",
            labels={"figure": "loss and accuracy"},
        ),
        learning_rate=report(
            f"{RESULTS}/report/learning_rate.svg",
            caption="../workflow/report/learning_rate.rst",
            category="Training",
            labels={"figure": "learning rate"},
        ),
        throughput=report(
            f"{RESULTS}/report/throughput.svg",
            caption="../workflow/report/throughput.rst",
            category="Performance",
            labels={"figure": "throughput per log interval"},
        ),
        segments=report(
            f"{RESULTS}/report/segments.html",
            caption="../workflow/report/segments.rst",
            category="Performance",
            labels={"figure": "segments: wall time and throughput"},
        ),
        jobs=report(
            f"{RESULTS}/report/jobs.html",
            caption="../workflow/report/jobs.rst",
            category="Performance",
            labels={"figure": "all jobs: benchmarks"},
        ),
        evaluation=report(
            f"{RESULTS}/report/evaluation.html",
            caption="../workflow/report/evaluation.rst",
            category="Evaluation",
            labels={"figure": "held-out evaluation"},
        ),
        records_plot=report(
            f"{RESULTS}/report/records.svg",
            caption="../workflow/report/records_plot.rst",
            category="Records",
            labels={"figure": "histograms"},
        ),
        records=report(
            f"{RESULTS}/report/records.html",
            caption="../workflow/report/records.rst",
            category="Records",
            labels={"figure": "per records file"},
        ),
        corpus_plot=report(
            f"{RESULTS}/report/corpus.svg",
            caption="../workflow/report/corpus.rst",
            category="Corpus",
            labels={"figure": "words per sentence"},
        ),
        corpus=report(
            f"{RESULTS}/report/corpus.html",
            caption="../workflow/report/corpus.rst",
            category="Corpus",
            labels={"figure": "per input file"},
        ),
    log:
        f"{LOGS}/report/plot_training.log",
    benchmark:
        f"{BENCHMARKS}/report/plot_training.tsv"
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
        "MPLBACKEND=Agg {PYTHON} {SCRIPTS}/plot_training.py --run-dir {params.run_dir:q}"
        " --segments {params.segments:q} --seq-lengths {params.seqs}"
        " --output-dir {params.output_dir:q} > {log:q} 2>&1"
