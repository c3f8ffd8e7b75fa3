"""A real two-node SLURM cluster on this machine, for the SLURM tests.

Debian's packages (slurm-wlm, slurmdbd, munge, mariadb-server) run here as on
a small real cluster:

- ``munged`` (authentication), as the ``munge`` user;
- ``mariadbd`` on 127.0.0.1 at a free port with a private data directory, and
  ``slurmdbd`` on it, so that ``sacct`` answers as on a real cluster (the
  SLURM executor plugin checks job states with sacct);
- ``slurmctld`` and two ``slurmd`` "nodes", ``node1`` and ``node2``, each with
  288 CPUs, 384 GB and the fake GPUs of every type the profiles under
  ``profiles/`` ask for: four V100s (``gpu:v100:4``, Puhti's), four A100s
  (Mahti's), four GH200s (Roihu's); LUMI's untyped ``gpu:8`` takes any eight.
  They are character devices made with mknod (the numbers of /dev/null);
  ``SlurmdParameters=config_overrides`` makes SLURM accept more CPUs and memory
  than the host has;
- a partition of every name the profiles use (``gpu``, ``gpumedium``,
  ``standard-g``, ``small-g``, ...) and ``small`` (CPU jobs, the default), and
  an account ``project_2001234`` that root may use.

The configuration goes to ``/etc/slurm/`` (slurm.conf, gres.conf,
slurmdbd.conf): with a custom ``SLURM_CONF`` the srun that a job started by
the SLURM executor runs cannot find the cluster, because the executor's job
step removes every ``SLURM_*`` variable. Everything else (data, spool
directories, pid files, logs) is in a new temporary directory;
``/etc/slurm/bert-testbed.json`` records it and the daemons' process ids, so
``stop`` and ``status`` work from another process. Only one testbed runs at a
time; a SLURM configuration that the testbed did not write is never touched.

Used by the tests through ``tests/slurm_fixtures.py`` (one cluster per pytest
session, always stopped at the end) and by hand for debugging::

    python tests/slurm_testbed.py start    # prints the log directory
    python tests/slurm_testbed.py status
    python tests/slurm_testbed.py stop

Needs root (daemons, /etc/slurm, mknod, apt-get); missing packages are
installed with apt-get. Without root, ``start`` raises ``TestbedUnavailable``
with the reason, which the tests report as their skip reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

CLUSTER = "berttest"
ACCOUNT = "project_2001234"
NODES = ("node1", "node2")
GPU_TYPE = "v100"  # what the tests' own sbatch jobs ask for (Puhti's)
GPUS_PER_NODE = 4
CPUS_PER_NODE = 288  # a Roihu GPU node (4 x 72); the others ask for fewer
MEMORY_PER_NODE_MB = 384000  # a Puhti GPU node
PROFILES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "profiles")


def _profile_values(key: str) -> list[str]:
    """Every value of `key` in the profiles under profiles/ (read as text: no YAML needed here)."""
    values = []
    for path in sorted(glob.glob(os.path.join(PROFILES_DIR, "*", "config.yaml"))):
        with open(path) as handle:
            values += re.findall(rf"^\s*{key}:\s*['\"]?([\w:.-]+)", handle.read(), re.MULTILINE)
    return values


def profile_partitions() -> tuple[str, ...]:
    """"small" (the default, CPU jobs) and every slurm_partition a profile names, sorted."""
    return tuple(sorted({"small", *_profile_values("slurm_partition")}))


def profile_gpu_types() -> dict[str, int]:
    """GPUs per node by type: the most any profile asks for (gpu:<type>:<n>), and the tests' V100s.

    An untyped request (LUMI's gpu:8) takes GPUs of any type.
    """
    types = {GPU_TYPE: GPUS_PER_NODE}
    for gres in _profile_values("gres"):
        parts = gres.split(":")
        if len(parts) == 3 and parts[0] == "gpu" and parts[2].isdigit():
            types[parts[1]] = max(types.get(parts[1], 0), int(parts[2]))
    return types


PARTITIONS = profile_partitions()
GPU_TYPES = profile_gpu_types()

ETC = "/etc/slurm"
SLURM_CONF = f"{ETC}/slurm.conf"
GRES_CONF = f"{ETC}/gres.conf"
SLURMDBD_CONF = f"{ETC}/slurmdbd.conf"
STATE_FILE = f"{ETC}/bert-testbed.json"
LOCK_FILE = f"{ETC}/bert-testbed.lock"
MARKER = "# Written by tests/slurm_testbed.py (bert-pretraining): remove with `python tests/slurm_testbed.py stop`."

PACKAGES = ["slurm-wlm", "slurmdbd", "munge", "mariadb-server", "mariadb-client"]
BINARIES = [
    "slurmctld", "slurmd", "slurmdbd", "sbatch", "srun", "squeue", "sinfo", "sacct", "sacctmgr",
    "scontrol", "scancel", "munged", "munge", "unmunge", "mariadbd", "mariadb-install-db", "mariadb",
]
MUNGE_SOCKET = "/run/munge/munge.socket.2"


class TestbedUnavailable(RuntimeError):
    """The cluster cannot be started here; the message says why (a test skip reason)."""


class TestbedError(RuntimeError):
    """The cluster was started but did not come up; the message names the log directory."""


@dataclass
class Testbed:
    """A running testbed: where its files are and which processes are its own."""

    state_dir: str
    ports: dict = field(default_factory=dict)
    processes: dict = field(default_factory=dict)  # name -> [pid, start time in clock ticks]
    started_at: float = 0.0

    @property
    def log_dir(self) -> str:
        return os.path.join(self.state_dir, "log")

    @property
    def device_dir(self) -> str:
        return os.path.join(self.state_dir, "dev")

    def to_json(self) -> dict:
        return {"state_dir": self.state_dir, "ports": self.ports, "processes": self.processes,
                "started_at": self.started_at, "cluster": CLUSTER, "account": ACCOUNT}

    @classmethod
    def from_json(cls, data: dict) -> "Testbed":
        return cls(data["state_dir"], data.get("ports", {}), data.get("processes", {}), data.get("started_at", 0.0))

    def describe(self) -> str:
        return f"SLURM testbed (cluster {CLUSTER}, nodes {','.join(NODES)}); files and logs in {self.state_dir}"

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every daemon log, for a failure message."""
        parts = []
        if os.path.isdir(self.log_dir):
            for name in sorted(os.listdir(self.log_dir)):
                path = os.path.join(self.log_dir, name)
                with open(path, errors="replace") as handle:
                    tail = handle.readlines()[-lines:]
                parts.append(f"==> {path} <==\n{''.join(tail)}")
        return "\n".join(parts)


# --- small helpers -------------------------------------------------------------------------------


def binary(name: str) -> str:
    """The full path of a program (daemons live in /usr/sbin, which a user's PATH may lack)."""
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


def run(args, *, check=True, timeout=60, env=None, input=None) -> subprocess.CompletedProcess:
    args = [binary(args[0]), *args[1:]]
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and result.returncode != 0:
        raise TestbedError(f"{' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}")
    return result


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _alive(entry) -> bool:
    pid, started = entry
    return _start_time(pid) == started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(predicate, timeout: float, what: str, testbed: Testbed | None = None, interval: float = 0.5):
    deadline = time.time() + timeout
    last_error = None
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (subprocess.SubprocessError, OSError, TestbedError) as error:
            last_error = error
        time.sleep(interval)
    where = f"; logs in {testbed.log_dir}" if testbed else ""
    detail = f" (last error: {last_error})" if last_error else ""
    raise TestbedError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{where}")


def _spawn(testbed: Testbed, name: str, args, *, user=None, group=None):
    """Start a daemon in the foreground of its own session; remember it as ours."""
    args = [binary(args[0]), *args[1:]]
    log = open(os.path.join(testbed.log_dir, f"{name}.out"), "ab")
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        user=user, group=group, close_fds=True,
    )
    log.close()
    started = None
    for _ in range(50):
        started = _start_time(process.pid)
        if started is not None:
            break
        time.sleep(0.02)
    if started is None:
        raise TestbedError(f"{name} exited at once ({' '.join(args)}); see {testbed.log_dir}/{name}.out")
    testbed.processes[name] = [process.pid, started]
    _save_state(testbed)
    return process


