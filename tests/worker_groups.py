"""Which tests run together on one pytest-xdist worker, and in what order.

`make test` runs the suite on two workers: serially it keeps about 1.2 of the
2 cores busy (SLURM polling, process start-up), so a second worker uses the
idle one. A worker runs a whole group: the modules that share a session
fixture form one group (one SLURM cluster, one demo run per session), every
other module is its own group (its module fixtures are built once).

xdist's own `--dist loadgroup` cannot be used: it regroups by rewriting
`item._nodeid`, which pytest 9.2's structured node ids ignore. conftest.py
gives xdist this module's scheduler instead (`pytest_xdist_make_scheduler`).
"""

# The modules whose tests take each session fixture (conftest.py checks the list).
SESSION_FIXTURE_GROUPS = {
    "slurm_cluster": ("slurm", ("tests/test_slurm.py", "tests/test_slurm_distributed.py")),
    "demo_run": ("demo", ("tests/test_report.py", "tests/test_resume_workflow.py", "tests/test_workflow.py")),
}
GROUP_OF_MODULE = {module: group for group, modules in SESSION_FIXTURE_GROUPS.values() for module in modules}
# The longest groups start first, so that neither worker is left with a long group at the
# end while the other idles (serial `make test --durations`, 2026-12-02: slurm 20 min,
# test_distributed 10, test_faults 8, demo 8; no other group over 3; 2026-12-05: the two
# TensorFlow-version modules 3 and 3.5).
LONGEST_GROUPS = (
    "slurm", "tests/test_distributed.py", "tests/test_faults.py", "demo",
    "tests/test_tensorflow_versions_workflow.py", "tests/test_tensorflow_versions.py",
)


def group_of(nodeid):
    module = nodeid.split("::", 1)[0]
    return GROUP_OF_MODULE.get(module, module)


def misplaced(item):
    """Why the test cannot run in its group (a session fixture outside its modules), or None."""
    for fixture, (group, _) in SESSION_FIXTURE_GROUPS.items():
        if fixture in getattr(item, "fixturenames", ()) and group_of(item.nodeid) != group:
            return f"{item.nodeid} takes {fixture}: add its module to {group!r} in tests/worker_groups.py"
    return None


def longest_groups_first(items):
    """Sort the collected tests so that the scheduler hands out the longest groups first."""

    def rank(item):
        group = group_of(item.nodeid)
        return LONGEST_GROUPS.index(group) if group in LONGEST_GROUPS else len(LONGEST_GROUPS)

    items.sort(key=rank)  # stable: collection order within a group and among the rest


def make_scheduler(config, log):
    """xdist's load-by-module scheduling, with the modules of a session fixture as one unit."""
    from xdist.scheduler import LoadScopeScheduling  # only under xdist: .venv-tf215 runs tests without it

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return group_of(nodeid)

    # Hand out the groups in the workers' collection order (longest_groups_first), not by test count.
    config.option.loadscopereorder = False
    return GroupScheduling(config, log)
