"""Counting needle runs from TELEMETRY's runs and needle_ms (docs/protocol.md C-9.5)."""

from __future__ import annotations

from firmware_bridge.codec import State, Telemetry
from firmware_bridge.runs import RunCounter, RunEnded, RunStarted


def frame(uptime, state, runs, needle):
    return Telemetry(state=state, flags=0, faults=0, rate_dhz=0, voltage_mv=0, current_ma=0,
                     depth_um=0, temperature_dc=0, uptime_ms=uptime, set_depth_um=0,
                     set_rate_dhz=0, set_voltage_mv=0, runs=runs, needle_ms=needle)


A, R = State.ARMED, State.RUNNING


def events(frames):
    c, out = RunCounter(), []
    for f in frames:
        out += c.feed(f)
    return out


def durations(frames):
    return [(e.duration_ms, e.exact) for e in events(frames) if isinstance(e, RunEnded)]


def test_one_run_is_timed_by_the_machine_not_by_the_frames():
    # Started 7 ms before the frame at 20 (needle 7), ended 3 ms after the one at 60.
    frames = [frame(0, A, 0, 0), frame(20, R, 1, 7), frame(40, R, 1, 27), frame(60, R, 1, 47),
              frame(80, A, 1, 50)]
    assert [type(e) for e in events(frames)] == [RunStarted, RunEnded]
    assert durations(frames) == [(50, True)]


def test_runs_too_short_for_any_frame_are_counted_and_the_total_kept():
    frames = [frame(0, A, 5, 100), frame(20, A, 7, 110)]  # two taps, 10 ms in all, unseen
    assert durations(frames) == [(5, False), (5, False)]


def test_a_run_that_ends_and_another_that_starts_between_two_frames():
    frames = [frame(0, A, 0, 0), frame(20, R, 1, 10), frame(40, R, 2, 26), frame(60, A, 2, 36)]
    d = durations(frames)
    assert len(d) == 2 and sum(ms for ms, _ in d) == 36


def test_lost_frames_move_no_total_and_the_counters_wrap():
    frames = [frame(0, A, 255, 2**32 - 5), frame(20, R, 0, 2**32 - 1), frame(200, A, 0, 170)]
    assert durations(frames) == [(175, True)]


def test_a_restart_begins_the_count_again():
    c = RunCounter()
    c.feed(frame(0, A, 3, 900))
    c.reset()
    assert c.feed(frame(5, A, 0, 0)) == [] and not c.running


def test_frames_of_a_new_boot_before_the_link_says_so_are_no_needle_time():
    """The console showed a 71582-minute zone and a 16843 s run after the machine restarted:
    its first frames (counters from 0) were fed before the link reported the reboot, and
    the difference with the old counters wrapped. Uptime going back is a new boot."""
    frames = [frame(500_000, A, 3, 90_000), frame(500_020, R, 4, 90_005),
              frame(500_040, R, 4, 90_025),
              frame(40, A, 0, 0), frame(60, R, 1, 10), frame(80, A, 1, 30)]
    assert [(type(e), getattr(e, "duration_ms", None)) for e in events(frames)] == [
        (RunStarted, None), (RunEnded, 25), (RunStarted, None), (RunEnded, 30)]
    assert durations(frames) == [(25, False), (30, True)]