def _save_state(testbed: Testbed) -> None:
    os.makedirs(ETC, exist_ok=True)
    temporary = STATE_FILE + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(testbed.to_json(), handle, indent=1)
    os.replace(temporary, STATE_FILE)


def load_state() -> Testbed | None:
    try:
        with open(STATE_FILE) as handle:
            return Testbed.from_json(json.load(handle))
    except (OSError, ValueError, KeyError):
        return None


# --- preconditions -------------------------------------------------------------------------------


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if binary(name) == name]


def ensure_packages() -> None:
    """Install Debian's SLURM, munge and MariaDB packages when a binary is missing (root only)."""
    missing = missing_binaries()
    if not missing:
        return
    if os.geteuid() != 0:
        raise TestbedUnavailable(
            f"the SLURM testbed needs root and Debian packages {' '.join(PACKAGES)} (missing: {', '.join(missing)})"
        )
    if shutil.which("apt-get") is None:
        raise TestbedUnavailable(f"no apt-get to install {' '.join(PACKAGES)} (missing: {', '.join(missing)})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", *PACKAGES]
    result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0:  # stale or missing package lists: update once and retry
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env, timeout=600)
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0 or missing_binaries():
        raise TestbedUnavailable(
            f"apt-get install {' '.join(PACKAGES)} failed: {(result.stdout + result.stderr)[-2000:]}"
        )


