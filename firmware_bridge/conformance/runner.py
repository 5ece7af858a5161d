"""Running the clauses against a device: the handshake that tells a machine from anything
else, one result per clause, and the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from firmware_bridge.codec import ClearFault, Hello, Ident, Malformed, VersionMismatch
from firmware_bridge.conformance.clauses import CLAUSES, ORDER, Clause
from firmware_bridge.conformance.context import Context, Fail, Operator, Skip, describe
from firmware_bridge.conformance.probe import Probe
from firmware_bridge.schema import (
    HANDSHAKE_MS,
    HELLO_INTERVAL_MS,
    PROTOCOL_VERSION,
    Capability,
    ErrorCode,
    Fault,
    MsgType,
    State,
)
from firmware_bridge.transport import Transport, TransportError
from protocols.errors import SmpError, UsageError

NEEDS_TEXT = {
    "pedal": "the pedal pressed",
    "fault": "a fault caused on purpose",
    "boot": "the machine restarted",
}


class NotAMachine(SmpError):
    """The port answers nothing, garbage, or speaks another protocol version."""

    exit_code = 2


@dataclass
class Result:
    id: str
    section: str
    title: str
    level: str
    outcome: str  # PASS, FAIL or SKIPPED
    observed: str
    seconds: float

    def line(self) -> str:
        return f"{self.outcome:<7} {self.id:<7} {self.observed}  [section {self.section}]"


@dataclass
class Report:
    port: str
    ident: dict[str, Any]
    allow_arm: bool
    controls: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    def summary(self) -> str:
        return (f"{self.count('PASS')} passed, {self.count('FAIL')} failed, "
                f"{self.count('SKIPPED')} skipped")

    @property
    def exit_code(self) -> int:
        """0 when every required (MUST) clause that ran passed."""
        return int(any(r.outcome == "FAIL" and r.level == "MUST" for r in self.results))

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "port": self.port, "device": self.ident,
                "allow_arm": self.allow_arm, "controls": self.controls,
                "seconds": round(self.seconds, 2), "summary": self.summary(),
                "results": [asdict(r) for r in self.results]}


def select(ids: Iterable[str] | None) -> list[Clause]:
    """The clauses to run, in their running order; UsageError for an unknown id."""
    if not ids:
        return [CLAUSES[c] for c in ORDER]
    wanted = []
    for cid in ids:
        key = cid.strip().upper()
        if key not in CLAUSES:
            raise UsageError(f"unknown clause {cid!r}; `smp conformance --list` shows the "
                             f"{len(CLAUSES)} clauses (C-1.1 to {ORDER[-2]})")
        wanted.append(key)
    return [CLAUSES[c] for c in ORDER if c in wanted]


def handshake(probe: Probe, port: str) -> Ident:
    """HELLO until IDENT, as a host does (section 6); NotAMachine with the reason if not."""
    end = probe.clock() + HANDSHAKE_MS / 1000
    seq = probe.next_seq()
    while probe.clock() < end:  # the same HELLO, every 250 ms
        _, got = probe.command(Hello(), seq=seq, timeout=HELLO_INTERVAL_MS / 1000)
        if got is None:
            continue
        try:
            ident = got.frame.message()
        except VersionMismatch as exc:
            raise NotAMachine(f"{port}: the device speaks protocol version {exc.version}; smp "
                              f"conformance checks version {PROTOCOL_VERSION}") from None
        except Malformed as exc:
            raise NotAMachine(f"{port}: the device answered HELLO with a malformed IDENT "
                              f"({exc})") from None
        if isinstance(ident, Ident):
            return ident
        raise NotAMachine(f"{port}: the device answered HELLO with {describe(got.frame)}, not "
                          "IDENT")
    stats = probe.decoder.stats
    if probe.bytes_in == 0:
        why = "no answer to HELLO within 1.5 s (is it switched on, and is this its port?)"
    elif not probe.frames and not probe.host_frames:
        why = (f"the device answers garbage ({probe.bytes_in} bytes, no valid frame): wrong "
               "baud rate, or not an SMP machine")
    elif probe.host_frames and not probe.frames:
        why = "only our own frames came back (a loopback or an echoing device)"
    else:
        why = f"the device sends frames but did not answer HELLO ({stats.frames} frames)"
    raise NotAMachine(f"{port}: not an SMP machine: {why}")


def _ident_dict(i: Ident) -> dict[str, Any]:
    return {"protocol": i.protocol, "firmware": i.firmware_version, "model": i.model,
            "serial": i.serial, "boot_id": f"{i.boot_id:08x}",
            "capabilities": f"0x{i.capabilities:04X}", "lo": list(i.lo), "hi": list(i.hi),
            "watchdog_ms": i.watchdog_ms}


def run(transport: Transport, port: str, *, clauses: list[Clause] | None = None,
        allow_arm: bool = False, operator: Operator | None = None,
        clock: Callable[[], float] = time.monotonic,
        out: Callable[[str], None] = print) -> Report:
    """Hand-shake, then run each clause from a new session; one line per clause to `out`."""
    started = clock()
    probe = Probe(transport, clock)
    ident = handshake(probe, port)
    if ident.state == State.FAULTED:
        _seq, got = probe.command(ClearFault())
        if got is not None and got.frame.type == MsgType.NACK and \
                got.frame.payload[1] == ErrorCode.FAULT_PERSISTS:
            names = ", ".join(f.name for f in Fault
                              if f and f in Fault(ident.faults) and f.name is not None)
            raise NotAMachine(f"{port}: the machine has a latched fault whose cause persists "
                              f"({names}): clear the cause (a hot motor cools), then run "
                              "again")
    clauses = [CLAUSES[c] for c in ORDER] if clauses is None else clauses
    is_sim = bool(ident.capabilities & Capability.SIMULATOR)
    if operator is not None and operator.name == "simulator" and not is_sim:
        operator = None  # a control channel registered for a port that is not our simulator
    simulator = " (a simulator)" if is_sim else ""
    out(f"device: {ident.model} {ident.serial}, firmware {ident.firmware_version}, protocol "
        f"{ident.protocol}{simulator}, on {port}")
    if not allow_arm and any("arm" in c.needs for c in clauses):
        out("not arming: clauses that need an armed machine are skipped (--allow-arm runs "
            "them)")
    controls = operator.name if operator else "none"
    if operator is None and any(c.needs - {"arm"} for c in clauses):
        out("no controls: clauses that need the pedal, a fault or a restart are skipped (no "
            "simulator control channel for this port, and no person to ask)")
    report = Report(port, _ident_dict(ident), allow_arm, controls)
    ctx = Context(probe, ident, operator, allow_arm)
    for c in clauses:
        result = _run_one(ctx, c, clock)
        report.results.append(result)
        out(result.line())
        if result.outcome == "FAIL" and result.observed.startswith("the port went away"):
            break
    report.seconds = clock() - started
    out(report.summary())
    return report


def _run_one(ctx: Context, c: Clause, clock: Callable[[], float]) -> Result:
    t0 = clock()
    outcome, observed = "PASS", ""
    missing = [NEEDS_TEXT[n] for n in sorted(c.needs - {"arm"}) if ctx.operator is None]
    try:
        if "arm" in c.needs and not ctx.allow_arm:
            raise Skip("needs an armed machine: --allow-arm")
        if missing:
            raise Skip(f"needs {' and '.join(missing)}: no simulator control channel for this "
                       "port, and no person to ask (--non-interactive, or no terminal)")
        observed = c.run(ctx)
    except Fail as exc:
        outcome, observed = "FAIL", str(exc)
    except Skip as exc:
        outcome, observed = "SKIPPED", str(exc)
    except TransportError as exc:
        outcome, observed = "FAIL", f"the port went away: {exc}"
    try:
        problems = ctx.finish()
    except TransportError as exc:
        problems = [f"the port went away: {exc}"]
    if problems and outcome != "SKIPPED":
        observed += f" (afterwards: {'; '.join(problems)})"
    return Result(c.id, c.section, c.title, c.level, outcome, observed, round(clock() - t0, 3))
