"""`smp replay SESSION [--speed N] [--db URL] [--presentation]`: a recorded session played back
on the working screen, read-only (console/screens/replay.py). No machine is connected: the
command never opens a port or starts a machine service."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from console.cmd_history import add_db_option
from protocols.errors import UsageError

if TYPE_CHECKING:
    from console.cli import Subparsers

MIN_SPEED, MAX_SPEED = 0.1, 64.0  # playback speeds, here and on the screen's +/- keys


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "replay", help="play a recorded session back on the working screen (read-only)",
        description="Play a recorded session back from its flight record: the machine's "
        "frames, its settings and states, and a timeline of applies, arms, runs, stops, "
        "faults and notes to jump to. Nothing is sent to any machine.")
    p.add_argument("session", metavar="SESSION", help="the session's id (smp history client "
                   "NAME lists them)")
    p.add_argument("--speed", metavar="N", default="1",
                   help=f"playback speed, {MIN_SPEED:g} to {MAX_SPEED:g} (default 1)")
    p.add_argument("--paused", action="store_true", help="start paused at the beginning")
    p.add_argument("--presentation", action="store_true",
                   help="hide client identities and free text (teaching)")
    add_db_option(p)
    p.set_defaults(handler=cmd_replay)


def session_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise UsageError(f"session {text!r}: a session id is a whole number from 1 (smp "
                         "history client NAME lists a client's sessions)")
    return int(text)


def speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not MIN_SPEED <= value <= MAX_SPEED:  # also refuses nan and inf
        raise UsageError(f"--speed {text!r}: a number from {MIN_SPEED:g} to {MAX_SPEED:g} "
                         "(1 is real time)")
    return value


def cmd_replay(args: argparse.Namespace) -> int:
    from console.config import load_config
    from console.replay_app import ReplayApp
    from sessions import replay
    from sessions.store import open_store

    sid, rate = session_id(args.session), speed(args.speed)
    config = load_config()
    store = open_store(args.db)
    try:
        presentation = args.presentation or config.presentation
        # Read before any screen: a bad session is one line, and the first picture needs no
        # wait once the app is up.
        loaded = replay.load(store, sid, presentation=presentation)
        app = ReplayApp(store, sid, speed=rate, play=not args.paused,
                        presentation=presentation, theme=config.theme, loaded=loaded)
        app.run()
    finally:
        store.close()
    return app.return_code or 0