def check_preconditions() -> None:
    if sys.platform != "linux":
        raise TestbedUnavailable("the SLURM testbed runs on Linux only")
    if os.geteuid() != 0:
        raise TestbedUnavailable(
            "the SLURM testbed needs root (it starts slurmctld, slurmd, slurmdbd, munged and mariadbd, "
            "writes /etc/slurm and makes fake GPU device files)"
        )
    if os.path.exists(SLURM_CONF):
        with open(SLURM_CONF, errors="replace") as handle:
            if MARKER not in handle.read():
                raise TestbedUnavailable(f"{SLURM_CONF} exists and was not written by the testbed: not touching it")


# --- configuration -------------------------------------------------------------------------------


def slurm_conf(testbed: Testbed) -> str:
    state, ports = testbed.state_dir, testbed.ports
    host = socket.gethostname().split(".")[0]
    nodes = "\n".join(
        f"NodeName={node} NodeHostname=localhost NodeAddr=127.0.0.1 Port={ports[node]}"
        f" CPUs={CPUS_PER_NODE} RealMemory={MEMORY_PER_NODE_MB} Gres={node_gres()} State=UNKNOWN"
        for node in NODES
    )
    partitions = "\n".join(
        f"PartitionName={name} Nodes={','.join(NODES)} MaxTime=INFINITE State=UP"
        f"{' Default=YES' if name == 'small' else ''}"
        for name in PARTITIONS
    )
    return f"""{MARKER}
# State, spool and logs: {state}
ClusterName={CLUSTER}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports['slurmctld']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/spool/%n
SlurmctldPidFile={state}/run/slurmctld.pid
SlurmdPidFile={state}/run/slurmd-%n.pid
SlurmctldLogFile={state}/log/slurmctld.log
SlurmdLogFile={state}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
SlurmdParameters=config_overrides
ReturnToService=2
# Jobs stay visible to squeue for a while after they end (sacct is the status command anyway).
MinJobAge=300
KillWait=10
InactiveLimit=0
SlurmctldTimeout=120
SlurmdTimeout=300
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={ports['slurmdbd']}
AccountingStorageTRES=gres/gpu
{nodes}
{partitions}
"""


def node_gres() -> str:
    return ",".join(f"gpu:{kind}:{count}" for kind, count in GPU_TYPES.items())


def device_ranges() -> dict[str, tuple[int, int]]:
    """The device files of each GPU type: nvidia<first> to nvidia<last>."""
    ranges, first = {}, 0
    for kind, count in GPU_TYPES.items():
        ranges[kind] = (first, first + count - 1)
        first += count
    return ranges


def gres_conf(testbed: Testbed) -> str:
    # Both "nodes" share the device files: SLURM only checks that they are character devices.
    lines = [MARKER, "AutoDetect=off"] + [
        f"NodeName={node} Name=gpu Type={kind} File={testbed.device_dir}/nvidia[{first}-{last}]"
        for node in NODES for kind, (first, last) in device_ranges().items()
    ]
    return "\n".join(lines) + "\n"


