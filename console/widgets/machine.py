"""What the machine confirms: state in words, pedal, measured values with sparklines, link
health and the needle run timer. Only reported values are shown; '--' when unknown."""

from __future__ import annotations

import time
from dataclasses import replace

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from console.view import Link, MachineState, View
from console.widgets.text import set_text


def _v(value: float | None, fmt: str) -> str:
    return "--" if value is None else format(value, fmt)


class MachinePanel(Vertical):
    DEFAULT_CSS = """
    MachinePanel { height: auto; border: round $primary; padding: 0 1; }
    MachinePanel #state { text-style: bold; }
    MachinePanel .spark-row { height: 1; }
    MachinePanel .spark-label { width: 9; }
    MachinePanel Sparkline { height: 1; width: 1fr; }
    MachinePanel.-stale #values { color: $text-muted; }
    """

    _view: View | None = None
    _shown: View | None = None

    def on_mount(self) -> None:
        # While the machine is silent the age of what it last said counts up on screen; and a
        # view that came before the rows were mounted is shown once they are.
        self.set_interval(0.1, self._tick)

    def _tick(self) -> None:
        if self._view is not None and (self._view.machine.stale or self._shown is not self._view):
            self.show(self._view)

    def compose(self) -> ComposeResult:
        yield Static(id="state")
        yield Static(id="values")
        for name in _TRENDS:
            with Horizontal(classes="spark-row"):
                yield Static(f"{name:<8}", classes="spark-label")
                yield Sparkline([], id=f"spark-{name}")
        yield Static(id="health")

    def show(self, view: View) -> None:
        self._view = view
        if not self.query("#health") or len(self.query(Sparkline)) < len(_TRENDS):
            return  # not composed yet (rows mount after the panel): views come at any moment
        self._shown = view
        m = view.machine
        silent = _silent_ms(view)
        pedal = "DOWN" if m.pedal else "up"
        if not m.connected:
            state = "NOT CONNECTED"
        elif silent is not None:
            why = "link lost" if m.link == Link.LOST else f"no telemetry for {silent / 1000:.1f} s"
            state, pedal = f"UNKNOWN ({why}; last reported {m.state.value})", "unknown"
        else:
            state = m.state.value
        set_text(self.query_one("#state", Static), f"Machine: {state}   Pedal: {pedal}")
        if silent is not None:  # nothing it said can be believed now
            m = replace(m, rate_hz=None, voltage_v=None, current_a=None, depth_mm=None,
                        temperature_c=None)
        run = view.work.run_ms / 1000 if view.work else 0.0
        set_text(self.query_one("#values", Static),
            f"rate    {_v(m.rate_hz, '6.1f')} Hz\n"
            f"voltage {_v(m.voltage_v, '6.2f')} V\n"
            f"current {_v(m.current_a, '6.3f')} A\n"
            f"depth   {_v(m.depth_mm, '6.3f')} mm\n"
            f"temp    {_v(m.temperature_c, '6.1f')} C\n"
            f"needle run {run:4.1f} s")
        for name, data in (("rate", m.rate_trend), ("voltage", m.voltage_trend),
                           ("current", m.current_trend), ("depth", m.depth_trend)):
            spark = self.query_one(f"#spark-{name}", Sparkline)
            if spark.data != list(data):
                spark.data = list(data)
        rtt = _v(m.rtt_ms, ".0f")
        age = _v(m.telemetry_age_ms if silent is None else silent, ".0f")
        link = m.link.value
        if m.link == Link.LOST:
            link = "LINK LOST"
        set_text(self.query_one("#health", Static),
            f"link {link}\nround trip {rtt} ms  telemetry age {age} ms\n"
            f"resends {m.resend_ratio * 100:.1f}%")
        self.set_class(m.state in (MachineState.FAULT, MachineState.STOPPED), "-alarm")
        self.set_class(silent is not None, "-stale")


_TRENDS = ("rate", "voltage", "current", "depth")


def _silent_ms(view: View) -> float | None:
    """How long the machine has been silent, if too long to believe it (else None)."""
    m = view.machine
    if not m.connected or not (m.stale or m.link == Link.LOST):
        return None
    if m.telemetry_at is None:
        return 0.0
    return (time.monotonic() - m.telemetry_at) * 1000
