"""The acceptance run, as a maker would do it: `smp sim --pty` in one process, `smp conformance
--port <its path> --allow-arm --non-interactive` in another. Every clause passes, in under two
minutes (the limit is generous: a shared 2-core machine; the run takes about 20 s)."""

import re
import subprocess
import sys
import time

import pytest

from console.cli import main
from firmware_bridge.conformance import CLAUSES
from sim.quirks import QUIRKS
from tests.sim.test_sim_process import SimProcess


@pytest.mark.slow(17)
def test_every_clause_passes_against_smp_sim_over_a_real_pty():
    sim = SimProcess("--pty", "--baud", "115200", "--seed", "5")
    try:
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "console", "conformance", "--port", sim.address,
             "--allow-arm", "--non-interactive"], capture_output=True, text=True, timeout=180)
        took = time.monotonic() - t0
    finally:
        sim.close()
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines[-1] == f"{len(CLAUSES)} passed, 0 failed, 0 skipped"
    assert len([x for x in lines if re.match(r"PASS +C-\d+\.\d+ ", x)]) == len(CLAUSES)
    assert not done.stderr
    assert took < 120


def test_a_quirky_simulator_fails_its_clause_over_a_real_pty():
    sim = SimProcess("--pty", "--seed", "5", "--quirk", "telemetry-ack-zero")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "console", "conformance", "--port", sim.address,
             "--clause", "C-9.2", "--clause", "C-9.3", "--non-interactive"],
            capture_output=True, text=True, timeout=60)
    finally:
        sim.close()
    assert done.returncode == 1
    assert [x.split()[:2] for x in done.stdout.splitlines()[1:3]] == [
        ["FAIL", "C-9.2"], ["PASS", "C-9.3"]]


def test_an_unknown_quirk_is_one_line_naming_the_allowed_ones(capsys):
    assert main(["sim", "--quirk", "telemetry-ack-one"]) == 2
    err = capsys.readouterr().err
    assert err == (f"smp: error: --quirk 'telemetry-ack-one': allowed {', '.join(QUIRKS)}\n")