def slurmdbd_conf(testbed: Testbed, password: str) -> str:
    return f"""{MARKER}
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={testbed.ports['slurmdbd']}
SlurmUser=root
LogFile={testbed.state_dir}/log/slurmdbd.log
PidFile={testbed.state_dir}/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={testbed.ports['mariadb']}
StorageUser=slurm
StoragePass={password}
StorageLoc=slurm_acct_db
"""


def _write(path: str, text: str, mode: int = 0o644) -> None:
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


# --- the daemons ---------------------------------------------------------------------------------


def munge_works() -> bool:
    try:
        credential = run(["munge", "-n"], timeout=10)
        run(["unmunge"], input=credential.stdout, timeout=10)
        return True
    except (TestbedError, subprocess.SubprocessError, OSError):
        return False


def start_munge(testbed: Testbed) -> None:
    if munge_works():
        return  # a munged is already running (not ours: it stays)
    os.makedirs("/run/munge", exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    os.chmod("/run/munge", 0o755)
    for directory in ("/var/lib/munge", "/var/log/munge"):
        os.makedirs(directory, exist_ok=True)
        shutil.chown(directory, "munge", "munge")
    if not os.path.exists("/etc/munge/munge.key"):
        run(["mungekey", "--create"], timeout=30)
        shutil.chown("/etc/munge/munge.key", "munge", "munge")
    log = os.path.join(testbed.log_dir, "munged.log")
    open(log, "a").close()
    shutil.chown(log, "munge", "munge")
    _spawn(testbed, "munged", ["munged", "--foreground", "--force", f"--log-file={log}"], user="munge", group="munge")
    _wait(munge_works, 20, "munged", testbed)


def start_mariadb(testbed: Testbed) -> str:
    """A private MariaDB server for slurmdbd; returns the slurm user's password."""
    data = os.path.join(testbed.state_dir, "mysql")
    sock = os.path.join(testbed.state_dir, "run", "mysql.sock")
    run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db",
         "--auth-root-authentication-method=socket"], timeout=180)
    _spawn(testbed, "mariadbd", [
        "mariadbd", "--no-defaults", "--user=root", f"--datadir={data}", f"--socket={sock}",
        f"--port={testbed.ports['mariadb']}", "--bind-address=127.0.0.1", "--skip-name-resolve",
        f"--pid-file={testbed.state_dir}/run/mariadbd.pid", f"--log-error={testbed.log_dir}/mariadb.log",
        "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M", "--innodb-lock-wait-timeout=900",
        "--innodb-flush-log-at-trx-commit=2",
    ])
    client = ["mariadb", "--no-defaults", f"--socket={sock}", "-u", "root"]
    _wait(lambda: run([*client, "-e", "SELECT 1"], check=False, timeout=10).returncode == 0, 60, "mariadbd", testbed)
    password = secrets.token_hex(12)
    run([*client, "-e",
         "CREATE DATABASE IF NOT EXISTS slurm_acct_db;"
         f" CREATE USER 'slurm'@'%' IDENTIFIED BY '{password}';"
         " GRANT ALL ON slurm_acct_db.* TO 'slurm'@'%'; FLUSH PRIVILEGES;"], timeout=30)
    return password


def sacctmgr(*args, check=True):
    return run(["sacctmgr", "-i", *args], check=check, timeout=60)


def start_slurmdbd(testbed: Testbed) -> None:
    _spawn(testbed, "slurmdbd", ["slurmdbd", "-D"])
    _wait(lambda: run(["sacctmgr", "-n", "-P", "list", "cluster"], check=False, timeout=20).returncode == 0,
          90, "slurmdbd (sacctmgr list cluster)", testbed)
    # The cluster, an account and root as its user: the plugin's slurm_account check asks sacctmgr.
    if CLUSTER not in run(["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"], timeout=20).stdout.split():
        _retry(lambda: sacctmgr("add", "cluster", CLUSTER), "sacctmgr add cluster", testbed)
    _retry(lambda: sacctmgr("add", "account", ACCOUNT, f"Cluster={CLUSTER}", "Description=testbed",
                            "Organization=testbed", check=False), "sacctmgr add account", testbed)
    _retry(lambda: sacctmgr("add", "user", "root", f"Account={ACCOUNT}", f"Cluster={CLUSTER}", check=False),
           "sacctmgr add user", testbed)


