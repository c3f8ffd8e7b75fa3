"""Data-parallel training with several processes on this machine.

Ranks are started as srun starts them (SLURM's environment, two "nodes"
``localhost`` and ``127.0.0.1`` so that both the per-node and cross-node
parts of the engines are exercised), or by the engine's own launcher
(horovodrun, TF_CONFIG). Each engine runs in the environment that has it:

* ``multiworker`` (TensorFlow's MultiWorkerMirroredStrategy): .venv (TF 2.21)
  and .venv-tf215 (TF 2.15);
* ``horovod``: .venv-tf215 only (Horovod 0.28.1 builds only against TF 2.15;
  tools/build_horovod.sh builds it).

What is checked, per engine:

* EQUIVALENCE: R ranks with batch b per rank give the weights of one process
  with batch R x b made of exactly the ranks' batches (a test-only dataset
  concatenates each rank's batch). Dropout is off. The synthetic records have
  exactly max_predictions_per_seq masked tokens in every example, so the mean
  of the ranks' mean losses IS the mean loss over the union batch; what is
  left is float32 summation order. Tolerance: |a - b| <= 1e-6 + 1e-4 |b|
  after 6 Adam steps at lr 1e-3 (measured: <= 1.2e-7; the weights move ~1e-2, so
  a wrong scheme, e.g. a rank's gradient alone, is far outside it).
* GRADIENT ACCUMULATION: k micro-batches of b per rank == one batch of R x k x b.
* FAULTS: SIGKILL of one rank (the chief, or another) makes every other rank
  exit non-zero within FAULT_BOUND_SECONDS (outside SLURM, so without srun's
  --kill-on-bad-exit: the engines' own failure detection).
* STOP + RESUME: SIGUSR1 to one non-chief rank stops all ranks at the same
  step with exit 75 after rank 0's checkpoint; rerunning finishes with
  bit-identical weights to an uninterrupted run.

The worker entry point (`python tests/test_distributed.py reference ...`)
runs the single-process reference inside the engine's environment.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from checkpoint_helpers import weights_at

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
TF215_PYTHON = os.path.join(REPO, ".venv-tf215", "bin", "python")
RUN_PRETRAINING = os.path.join(REPO, "workflow", "scripts", "run_pretraining.py")
NODES = ("localhost", "127.0.0.1")  # two "nodes" that resolve on any machine
# The engines notice a dead peer within 2-11 s; the survivors' exit after that
# (tf.data's threads joined, the final garbage collection) is CPU-bound and took
# over 60 s once beside a second test worker. 120 s still tells the engines'
# detection from Gloo's 600 s timeout and the hang watchdog's hour.
FAULT_BOUND_SECONDS = 120
RUN_TIMEOUT = 600
ATOL, RTOL = 1e-6, 1e-4
STEPS = 6
LAUNCH_ENV_PREFIXES = ("SLURM_", "SLURMD_", "HOROVOD_", "OMPI_", "PMI_", "PMIX_")


# --------------------------------------------------------------------------
# Unit tests of the launch logic (no TensorFlow processes)
# --------------------------------------------------------------------------


def clean_env():
    """This environment minus any launcher's variables (pytest may itself run inside a SLURM job)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCH_ENV_PREFIXES) and k != "TF_CONFIG"}
    env.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", PYTEST_ADDOPTS="")
    return env


