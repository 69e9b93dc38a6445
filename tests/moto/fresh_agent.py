"""pytest plugin for moto's tests in server mode against firewall-agent (run by
tests/tests/moto_security_groups.rs inside a network namespace of its own).

moto resets its server between tests (POST /moto-api/reset, a moto-only call the agent does not
have; the run sets MOTO_CALL_RESET_API=false). This plugin stands in for it: before each test a
fresh agent (a new --state-dir and bpffs directory) listens on 127.0.0.1:5000, and after it the
agent is stopped (its own PID only). `random` is seeded with the test's ID, so tests that draw
ports at random draw the same ones every run.

Environment: FW_AGENT_BIN (the agent), FW_WORK (a directory for the agents' state and logs),
FW_CREDENTIALS (the agent's credentials file with moto's test keys), FW_BPFFS (a mounted bpffs).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import time

import pytest

PORT = 5000
RUNS = 0


def _listening(port, within):
    end = time.time() + within
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(autouse=True)
def fresh_agent(request):
    random.seed(request.node.nodeid)
    global RUNS
    RUNS += 1
    # Short names: the agent's socket path must fit a sockaddr_un (108 bytes).
    name = f"t{RUNS}"
    run = os.path.join(os.environ["FW_WORK"], name)
    bpffs = os.path.join(os.environ["FW_BPFFS"], name)
    os.makedirs(run, exist_ok=True)
    os.makedirs(bpffs, exist_ok=True)
    with open(os.path.join(run, "test"), "w") as f:
        f.write(request.node.nodeid + "\n")
    log = open(os.path.join(run, "agent.log"), "w")
    agent = subprocess.Popen(
        [
            os.environ["FW_AGENT_BIN"],
            "--socket", os.path.join(run, "agent.sock"),
            "serve",
            "--state-dir", os.path.join(run, "state"),
            "--ec2-listen", f"127.0.0.1:{PORT}",
            "--credentials", os.environ["FW_CREDENTIALS"],
            "--bpffs", bpffs,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if not _listening(PORT, 20):
        agent.kill()
        agent.wait()
        raise RuntimeError(f"the agent did not listen: {run}/agent.log")
    try:
        yield
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        log.close()
        shutil.rmtree(bpffs, ignore_errors=True)