def _retry(action, what, testbed, attempts=5):
    for attempt in range(attempts):
        try:
            return action()
        except TestbedError:
            if attempt == attempts - 1:
                raise TestbedError(f"{what} failed {attempts} times; logs in {testbed.log_dir}") from None
            time.sleep(2)


def node_states() -> dict[str, str]:
    result = run(["sinfo", "-h", "-N", "-o", "%N %T"], check=False, timeout=20)
    states = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            states[parts[0]] = parts[1]
    return states


def start_slurm(testbed: Testbed) -> None:
    _spawn(testbed, "slurmctld", ["slurmctld", "-D", "-c"])
    _wait(lambda: "UP" in run(["scontrol", "ping"], check=False, timeout=10).stdout, 60, "slurmctld", testbed)
    for node in NODES:
        os.makedirs(os.path.join(testbed.state_dir, "spool", node), exist_ok=True)
        _spawn(testbed, f"slurmd-{node}", ["slurmd", "-D", "-N", node])
    deadline = time.time() + 90
    resumed = False
    while True:
        states = node_states()
        if all(states.get(node, "").rstrip("*") == "idle" for node in NODES) and len(states) >= len(NODES):
            break
        if not resumed and time.time() > deadline - 60 and any(s.startswith(("down", "drain")) for s in states.values()):
            run(["scontrol", "update", f"NodeName={','.join(NODES)}", "State=RESUME"], check=False)
            resumed = True
        if time.time() > deadline:
            raise TestbedError(f"nodes not idle after 90 s: {states}; logs in {testbed.log_dir}")
        for name, entry in testbed.processes.items():
            if not _alive(entry):
                raise TestbedError(f"{name} died during start-up; logs in {testbed.log_dir}")
        time.sleep(0.5)


def _check_gpus() -> None:
    output = run(["scontrol", "show", "node", NODES[0]], timeout=20).stdout
    for kind, count in GPU_TYPES.items():
        if f"gpu:{kind}:{count}" not in output:
            raise TestbedError(f"{NODES[0]} does not offer gpu:{kind}:{count}:\n{output}")


# --- public API ----------------------------------------------------------------------------------


def status() -> tuple[bool, str]:
    """(healthy, a description) of the testbed recorded in /etc/slurm."""
    testbed = load_state()
    if testbed is None:
        return False, "no testbed is running (no /etc/slurm/bert-testbed.json)"
    dead = [name for name, entry in testbed.processes.items() if not _alive(entry)]
    lines = [testbed.describe()]
    for name, (pid, _) in sorted(testbed.processes.items()):
        lines.append(f"  {name:16} pid {pid:>7}  {'dead' if name in dead else 'running'}")
    states = node_states() if "slurmctld" not in dead else {}
    lines.append(f"  nodes: {states or 'unknown'}")
    usable = ("idle", "mixed", "allocated", "completing")
    healthy = not dead and all(states.get(node, "").rstrip("*~#") in usable for node in NODES)
    return healthy, "\n".join(lines)


