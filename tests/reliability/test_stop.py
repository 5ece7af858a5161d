"""STOP as the machine logs it: under a full output queue, through a corrupting line, and out of
sequence."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from firmware_bridge.codec import MsgType, encode_raw
from firmware_bridge.commands import Op, Result
from firmware_bridge.link import CommandRefused
from tests.reliability.conftest import CROWN, connected, wait_for

STOP_MS = 300  # STOP is written three times at once; generous for a loaded 2-core machine


def running(sim, host):
    assert host.apply(CROWN) == CROWN
    host.arm()
    sim.say("pedal down")
    assert sim.log.wait_state("RUNNING")


def stopped_ms(sim, t0: int) -> float:
    assert sim.log.wait_state("FAULTED", timeout=3), sim.log.entries()[-5:]
    stop = sim.log.first("STOP", after_ns=t0)
    assert stop is not None
    assert sim.log.stopped_after(t0) is not None, sim.log.transitions()[-4:]
    return (sim.log.stopped_after(t0).mono_ns - t0) / 1e6


def test_stop_under_a_full_output_queue(sim):
    with connected(sim.address) as host:
        running(sim, host)
        wanted = [CROWN.model_copy(update={"rate_hz": CROWN.rate_hz + Decimal("0.1") * k})
                  for k in range(1, 101)]
        results: list[Result] = []
        # Queued from this one thread without waiting, as the session owner does: all of them
        # are asked before the STOP (a hundred waiting threads starved the heartbeat under
        # load, and the last of them asked after the STOP).
        for s in wanted:
            host.submit(Op.SET, s, results.append)
        assert wait_for(lambda: host.status.queued >= 50)  # a full queue, one at a time on the line
        t0 = time.monotonic_ns()
        assert host.stop() is True
        ms = stopped_ms(sim, t0)
        assert wait_for(lambda: len(results) == len(wanted), timeout=10)
        errors = [r for r in results if not r.ok]
        time.sleep(0.3)
    print(f"\nSTOP with {len(wanted)} commands queued: needle stopped after {ms:.0f} ms; "
          f"{len(errors)} cancelled")
    assert ms < STOP_MS
    others = sorted({r.message for r in errors} - {"SET failed: cancelled by STOP"})
    assert len(errors) >= 40 and not others, others
    stop = sim.log.first("STOP", after_ns=t0)
    assert not [e for e in sim.log.sets() if e.mono_ns > stop.mono_ns]  # nothing ran after it
    assert sim.log.state() == "FAULTED"
    sim.log.assert_needle_safe()
    sim.log.assert_sets_once_and_as_recorded(host.events, requested=[CROWN, *wanted])


def test_stop_through_a_line_corrupting_frames(sim):
    with connected(sim.address) as host:
        running(sim, host)
        sim.say("fault bit-errors 1e-3")
        time.sleep(0.2)
        t0 = time.monotonic_ns()
        host.stop()
        ms = stopped_ms(sim, t0)
        sim.say("clear bit-errors")
    print(f"\nSTOP at bit-error rate 1e-3: needle stopped after {ms:.0f} ms")
    assert ms < STOP_MS
    sim.log.assert_needle_safe()


@pytest.mark.parametrize("seq_kind", ["stale", "random", "zero"])
def test_a_stop_out_of_sequence_still_stops(sim, seq_kind):
    with connected(sim.address) as host:
        running(sim, host)
        last = [e for e in sim.log.entries() if e.what == "ARM"][-1].seq
        seq = {"stale": last, "random": (last + 97) % 255 + 1, "zero": 0}[seq_kind]
        t0 = time.monotonic_ns()
        sim.inject(encode_raw(seq, 0, MsgType.STOP))
        ms = stopped_ms(sim, t0)
        time.sleep(0.3)  # the pedal is still down
        with pytest.raises(CommandRefused, match="latched"):
            host.arm()
    print(f"\nraw STOP with a {seq_kind} seq: needle stopped after {ms:.0f} ms")
    assert ms < STOP_MS
    assert sim.log.state() == "FAULTED"
    sim.log.assert_needle_safe()
