"""The SLURM testbed as a pytest session fixture.

conftest.py imports it (``from slurm_fixtures import slurm_cluster``); tests
that need a real cluster take the ``slurm_cluster`` argument. The cluster
(tests/slurm_testbed.py) is started once per session, on first use, and
stopped at the end of the session whatever happened; a testbed that was
already running (started by hand with ``python tests/slurm_testbed.py
start``) is used and left running. Where it cannot run (not root, no
apt-get), the tests are skipped with the reason.
"""

import atexit

import pytest

import slurm_testbed


@pytest.fixture(scope="session")
def slurm_cluster(request):
    """The running testbed (a ``slurm_testbed.Testbed``: ``log_dir``, ``state_dir``)."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    def say(message):
        """Straight to the terminal, past pytest's output capture."""
        if capture is None:
            print(f"[slurm testbed] {message}")
            return
        with capture.global_and_fixture_disabled():
            print(f"\n[slurm testbed] {message}", flush=True)

    already_running = slurm_testbed.status()[0]
    try:
        testbed = slurm_testbed.start(log=say)
    except slurm_testbed.TestbedUnavailable as error:
        pytest.skip(f"no SLURM testbed: {error}")
    except slurm_testbed.TestbedError as error:
        pytest.fail(f"the SLURM testbed did not start: {error}", pytrace=False)
    ours = not already_running
    stopped = []

    def stop():
        if ours and not stopped:
            stopped.append(True)
            slurm_testbed.stop(log=say)

    atexit.register(stop)  # also when the session ends abnormally
    try:
        yield testbed
    finally:
        if request.session.testsfailed:
            say(f"tests failed: the testbed's daemon logs are in {testbed.log_dir}")
        stop()