@contextlib.contextmanager
def _locked():
    """One start or stop at a time on this machine (two pytest sessions, a hand in a shell)."""
    os.makedirs(ETC, exist_ok=True)
    with open(LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start(log=print) -> Testbed:
    """Start the cluster (reusing a healthy one); raise TestbedUnavailable or TestbedError."""
    existing = load_state()
    if existing is not None and status()[0]:
        log(f"reusing the running {existing.describe()}")
        return existing
    check_preconditions()
    ensure_packages()
    with _locked():
        return _start(log)


def _start(log) -> Testbed:
    healthy, _ = status()
    existing = load_state()
    if healthy and existing is not None:
        log(f"reusing the running {existing.describe()}")
        return existing
    if existing is not None:
        _stop(log)
    began = time.time()
    testbed = Testbed(state_dir=tempfile.mkdtemp(prefix="slurm-testbed-"), started_at=began)
    for sub in ("log", "run", "ctld", "spool", "dev", "mysql"):
        os.makedirs(os.path.join(testbed.state_dir, sub), exist_ok=True)
    os.chmod(testbed.state_dir, 0o755)
    os.chmod(testbed.log_dir, 0o777)  # munged logs as the munge user
    testbed.ports = {name: _free_port() for name in ("slurmctld", "slurmdbd", "mariadb", *NODES)}
    if len(set(testbed.ports.values())) != len(testbed.ports):
        testbed.ports = {name: port for name, port in zip(testbed.ports, range(_free_port(), 65535, 7))}
    _save_state(testbed)
    try:
        for index in range(sum(GPU_TYPES.values())):
            os.mknod(os.path.join(testbed.device_dir, f"nvidia{index}"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        _write(SLURM_CONF, slurm_conf(testbed))
        _write(GRES_CONF, gres_conf(testbed))
        start_munge(testbed)
        password = start_mariadb(testbed)
        _write(SLURMDBD_CONF, slurmdbd_conf(testbed, password), mode=0o600)
        start_slurmdbd(testbed)
        start_slurm(testbed)
        _check_gpus()
    except PermissionError as error:
        _stop(lambda *_: None)
        raise TestbedUnavailable(f"cannot set up the SLURM testbed here: {error}") from error
    except BaseException:
        log(f"the SLURM testbed did not start; logs in {testbed.log_dir}")
        log(testbed.log_tails())
        _stop(lambda *_: None)
        raise
    log(f"started the {testbed.describe()} in {time.time() - began:.0f} s")
    return testbed


def _our_step_daemons(testbed: Testbed) -> list[int]:
    """slurmstepd processes of this testbed (their open files are in its spool directories)."""
    spool = os.path.join(testbed.state_dir, "spool")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as handle:
                if handle.read().strip() != "slurmstepd":
                    continue
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}").startswith(spool):
                    found.append(int(entry))
                    break
        except OSError:
            continue
    return found


def _terminate(name: str, entry, timeout: float = 20) -> None:
    pid, _ = entry
    if not _alive(entry):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline and _alive(entry):
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        except ChildProcessError:
            pass
        time.sleep(0.1)
    if _alive(entry):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(log=print) -> None:
    """Cancel the testbed's jobs, stop its daemons, remove its files from /etc/slurm (keep its logs)."""
    if os.geteuid() != 0:
        log("stopping the SLURM testbed needs root")
        return
    with _locked():
        _stop(log)


def _stop(log) -> None:
    testbed = load_state()
    if testbed is None:
        log("no SLURM testbed is running")
        return
    if "slurmctld" in testbed.processes and _alive(testbed.processes["slurmctld"]):
        jobs = run(["squeue", "-h", "-o", "%A"], check=False, timeout=20).stdout.split()
        if jobs:
            run(["scancel", *jobs], check=False, timeout=30)
            try:
                _wait(lambda: not run(["squeue", "-h", "-o", "%A"], check=False, timeout=20).stdout.split(),
                      60, "cancelled jobs to end")
            except TestbedError as error:
                log(str(error))
    for pid in _our_step_daemons(testbed):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    order = [f"slurmd-{node}" for node in NODES] + ["slurmctld", "slurmdbd", "mariadbd", "munged"]
    for name in order + [name for name in testbed.processes if name not in order]:
        if name in testbed.processes:
            _terminate(name, testbed.processes[name])
    for path in (SLURM_CONF, GRES_CONF, SLURMDBD_CONF):
        try:
            with open(path, errors="replace") as handle:
                ours = MARKER in handle.read()
            if ours:
                os.unlink(path)
        except FileNotFoundError:
            pass
    try:
        os.unlink(STATE_FILE)
    except FileNotFoundError:
        pass
    for sub in ("mysql", "spool", "ctld", "dev"):  # the bulk (MariaDB's files); the logs stay
        shutil.rmtree(os.path.join(testbed.state_dir, sub), ignore_errors=True)
    log(f"stopped the SLURM testbed; its logs stay in {testbed.log_dir}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in ("start", "stop", "status"):
        print("usage: python tests/slurm_testbed.py start|stop|status", file=sys.stderr)
        return 2
    command = argv[0]
    try:
        if command == "start":
            testbed = start()
            print(f"logs: {testbed.log_dir}\nstop with: python {os.path.relpath(__file__)} stop")
        elif command == "stop":
            stop()
        else:
            healthy, description = status()
            print(description)
            return 0 if healthy else 1
    except TestbedUnavailable as error:
        print(f"unavailable: {error}", file=sys.stderr)
        return 3
    except TestbedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
