"""The technician's console: a Textual app over the SessionController.

All serial and database work runs in thread workers that never touch widgets: they post a
message, and handlers here (on the UI thread) update the screen. The controller's views arrive
as `ViewChanged` messages that replace one another in the queue, so a 50 Hz machine never
floods the screen. Errors a person can act on are one line on screen; anything else is
logged and reported as an internal error, never a traceback.

Presentation mode (teaching, a projector) is one state of the app, `presentation`: every
screen, dialog, notification and error line reads it, and the window's subtitle and every
screen's banner say PRESENTATION. Turning it on is immediate; turning it off asks for a typed
word, so that no stray key shows a client's identity to a class.
"""

from __future__ import annotations

import gc
import logging
import select
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TextIO

from rich.text import Text
from textual import work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from console import crash
from console.app_base import KeyedApp
from console.config import ConfigError, ConsoleConfig
from console.controller import SessionController
from console.reader import RecordReader
from console.view import Link, MachineState, View
from console.widgets.text import plain
from protocols.errors import SmpError
from sessions.redact import redact
from sessions.store import Store

log = logging.getLogger(__name__)
HANGUP_CHECK_S = 0.2


def terminal_hung_up(stream: TextIO | None) -> bool:
    """Whether the terminal behind `stream` hung up (its other end closed)."""
    if stream is None:  # no terminal at all
        return True
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLIN)
        return any(mask & (select.POLLHUP | select.POLLNVAL) for _, mask in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True  # no descriptor left at all


# What a worker call runs with its result (on the UI thread), or with the SmpError it raised.
Then = Callable[[Any], None] | None
Fail = Callable[[SmpError], None] | None


class ViewChanged(Message):
    def __init__(self, view: View) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        # Only the newest view matters: older ones still queued are dropped.
        return isinstance(message, ViewChanged)


class Done(Message):
    def __init__(self, then: Callable[[Any], None] | None, result: Any) -> None:
        super().__init__()
        self.then, self.result = then, result


class Failed(Message):
    def __init__(self, fail: Fail, error: SmpError) -> None:
        super().__init__()
        self.fail, self.error = fail, error


# STOP's bindings: whatever console.toml says, their own keys stay (with_stop_keys).
STOP_IDS = ("stop", "stop-space", "stop-ctrl-c")


def with_stop_keys(keymap: Mapping[str, str]) -> dict[str, str]:
    """The key map as applied: an entry for a STOP binding only adds keys to its own, so
    Esc, Ctrl+C and Space (outside text fields) always stop."""
    own = {b.id: b.key for b in SmpApp.BINDINGS
           if isinstance(b, Binding) and b.id in STOP_IDS}
    return {bid: ",".join(dict.fromkeys([*own[bid].split(","), *keys.split(",")]))
            if bid in own else keys for bid, keys in keymap.items()}


class SmpApp(KeyedApp):
    CSS_PATH = "app.tcss"
    TITLE = "smp console"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "STOP", priority=True, id="stop", key_display="Esc",
                tooltip="Stop the needle now, from any screen"),
        Binding("space", "stop_space", "STOP", priority=True, id="stop-space", show=False,
                tooltip="Stop the needle now (not while typing in a field)"),
        # Declared here it also replaces Textual's Ctrl+C ("press ctrl+q to quit"): never quit.
        Binding("ctrl+c", "stop", "STOP", priority=True, id="stop-ctrl-c", show=False,
                tooltip="Stop the needle now, from any screen, even in a text field"),
        # F2 to F5 and F10 mean one thing on every screen: no screen binds them to anything
        # else (the browsers' own keys are F6 to F9 and Ctrl+ keys). F10 closes what is on
        # top: each dialog, browser and picker binds it to its own close.
        Binding("f2", "help", "Keys", id="help", tooltip="Every key of the console"),
        # A priority binding: a class walking in finds F3 working over any dialog too.
        Binding("f3", "presentation", "Presentation", id="presentation", priority=True,
                tooltip="Hide client identities and health data (teaching); off asks first"),
        Binding("f4", "history", "History", id="history",
                tooltip="Clients, sessions, recall by lot, touch-ups due, exports"),
        Binding("f5", "protocols", "Protocols", id="protocols",
                tooltip="The protocol library: profiles, resolution, user-file errors"),
        Binding("ctrl+q", "quit", "Quit", id="quit",
                tooltip="Quit: STOP first if armed or running; asks if a session is open"),
        # Textual's palette closes on Esc, which is STOP here: F10 closes it, as it closes
        # everything else on top (only while it is open: elsewhere F10 is the screen's).
        Binding("f10", "close_palette", "Close", id="close-palette", show=False,
                priority=True, tooltip="Close the command palette"),
    ]

    def __init__(self, store: Store, *, url: str | None = None,
                 config: ConsoleConfig | None = None,
                 controller: SessionController | None = None) -> None:
        super().__init__()
        self.store = store
        self.url = url
        self.config_ = config or ConsoleConfig()
        self.view = View()
        self.controller = controller or SessionController(
            store, flight_retention=timedelta(days=self.config_.flight_retention_days))
        self.controller.on_view = self._view_changed
        self.workflow: dict[str, Any] = {}  # choices carried from screen to screen
        self._sim_order = threading.Lock()
        self.set_reactive(SmpApp.presentation, self.config_.presentation)
        # The keys that stop on every screen, as the key map applies them: the terminal's
        # input thread sends STOP for these before the UI sees them (console/stop_driver.py).
        keymap = self.keymap_ = with_stop_keys(self.config_.keymap)
        self.controller.arm_key = self.key("work.arm")
        self.controller.disarm_key = self.key("work.disarm")
        self.stop_keys = frozenset(
            key.strip() for b in self.BINDINGS
            if isinstance(b, Binding) and b.id in ("stop", "stop-ctrl-c")
            for key in keymap.get(b.id, b.key).split(","))
        if self.config_.theme not in self.available_themes:
            raise ConfigError(f"theme {self.config_.theme!r}: allowed "
                              f"{', '.join(sorted(self.available_themes))}")

    def _view_changed(self, view: View) -> None:  # on the session's thread
        self.post_message(ViewChanged(view))

    def get_driver_class(self) -> type:
        from textual.drivers.linux_driver import LinuxDriver

        from console.stop_driver import StopFirstDriver

        found = super().get_driver_class()
        return StopFirstDriver if found is LinuxDriver else found

    # --- start-up ------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme = self.config_.theme
        if self.config_.keymap:
            self.set_keymap(with_stop_keys(self.config_.keymap))
        self.sub_title = "PRESENTATION" if self.presentation else ""
        if skipped := sorted({str(e.path) for e in self.controller.library.errors}):
            self.notify(f"skipped: {', '.join(skipped)}; {self.key('protocols')} says why",
                        severity="warning",
                        title="Profile files with problems", timeout=15)
        from console.screens.connect import ConnectScreen
        from console.screens.recover import offer_recovery

        # The offer to close interrupted sessions comes first, on every start path, and
        # nothing replaces it: connecting starts once it is answered.
        def connect() -> None:
            self.push_screen(ConnectScreen(self.url))

        offer_recovery(self, then=connect)
        if not self.is_headless:
            self.set_interval(HANGUP_CHECK_S, self._watch_terminal)
        # A full collection of the start-up heap (Textual, SQLAlchemy, pydantic: 50 ms and
        # more, 150 in a test process) stops every thread, the screen and the session with
        # it. What start-up made lives as long as the console: collect once now, before any
        # needle runs, and freeze it, so that later collections scan only what came after.
        gc.collect()
        gc.freeze()

    # --- a terminal that went away ----------------------------------------------------------

    _hung_up = False

    def _watch_terminal(self) -> None:
        """A closed terminal window or a dropped ssh link leaves nobody who can see the needle
        or press STOP. SIGHUP does not always say so (a `make` or a shell in between keeps
        it), and Textual reads the dead terminal as endless empty input; its descriptor says
        so at once (POLLHUP). A poll of zero timeout: the UI thread does not wait."""
        if self._hung_up or not terminal_hung_up(sys.__stdin__):
            return
        self._hung_up = True
        log.warning("the terminal hung up: STOP, and the console ends")
        self.hang_up()

    @work(thread=True, exclusive=False, exit_on_error=False, group="stop")
    def hang_up(self) -> None:
        controller = self.controller
        if controller.machine is not None:
            controller.stop(by="the console: its terminal closed")
        # Closing waits for the STOP's latch to be recorded; the session stays open, for
        # the next start to offer to close.
        controller.close()
        self.call_from_thread(self.exit, None, 129)  # 128 + SIGHUP, as a shell reports it

    def connected(self, _: object = None) -> None:
        from console.screens.client import ClientScreen

        self.switch_screen(ClientScreen())

    # --- workers -------------------------------------------------------------------------

    # Not exclusive: every key press is a command the technician meant; the controller runs
    # them one at a time (an exclusive worker would only mark the earlier one cancelled, and
    # a thread cannot be cancelled half-way, so both would run on the same stale state).
    @work(thread=True, exclusive=False, exit_on_error=False, group="machine")
    def machine_call(self, fn: Callable[..., Any], *args: Any, then: Then = None,
                     fail: Fail = None) -> None:
        self._call(fn, args, then, fail)

    @work(thread=True, exclusive=False, exit_on_error=False, group="db")
    def db_call(self, fn: Callable[..., Any], *args: Any, then: Then = None,
                fail: Fail = None) -> None:
        self._call(fn, args, then, fail)

    @work(thread=True, exclusive=False, exit_on_error=False, group="simulator")
    def sim_call(self, *lines: str, done: str = "") -> None:
        """Trainer's controls: commands to the simulator, which may be a socket away."""
        controls = self.controller.simulator
        if controls is None:
            return
        with self._sim_order:  # one command at a time, in the order the keys were pressed
            self._sim_lines(controls, lines, done)

    def _sim_lines(self, controls: Any, lines: tuple[str, ...], done: str) -> None:
        for line in lines:
            try:
                controls.do(line)
            except SmpError as exc:
                self.post_message(Failed(None, exc))
                return
        if done:
            self.post_message(Done(lambda _: self.notify(done, title="Simulator"), None))

    @work(thread=True, exclusive=False, exit_on_error=False, group="stop")
    def stop_call(self) -> None:
        self._call(self.controller.stop, (), self._stopped, None)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], then: Then,
              fail: Fail) -> None:
        try:
            result = fn(*args)
        except SmpError as exc:
            self.post_message(Failed(fail, exc))
            return
        self.post_message(Done(then, result))

    def on_done(self, message: Done) -> None:
        if message.then is not None:
            message.then(message.result)

    def on_failed(self, message: Failed) -> None:
        if message.fail is not None:
            message.fail(message.error)
        else:
            self.notify(str(message.error), title="Not done", severity="error", timeout=10)

    # --- what may be shown ---------------------------------------------------------------

    def shown(self, text: str) -> Text:
        """A line for the screen (an error, a notice): escaped, never read as markup, and in
        presentation mode without the current client's name, or any e-mail, date or phone."""
        if self.presentation:
            client = self.workflow.get("client")
            text = redact(text, {client.name: client.alias} if client else {})
        return plain(text)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        super().notify(str(self.shown(message)), title=str(self.shown(title)),
                       severity=severity, timeout=timeout, markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The one place where unexpected worker errors end up: logged, shown in one line.
        if event.state == WorkerState.ERROR:
            # Never the error's text on screen: it may quote a record's values.
            path = crash.write(event.worker.error or RuntimeError("no error given"))
            log.error("worker %s failed; details in %s", event.worker.name, path)
            self.notify(f"internal error ({type(event.worker.error).__name__}); details in "
                        f"{path}", title="Internal error", severity="error", timeout=15)

    # --- crashes ---------------------------------------------------------------------------

    crash_file: Path | None = None

    def _handle_exception(self, error: Exception) -> None:
        self.crash_file = crash.write(error)
        super()._handle_exception(error)  # exits, through _fatal_error below

    def _fatal_error(self) -> None:
        # Textual's report prints every frame's local variables (the client's phone, e-mail,
        # allergies...): nothing here; run() prints one line once the terminal is back.
        self.bell()
        self._close_messages_no_wait()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        result = super().run(*args, **kwargs)
        if self.crash_file is not None:
            print(crash.line(self.crash_file), file=sys.stderr)  # one line, never wrapped
        return result

    # --- views ---------------------------------------------------------------------------

    def on_view_changed(self, message: ViewChanged) -> None:
        self.view = message.view
        if not self.screen_stack:  # starting, or ending: nothing to show it on
            return
        # Under a dialog the screen beneath keeps its banner current too.
        screens = self.screen_stack[-2:] if isinstance(self.screen, ModalScreen) else [
            self.screen]
        for screen in screens:
            show = getattr(screen, "show", None)
            if show is not None:
                show(self.view)

    # --- actions available everywhere ------------------------------------------------------

    def action_stop(self) -> None:
        if self.controller.machine is None:
            self.notify("STOP: no machine is connected", severity="warning")
            return
        self.stop_call()

    def _stopped(self, outcome: tuple[bool, str]) -> None:
        # What happened to the machine and to the record, each said on its own.
        acked, record = outcome
        if acked:
            self.notify(f"STOP done: acknowledged by the machine; record: {record}",
                        title="STOPPED", severity="warning")
        else:
            self.notify("STOP sent, not acknowledged (the machine's watchdog stops the "
                        f"needle); record: {record}", title="STOP", severity="error")

    def action_stop_space(self) -> None:
        self.action_stop()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_palette":
            from textual.command import CommandPalette

            return isinstance(self.screen, CommandPalette)
        if action == "stop_space":
            # The space bar types into text fields and toggles check boxes; there Esc stops.
            from textual.widgets import Input, SelectionList, TextArea
            from textual.widgets._toggle_button import ToggleButton

            return not isinstance(self.focused, Input | TextArea | ToggleButton |
                                  SelectionList)
        return True

    async def action_close_palette(self) -> None:
        await self.screen.run_action("escape")  # the palette's own way out

    def action_help(self) -> None:
        from console.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_history(self) -> None:
        from console.screens.browsers import ConsoleHistoryScreen

        self._browse(ConsoleHistoryScreen, lambda: ConsoleHistoryScreen(RecordReader(self.store)))

    def action_protocols(self) -> None:
        from console.screens.browsers import ConsoleProtocolsScreen

        self._browse(ConsoleProtocolsScreen, ConsoleProtocolsScreen)

    def _browse(self, kind: type, make: Callable[[], Any]) -> None:
        """One browser open at a time: F4 and F5 go back to the one open (closing the replay
        over it) or put the other in its place, never a second on the stack, so F10 always
        comes back to the screen the browser was opened from."""
        from console.screens.browsers import BROWSERS

        stack = self.screen_stack
        below = next((s for s in reversed(stack) if isinstance(s, BROWSERS)), None)
        if below is None:
            self.push_screen(make())
            return
        while self.screen is not below:
            self.pop_screen()
        if not isinstance(below, kind):
            self.switch_screen(make())

    def action_presentation(self) -> None:
        """On at once; off only after the deliberate answer of PresentationOff."""
        from console.screens.presentation import PresentationOff

        if not self.presentation:
            self.presentation = True
        elif not isinstance(self.screen, PresentationOff):
            self.push_screen(PresentationOff(), self._presentation_answer)

    def _presentation_answer(self, show: bool | None) -> None:
        if show:
            self.presentation = False

    def watch_presentation(self, on: bool) -> None:
        self.sub_title = "PRESENTATION" if on else ""
        for screen in self.screen_stack:
            changed = getattr(screen, "presentation_changed", None)
            if changed is not None:
                changed(on)
        self.notify("presentation mode: client identities and health data hidden" if on
                    else "presentation mode off: client identities are shown",
                    title="Presentation")

    def arm(self) -> None:
        """Ask, then arm: after STOP or a fault the question says the latch will be cleared."""
        from console.screens.confirm import Confirm

        state, work = self.view.machine.state, self.view.work
        if work is not None and work.zone is None:  # refused before asking, not after
            self.notify(f"choose a zone before arming (keys {self.zone_keys()})",
                        severity="error",
                        title="Not armed")
            return
        if state == MachineState.STOPPED:
            question = ("The machine is STOPPED. Clear the latch and RE-ARM?\n"
                        "The needle runs again when the pedal is pressed.")
        elif state == MachineState.FAULT:
            question = (f"The machine has a fault latched ({self.view.machine.fault_cause}). "
                        "Clear it and RE-ARM?\nThe needle runs again when the pedal is "
                        "pressed.")
        else:
            question = "ARM the machine?\nThe needle runs when the pedal is pressed."

        def answered(yes: bool | None) -> None:
            if yes:
                self.machine_call(self.controller.arm,
                                  then=lambda _: self.notify("ARMED", title="Machine"))

        self.push_screen(Confirm(question, yes="Arm", no="Cancel"), answered)

    def zone_keys(self) -> str:
        from console.widgets.scalp import ZONE_KEYS

        first, *_, last = ZONE_KEYS
        return f"{self.key(f'work.zone-{first.value}')}-{self.key(f'work.zone-{last.value}')}"

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield SystemCommand("STOP", "Stop the needle now", self.action_stop)
        if self.controller.machine is not None and self.view.work is not None:
            yield SystemCommand("Arm / re-arm", "Arm the machine (asks first)", self.arm)
            yield SystemCommand("Disarm", "Disarm the machine",
                                lambda: self.machine_call(self.controller.disarm))
            yield SystemCommand("Repeat last session's settings",
                                "Apply this zone's settings from the client's last session",
                                lambda: self.machine_call(self.controller.repeat_last))
        yield SystemCommand("History", "Clients, sessions, recall by lot, touch-ups due, exports",
                            self.action_history)
        yield SystemCommand("Protocols", "The protocol library, resolved for a stage and skin",
                            self.action_protocols)
        yield SystemCommand("Keys", "Every key of the console", self.action_help)
        yield SystemCommand("Presentation mode", "Hide client identities and health data",
                            self.action_presentation)
        yield from super().get_system_commands(screen)

    async def action_quit(self) -> None:
        """Quit; with the needle armed or running, STOP first, then ask. With a session open,
        ask: it stays open in the record (the next start offers to close it)."""
        from console.screens.confirm import Confirm

        m, work = self.view.machine, self.view.work
        if isinstance(self.screen, Confirm) and self.screen.id == "quit":
            return  # already asking
        live = m.connected and m.state in (MachineState.ARMED, MachineState.RUNNING)
        if live:
            self.controller.stop_now("the console: quitting")
        if not live and work is None:
            self.exit(0)
            return
        if not live:
            said = ""
        elif m.stale or m.link == Link.LOST:  # what it last said is not what it is doing now
            said = (f"The machine is not answering (last reported {m.state.value}): STOP sent; "
                    "without the console's heartbeat its watchdog stops the needle.\n")
        else:
            said = f"The machine was {m.state.value}: STOP sent.\n"
        if work is not None:
            said += (f"Session {work.session_id} is still open: quit without ending it? It "
                     "stays open in the record; the next start offers to close it.")
        else:
            said += "Quit the console?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit(0)

        self.push_screen(Confirm(said, yes="Quit", no="Stay", id="quit"), answered)

    def on_unmount(self) -> None:
        # However the app ends (quit, a hang-up, an error), the machine is released and the
        # session's threads end: the session itself stays open in the record.
        self.controller.close()
        gc.unfreeze()  # what start-up made may be garbage now (a test process starts many)


def make_app(store: Store, *, url: str | None = None, config: ConsoleConfig | None = None,
             controller: SessionController | None = None) -> SmpApp:
    """The one way to build the console, for the command line and the tests."""
    return SmpApp(store, url=url, config=config, controller=controller)