def test_expand_hostlist():
    from bert_pretraining.topology import expand_hostlist

    assert expand_hostlist("node[1-2]") == ["node1", "node2"]
    assert expand_hostlist("gpu[08-10,12],login") == ["gpu08", "gpu09", "gpu10", "gpu12", "login"]
    assert expand_hostlist("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]
    assert expand_hostlist("localhost,127.0.0.1") == ["localhost", "127.0.0.1"]
    assert expand_hostlist("c1") == ["c1"]


def test_expand_tasks_per_node():
    from bert_pretraining.topology import expand_tasks_per_node

    assert expand_tasks_per_node("4(x2)") == [4, 4]
    assert expand_tasks_per_node("4(x2),3") == [4, 4, 3]
    assert expand_tasks_per_node("1") == [1]


def slurm_env(rank, size, tasks_per_node=(4, 4), nodes=("node1", "node2"), **extra):
    starts = [sum(tasks_per_node[:i]) for i in range(len(tasks_per_node))]
    node = max(i for i, start in enumerate(starts) if start <= rank)
    env = {
        "SLURM_JOB_ID": "1234", "SLURM_STEP_ID": "0", "SLURM_PROCID": str(rank), "SLURM_NTASKS": str(size),
        "SLURM_STEP_NUM_TASKS": str(size), "SLURM_STEP_NODELIST": ",".join(nodes),
        "SLURM_STEP_TASKS_PER_NODE": ",".join(str(c) for c in tasks_per_node), "SLURMD_NODENAME": nodes[node],
        "SLURM_LOCALID": str(rank - starts[node]), "SLURM_NODEID": str(node),
    }
    env.update(extra)
    return env


def test_slurm_topology_of_the_seed_geometry():
    """2 nodes x 4 GPUs, as srun --nodes=2 --ntasks-per-node=4 starts them."""
    from bert_pretraining.horovod_replica import horovod_environment_from_slurm
    from bert_pretraining.topology import detect_topology

    topology = detect_topology(slurm_env(6, 8) | {"SLURM_STEP_NODELIST": "node[1-2]", "SLURM_STEP_TASKS_PER_NODE": "4(x2)"})
    assert (topology.launcher, topology.rank, topology.size) == ("slurm", 6, 8)
    assert (topology.local_rank, topology.local_size, topology.cross_rank, topology.cross_size) == (2, 4, 1, 2)
    assert topology.nodes == ["node1", "node2"] and topology.node_name == "node2"
    env = horovod_environment_from_slurm(topology, {"HOROVOD_GLOO_RENDEZVOUS_ADDR": "10.0.0.1"})
    assert env["HOROVOD_RANK"] == "6" and env["HOROVOD_LOCAL_RANK"] == "2" and env["HOROVOD_CROSS_RANK"] == "1"
    assert env["HOROVOD_HOSTNAME"] == "node2" and env["HOROVOD_CONTROLLER"] == "gloo"


def test_multiworker_cluster_has_one_port_per_rank():
    from bert_pretraining.multiworker_replica import multiworker_cluster_from_slurm
    from bert_pretraining.topology import detect_topology

    env = slurm_env(3, 4, tasks_per_node=(2, 2), nodes=NODES, BERT_PRETRAINING_PORT="20000")
    config = multiworker_cluster_from_slurm(detect_topology(env), env)
    assert config == {
        "cluster": {"worker": ["localhost:20000", "localhost:20001", "127.0.0.1:20002", "127.0.0.1:20003"]},
        "task": {"type": "worker", "index": 3},
    }


def test_unresolvable_node_names_use_slurms_node_address(monkeypatch):
    from bert_pretraining import topology

    def fake_run(command, **kwargs):
        assert command[:3] == ["scontrol", "show", "node"]
        return subprocess.CompletedProcess(command, 0, stdout=f"NodeName={command[-1]} Arch=x86_64 NodeAddr=127.0.0.1 "
                                           "NodeHostName=localhost\n", stderr="")

    monkeypatch.setattr(topology.subprocess, "run", fake_run)
    assert topology.node_address("no-such-node.invalid") == "127.0.0.1"
    assert topology.node_address("localhost") == "localhost"


def test_port_is_the_same_on_every_rank_and_below_ephemeral_ports():
    from bert_pretraining.topology import base_port

    ports = {base_port(slurm_env(rank, 8, SLURM_JOB_ID="987654")) for rank in range(8)}
    assert len(ports) == 1 and 15000 <= ports.pop() + 8 < 32768
    assert base_port({"SLURM_JOB_ID": "5", "SLURM_STEP_ID": "1"}) != base_port({"SLURM_JOB_ID": "5", "SLURM_STEP_ID": "2"})
    assert base_port({"BERT_PRETRAINING_PORT": "23456"}) == 23456


def test_cyclic_distribution_is_refused():
    from bert_pretraining.topology import detect_topology
    from bert_pretraining.errors import ConfigError

    env = slurm_env(1, 4, tasks_per_node=(2, 2))
    env["SLURMD_NODENAME"] = "node2"  # cyclic: rank 1 on the second node
    with pytest.raises(ConfigError, match="block"):
        detect_topology(env)


def test_engine_choice():
    from bert_pretraining.distribution import choose_engine
    from bert_pretraining.topology import Topology, detect_topology
    from bert_pretraining.errors import ConfigError

    assert detect_topology({}).launcher == "single"
    assert detect_topology({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}).launcher == "single"
    alone = Topology("single")
    assert choose_engine("auto", alone) == "none" and choose_engine("horovod", alone) == "none"
    under_srun = Topology("slurm", rank=1, size=8)
    assert choose_engine("auto", under_srun, horovod_available=True) == "horovod"
    assert choose_engine("auto", under_srun, horovod_available=False) == "multiworker"
    assert choose_engine("multiworker", under_srun, horovod_available=True) == "multiworker"
    with pytest.raises(ConfigError, match="refusing to run independent trainers"):
        choose_engine("none", under_srun)
    with pytest.raises(ConfigError, match="horovod.tensorflow cannot be imported"):
        choose_engine("horovod", under_srun, horovod_available=False)
    with pytest.raises(ConfigError, match="horovod.tensorflow cannot be imported"):
        choose_engine("auto", Topology("horovodrun", size=2), horovod_available=False)
    with pytest.raises(ConfigError, match="needs srun or TF_CONFIG"):
        choose_engine("multiworker", Topology("horovodrun", size=2), horovod_available=True)
    tf_config = json.dumps({"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 2}})
    topology = detect_topology({"TF_CONFIG": tf_config})
    assert (topology.launcher, topology.rank, topology.size) == ("tf_config", 2, 3)
    assert choose_engine("auto", topology, horovod_available=True) == "multiworker"


def test_ranks_under_srun_without_an_engine_are_refused(data, tmp_path):
    """--distribution=none with 2 tasks under srun: one clear line, exit 2, nothing written."""
    env = clean_env() | slurm_env(0, 2, tasks_per_node=(1, 1), nodes=NODES)
    result = subprocess.run(
        [sys.executable, RUN_PRETRAINING, *training_flags(data, tmp_path / "out", batch=4, engine="none")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "2 ranks were started (slurm) but training.distribution is 'none'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out" / "metrics.jsonl")


# --------------------------------------------------------------------------
# Multi-process runs
# --------------------------------------------------------------------------


def horovod_in(python):
    """Horovod's TensorFlow library is built into that environment (checked without importing TF)."""
    venv = os.path.dirname(os.path.dirname(python))
    return bool(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "horovod", "tensorflow", "mpi_lib*.so")))


ENGINE_PARAMS = [
    pytest.param(("multiworker", MAIN_PYTHON), id="multiworker-tf2.21"),
    pytest.param(
        ("multiworker", TF215_PYTHON), id="multiworker-tf2.15",
        marks=pytest.mark.skipif(not os.path.exists(TF215_PYTHON), reason="no .venv-tf215 (make test creates it)"),
    ),
    pytest.param(
        ("horovod", TF215_PYTHON), id="horovod-tf2.15",
        marks=pytest.mark.skipif(
            not horovod_in(TF215_PYTHON),
            reason="Horovod is not built in .venv-tf215 (run tools/build_horovod.sh, ~10 min)",
        ),
    ),
]


def free_port_block(count):
    """A base port with `count` free ports after it (below the ephemeral range)."""
    rng = np.random.default_rng()
    for _ in range(200):
        base = int(rng.integers(20000, 30000))
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sock.bind(("", port))
                sockets.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """4 record files (one per rank at most), a tiny BERT without dropout."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from synthetic_records import VOCAB_SIZE, make_records

    from bert_pretraining.modeling import BertConfig

    directory = tmp_path_factory.mktemp("dist-data")
    files = make_records(str(directory / "records"), files=4, per_file=24)
    config = BertConfig(
        vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    config.to_json_file(str(directory / "bert_config.json"))
    return {"files": files, "records": str(directory / "records"), "config": str(directory / "bert_config.json")}


def training_flags(data, output_dir, *, batch, steps=STEPS, accumulation=1, engine="auto", extra=()):
    return [
        f"--bert_config_file={data['config']}", f"--input_file={data['records']}/shard_*.tfrecord",
        f"--output_dir={output_dir}", "--max_seq_length=32", "--max_predictions_per_seq=5",
        f"--train_batch_size={batch}", f"--num_train_steps={steps}", "--num_warmup_steps=2", "--learning_rate=1e-3",
        "--save_checkpoints_steps=2", "--keep_checkpoints=3", "--log_every_steps=1", "--seed=7", "--deterministic",
        "--use_xla=false", "--precision=fp32",
        f"--distribution={engine}", f"--gradient_accumulation_steps={accumulation}", *extra,
    ]


class Ranks:
    """R rank processes of one job step, each logging to <output>/rank<r>.log."""

    def __init__(self, python, engine, ranks, output_dir, flags, launcher="slurm"):
        self.output_dir = str(output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
        self.logs = [os.path.join(self.output_dir, f"rank{rank}.log") for rank in range(ranks)]
        port = free_port_block(ranks)
        base = clean_env()
        self.processes = []
        if launcher == "horovodrun":
            horovodrun = os.path.join(os.path.dirname(python), "horovodrun")
            command = [horovodrun, "--gloo", "-np", str(ranks), "-H", f"localhost:{ranks}",
                       "--gloo-timeout-seconds", "60", python, RUN_PRETRAINING, *flags]
            handle = open(self.logs[0], "w")
            self.processes.append(subprocess.Popen(command, env=base, stdout=handle, stderr=subprocess.STDOUT))
            return
        per_node = [ranks - ranks // 2, ranks // 2] if ranks > 1 else [1]
        nodes = NODES[: len(per_node)]
        for rank in range(ranks):
            if launcher == "slurm":
                env = base | slurm_env(rank, ranks, tasks_per_node=per_node, nodes=nodes,
                                       SLURM_JOB_ID=str(port), BERT_PRETRAINING_PORT=str(port))
            else:  # tf_config
                cluster = {"worker": [f"localhost:{port + r}" for r in range(ranks)]}
                env = base | {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})}
            handle = open(self.logs[rank], "w")
            self.processes.append(
                subprocess.Popen([python, RUN_PRETRAINING, *flags], env=env, stdout=handle, stderr=subprocess.STDOUT)
            )

    def wait(self, timeout=RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=max(deadline - time.monotonic(), 1)))
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"ranks did not finish within {timeout} s\n{self.tails()}") from None
        return codes

    def kill(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def tails(self, chars=3000):
        out = []
        for path in self.logs:
            if os.path.exists(path):
                text = open(path, errors="replace").read()
                out.append(f"--- {path}\n{text[-chars:]}")
        return "\n".join(out)

    def metrics_lines(self):
        path = os.path.join(self.output_dir, "metrics.jsonl")
        return len(open(path).readlines()) if os.path.exists(path) else 0

    def wait_for_log(self, rank, text, timeout=300):
        deadline = time.monotonic() + timeout
        while text not in open(self.logs[rank], errors="replace").read():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.kill()
                raise AssertionError(f"rank {rank} never logged {text!r}\n{self.tails()}")
            time.sleep(0.1)

    def wait_for_steps(self, count, timeout=300):
        deadline = time.monotonic() + timeout
        while self.metrics_lines() < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.kill()
                raise AssertionError(f"training did not reach step {count}\n{self.tails()}")
            time.sleep(0.2)


def run_ranks(python, engine, ranks, output_dir, flags, launcher="slurm"):
    job = Ranks(python, engine, ranks, output_dir, flags, launcher=launcher)
    codes = job.wait()
    assert codes == [0] * len(codes), f"exit codes {codes}\n{job.tails()}"
    return job


def run_reference(python, output_dir, flags, *, ranks, accumulation=1):
    """One process, batch = the concatenation of the R ranks' k micro-batches."""
    os.makedirs(output_dir, exist_ok=True)
    log = os.path.join(str(output_dir), "reference.log")
    with open(log, "w") as handle:
        result = subprocess.run(
            [python, os.path.abspath(__file__), "reference", str(ranks), str(accumulation), "--", *flags],
            env=clean_env(), stdout=handle, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT,
        )
    assert result.returncode == 0, open(log).read()[-5000:]


def assert_close(actual, expected, skip=("input_position",)):
    """Model, Adam slots and counters within ATOL + RTOL |expected|; the weights must have moved."""
    assert sorted(actual) == sorted(expected)
    worst = 0.0
    for name in expected:
        if name in skip:
            continue
        a, b = np.asarray(actual[name], np.float64), np.asarray(expected[name], np.float64)
        np.testing.assert_allclose(a, b, atol=ATOL, rtol=RTOL, err_msg=name)
        worst = max(worst, float(np.max(np.abs(a - b))) if a.size else 0.0)
    return worst


def movement(data, trained):
    """Largest change of any model weight from its initial value."""
    from bert_pretraining.modeling import BertConfig, BertPretrainer

    model = BertPretrainer(BertConfig.from_json_file(data["config"]), seed=7)
    return max(
        float(np.max(np.abs(trained[name] - variable.numpy()))) for name, variable in model.variables_by_name.items()
    )


def assert_identical(actual, expected):
    assert sorted(actual) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


@pytest.fixture(scope="module")
def straight_runs(data, tmp_path_factory):
    """Uninterrupted 2-rank runs per engine, shared by the resume and launcher tests."""
    cache = {}

    def get(engine, python):
        key = (engine, python)
        if key not in cache:
            output = tmp_path_factory.mktemp(f"straight-{engine}")
            run_ranks(python, engine, 2, output, training_flags(data, output, batch=4, engine=engine))
            cache[key] = weights_at(output, STEPS)
        return cache[key]

    return get


@pytest.mark.distributed
@pytest.mark.parametrize("engine_python", ENGINE_PARAMS)
def test_four_ranks_equal_one_process_with_four_times_the_batch(engine_python, data, tmp_path):
    engine, python = engine_python
    started = time.monotonic()
    xla = ["--use_xla"]
    run_ranks(python, engine, 4, tmp_path / "ranks",
              training_flags(data, tmp_path / "ranks", batch=4, engine=engine, extra=xla))
    ranks_seconds = time.monotonic() - started
    run_reference(python, tmp_path / "one", training_flags(data, tmp_path / "one", batch=16, engine="none", extra=xla),
                  ranks=4)
    distributed, single = weights_at(tmp_path / "ranks", STEPS), weights_at(tmp_path / "one", STEPS)
    worst = assert_close(distributed, single)
    assert movement(data, single) > 100 * ATOL  # the comparison is not vacuous
    assert distributed["global_step"] == single["global_step"] == STEPS
    assert distributed["input_position"] == STEPS  # batches per rank
    print(f"{engine}: 4 ranks x 4 vs 1 x 16: max |diff| {worst:.2e}; 4 ranks took {ranks_seconds:.0f} s")


@pytest.mark.distributed
@pytest.mark.parametrize("engine_python", ENGINE_PARAMS)
def test_gradient_accumulation_with_two_ranks(engine_python, data, tmp_path):
    """2 ranks x 2 micro-batches of 2 == one process with one batch of 8."""
    engine, python = engine_python
    run_ranks(python, engine, 2, tmp_path / "ranks",
              training_flags(data, tmp_path / "ranks", batch=2, accumulation=2, engine=engine))
    run_reference(python, tmp_path / "one", training_flags(data, tmp_path / "one", batch=8, engine="none"),
                  ranks=2, accumulation=2)
    distributed = weights_at(tmp_path / "ranks", STEPS)
    assert distributed["input_position"] == 2 * STEPS  # micro-batches per rank
    worst = assert_close(distributed, weights_at(tmp_path / "one", STEPS))
    print(f"{engine}: 2 ranks x 2 micro-batches x 2 vs 1 x 8: max |diff| {worst:.2e}")


def test_gradient_accumulation_in_one_process(data, tmp_path, monkeypatch):
    """4 micro-batches of 2 == one batch of those 8 sequences (in this process, TF of the main venv)."""
    from bert_pretraining import training
    from bert_pretraining.replica import single_process
    from bert_pretraining.segment_job import settings_from_args

    sys.path.insert(0, os.path.join(REPO, "workflow", "scripts"))
    from run_pretraining import parse_args

    os.makedirs(tmp_path / "acc")
    os.makedirs(tmp_path / "one")
    accumulated = settings_from_args(
        parse_args(training_flags(data, tmp_path / "acc", batch=2, accumulation=4, steps=4))
    )
    assert training.train_segment(accumulated, single_process()) == 0
    monkeypatch.setattr(training, "pretraining_dataset", union_dataset_builder(ranks=1, accumulation=4))
    whole = settings_from_args(parse_args(training_flags(data, tmp_path / "one", batch=8, steps=4)))
    assert training.train_segment(whole, single_process()) == 0
    assert_close(weights_at(tmp_path / "acc", 4), weights_at(tmp_path / "one", 4))


@pytest.mark.distributed
@pytest.mark.faults
@pytest.mark.parametrize("victim", [0, 1], ids=["kill-chief", "kill-worker"])
@pytest.mark.parametrize("engine_python", ENGINE_PARAMS)
def test_killing_one_rank_fails_the_others_promptly(engine_python, victim, data, tmp_path):
    engine, python = engine_python
    flags = training_flags(data, tmp_path, batch=4, steps=100000, engine=engine)
    job = Ranks(python, engine, 3, tmp_path, flags)
    try:
        job.wait_for_steps(2)
        job.processes[victim].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        survivors = [p for rank, p in enumerate(job.processes) if rank != victim]
        codes = []
        for process in survivors:
            try:
                codes.append(process.wait(timeout=max(FAULT_BOUND_SECONDS - (time.monotonic() - killed), 1)))
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"rank still running {FAULT_BOUND_SECONDS} s after rank {victim} was killed\n{job.tails()}"
                ) from None
        seconds = time.monotonic() - killed
    finally:
        job.kill()
    assert all(code != 0 for code in codes), f"exit codes {codes}\n{job.tails()}"
    print(f"{engine}: rank {victim} killed; the others exited {codes} after {seconds:.1f} s")


@pytest.mark.distributed
@pytest.mark.parametrize("engine_python", ENGINE_PARAMS)
def test_stop_on_one_rank_stops_all_and_resume_is_exact(engine_python, data, tmp_path, straight_runs):
    engine, python = engine_python
    from bert_pretraining import checkpoints

    flags = training_flags(data, tmp_path, batch=4, engine=engine)
    job = Ranks(python, engine, 2, tmp_path, flags)
    try:
        # The stop handler is installed once a rank logs its segment; the first
        # step's compilation follows, so the request lands in step 1.
        job.wait_for_log(1, "segment 0-6 of phase")
        job.processes[1].send_signal(signal.SIGUSR1)  # a non-chief rank: rank 0 must still save
        codes = job.wait()
    finally:
        job.kill()
    stopped = checkpoints.newest_valid_checkpoint(str(tmp_path))
    assert codes == [75, 75], f"exit codes {codes}\n{job.tails()}"
    assert stopped is not None and 1 <= stopped.step < STEPS, job.tails()
    saved = weights_at(tmp_path, stopped.step)
    assert saved["input_position"] == stopped.step
    rerun = run_ranks(python, engine, 2, tmp_path / "resumed-logs", flags)
    assert "resuming from" in open(rerun.logs[1]).read()
    assert_identical(weights_at(tmp_path, STEPS), straight_runs(engine, python))


@pytest.mark.distributed
@pytest.mark.parametrize("engine_python", ENGINE_PARAMS)
def test_engines_own_launcher(engine_python, data, tmp_path, straight_runs):
    """Outside SLURM: horovodrun --gloo for Horovod, TF_CONFIG for the multi-worker strategy."""
    engine, python = engine_python
    launcher = "horovodrun" if engine == "horovod" else "tf_config"
    run_ranks(python, engine, 2, tmp_path, training_flags(data, tmp_path, batch=4, engine="auto"), launcher=launcher)
    # Same ranks, same data, same collective: the same bits as under (simulated) srun.
    assert_identical(weights_at(tmp_path, STEPS), straight_runs(engine, python))


@pytest.mark.distributed
@pytest.mark.parametrize("engine_python", ENGINE_PARAMS)
def test_fp16_allreduce_with_loss_scaling(engine_python, data, tmp_path):
    """--precision=fp16 --fp16_allreduce: float16 gradients on the wire, the same training within fp16 rounding."""
    engine, python = engine_python
    fp16 = ["--precision=fp16"]
    run_ranks(python, engine, 2, tmp_path / "fp16-wire",
              training_flags(data, tmp_path / "fp16-wire", batch=4, engine=engine, extra=fp16 + ["--fp16_allreduce"]))
    run_ranks(python, engine, 2, tmp_path / "fp32-wire",
              training_flags(data, tmp_path / "fp32-wire", batch=4, engine=engine, extra=fp16))
    compressed, plain = weights_at(tmp_path / "fp16-wire", STEPS), weights_at(tmp_path / "fp32-wire", STEPS)
    assert compressed["global_step"] == STEPS and compressed["skipped_steps"] == plain["skipped_steps"]
    kernel = "bert/encoder/layer_0/attention/self/query/kernel"
    difference = float(np.max(np.abs(compressed[kernel] - plain[kernel])))
    assert all(np.all(np.isfinite(v)) for v in compressed.values() if v.dtype.kind == "f")
    assert 0 < difference < 0.01 * movement(data, plain), difference  # 0 would mean no float16 on the wire
    print(f"{engine}: fp16 vs fp32 allreduce: max |diff| {difference:.2e} (weights moved {movement(data, plain):.2e})")


# --------------------------------------------------------------------------
# Worker side: the single-process reference
# --------------------------------------------------------------------------


def union_dataset_builder(*, ranks, accumulation):
    """pretraining_dataset replacement: step i's batch = every rank's k micro-batches of step i, concatenated."""
    import tensorflow as tf

    from bert_pretraining import inputs

    def union_dataset(files, records_per_file, *, batch_size, start_batch=0, rank=0, num_ranks=1, **kwargs):
        assert start_batch == 0 and rank == 0 and num_ranks == 1, "the reference only trains from scratch"
        per_rank = batch_size // (ranks * accumulation)
        assert per_rank * ranks * accumulation == batch_size

        def flatten(features):
            return {name: tf.reshape(value, [-1, *value.shape[2:]]) for name, value in features.items()}

        parts = [
            inputs.pretraining_dataset(
                files, records_per_file, batch_size=per_rank, rank=r, num_ranks=ranks, **kwargs
            ).batch(accumulation).map(flatten)
            for r in range(ranks)
        ]

        def concat(*features):
            return {name: tf.concat([f[name] for f in features], axis=0) for name in features[0]}

        return tf.data.Dataset.zip(tuple(parts)).map(concat)

    return union_dataset


def reference_main(argv):
    ranks, accumulation = int(argv[0]), int(argv[1])
    assert argv[2] == "--"
    sys.path.insert(0, os.path.join(REPO, "workflow", "scripts"))
    import run_pretraining

    from bert_pretraining import training

    training.pretraining_dataset = union_dataset_builder(ranks=ranks, accumulation=accumulation)
    return run_pretraining.main(argv[3:])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "reference":
        sys.exit(reference_main(sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} reference RANKS ACCUMULATION -- run_pretraining flags")
