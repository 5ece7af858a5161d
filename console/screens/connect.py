"""Connect: the serial ports found (never probed) and the simulator."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console.screens.base import SmpScreen
from console.widgets.text import plain

SIM = "simulator"  # `smp sim --pty` in a process of its own (sim:// is the in-process one)


class ConnectScreen(SmpScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "connect('simulator')", "Simulator", id="connect.simulator",
                tooltip="Connect to the simulated machine"),
        Binding("r", "rescan", "Rescan ports", id="connect.rescan",
                tooltip="List the serial ports again"),
    ]

    def __init__(self, url: str | None = None) -> None:
        super().__init__()
        self.url = url

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        yield Static("Connect to a machine", classes="title")
        yield Static("Serial ports found (smp ports), and the simulator. Enter connects.",
                     classes="hint")
        yield OptionList(id="ports")
        yield Static(id="error", classes="error")

    def on_mount(self) -> None:
        self.action_rescan()
        if self.url:
            self.action_connect(self.url)

    def action_rescan(self) -> None:
        from firmware_bridge import ports as found

        ports = self.query_one("#ports", OptionList)
        ports.clear_options()
        ports.add_option(Option("Simulator: a simulated machine on a pty of its own "
                                f"({self.app.key('connect.simulator')})", id=SIM))
        for device, desc, vid_pid, serial in found.found():
            ports.add_option(Option(plain(f"{device}  {desc}  {vid_pid}  {serial}"), id=device))
        ports.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:  # every option has one: a port, or SIM
            self.action_connect(event.option.id)

    def action_connect(self, url: str) -> None:
        error = self.query_one("#error", Static)
        error.update(self.app.shown(f"connecting to {url} ..."))
        controller = self.app.controller
        call, args = (controller.connect_simulator, ()) if url == SIM else (controller.connect,
                                                                            (url,))
        self.app.machine_call(call, *args, then=self.app.connected,
                              fail=lambda exc: error.update(self.app.shown(f"error: {exc}")))
