"""What the flight recorder is fed: the link's events turned into its frames and samples
(sessions/flight.py knows nothing of the bridge; this is the one place that maps them)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from firmware_bridge.codec import Telemetry
from firmware_bridge.events import LinkHealth, TelemetryReceived
from sessions import flight

_TELEMETRY = tuple(f.name for f in fields(Telemetry))
assert set(_TELEMETRY) | {"at_us", "ack"} == {f.name for f in fields(flight.Frame)}, \
    "TELEMETRY and the flight frame disagree: version the flight format"


def frame(event: TelemetryReceived, at: datetime) -> flight.Frame:
    """The frame as the machine sent it; `at` is the wall time of its uptime."""
    t = event.telemetry
    return flight.Frame(at_us=flight.to_us(at), ack=event.ack,
                        **{name: int(getattr(t, name)) for name in _TELEMETRY})


def health(event: LinkHealth, at: datetime | None = None) -> flight.Health:
    return flight.health_sample(
        at or datetime.now(UTC), rtt_ms=event.rtt_ms, telemetry_age_ms=event.telemetry_age_ms,
        resend_ratio=event.resend_ratio, telemetry_lost=event.telemetry_lost,
        bad_frames=event.bad_frames, heartbeat_gap_max_ms=event.heartbeat_gap_max_ms)
