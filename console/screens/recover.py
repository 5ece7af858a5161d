"""On start: sessions a crash left open are offered for closing (never closed unasked). In
presentation mode the question names each client by its pseudonym."""

from __future__ import annotations

from console.screens.confirm import Confirm
from sessions.recorder import close_interrupted, open_sessions


def offer_recovery(app) -> None:
    def found(answer) -> None:
        sessions, names = answer
        if not sessions:
            return

        def ask(hide: bool) -> str:
            lines = "\n".join(
                f"  session {s.id}: "
                + (f"{names.client(s.client_id)}, {names.technician(s.technician)}" if hide
                   else f"{s.client_name}, {s.technician}")
                + f", started {s.started_at:%Y-%m-%d %H:%M}, {s.events} events"
                for s in sessions[:10])
            return (f"{len(sessions)} session(s) were left open (a crash, or another chair "
                    f"on a shared database):\n{lines}\nClose them as INTERRUPTED? Every "
                    "recorded event is kept.")

        def answered(yes: bool | None) -> None:
            if yes:
                app.db_call(_close_all, app.store, [s.id for s in sessions],
                            then=lambda n: app.notify(f"{n} session(s) closed as interrupted"))

        app.push_screen(Confirm(ask(False), yes="Close them (y)", no="Keep open (n)",
                                hidden=ask(True)), answered)

    app.db_call(lambda: (open_sessions(app.store), app.controller.pseudonyms()), then=found)


def _close_all(store, ids: list[int]) -> int:
    for session_id in ids:
        close_interrupted(store, session_id)
    return len(ids)
