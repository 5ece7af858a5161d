"""The working screen: scalp map, resolved profile, confirmed settings, machine, STOP."""

from __future__ import annotations

import functools
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from console.screens.base import SmpScreen
from console.view import MachineState, View, ZoneStatus, cartridge_refusal
from console.widgets.machine import MachinePanel
from console.widgets.scalp import ZONE_KEYS, ScalpMap, ZoneCell, zone_figures
from console.widgets.stop import StopButton
from console.widgets.text import set_text, settings_lines
from console.workflow import TRAINING_LOT, training_expiry
from protocols import DEPTH, VOLTAGE, Zone

SKINS = ("air", "normal", "thin", "thick", "scar")
SIM_ACTIONS = {"pedal", "skin", "fault", "clear", "scenario"}


def _zone_bindings() -> list[Binding]:
    out = []
    for i, (zone, key) in enumerate(ZONE_KEYS.items()):
        out.append(Binding(key, f"zone('{zone.value}')", "Zone" if i == 0 else zone.label,
                           show=i == 0, key_display="1-0" if i == 0 else None,
                           id=f"work.zone-{zone.value}", tooltip=f"Work on {zone.label}"))
    return out


class WorkScreen(SmpScreen):
    # At 80 columns the map gives way, so that STOP, the state, the confirmed settings and
    # the zone are all on screen (app.tcss); from 170 the map widens with the window.
    # (ignore: Textual declares these `ClassVar[...] | None`, which mypy reads as instance's)
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [  # type: ignore[misc]
        (0, "-narrow"), (110, "-normal"), (170, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [  # type: ignore[misc]
        (0, "-short"), (32, "-tall")]
    # At 80 columns the footer holds STOP, arming, ending, zones and F2 (every key), at 120
    # the app's keys too; the settings keys are written beside the settings as well.
    FOOTER_FIRST: ClassVar[tuple[str, ...]] = (
        "stop", "work.arm", "work.disarm", "work.end", f"work.zone-{next(iter(ZONE_KEYS)).value}",
        "help", "presentation", "history", "protocols")
    BINDINGS: ClassVar[list[BindingType]] = [
        *_zone_bindings(),
        Binding("u", "adjust('depth_mm', 1)", "Depth+", id="work.depth-up",
                tooltip=f"Needle depth up one step ({DEPTH.step} mm)"),
        Binding("j", "adjust('depth_mm', -1)", "Depth-", id="work.depth-down",
                tooltip=f"Needle depth down one step ({DEPTH.step} mm)"),
        Binding("i", "adjust('rate_hz', 10)", "Rate+", id="work.rate-up",
                tooltip="Stroke rate up 1 Hz"),
        Binding("k", "adjust('rate_hz', -10)", "Rate-", id="work.rate-down",
                tooltip="Stroke rate down 1 Hz"),
        Binding("o", "adjust('voltage_v', 1)", "Volt+", id="work.volt-up",
                tooltip=f"Voltage up one step ({VOLTAGE.step} V)"),
        Binding("l", "adjust('voltage_v', -1)", "Volt-", id="work.volt-down",
                tooltip=f"Voltage down one step ({VOLTAGE.step} V)"),
        Binding("v", "profile", "Profile", id="work.profile",
                tooltip="Choose another of this zone's profiles (e.g. a defined hairline)"),
        Binding("r", "repeat", "Repeat last", id="work.repeat",
                tooltip="The settings used longest on this zone at the client's last session "
                        "that ran the needle there"),
        Binding("m", "mark_pass", "Pass done", id="work.pass",
                tooltip="Mark a pass over this zone as done (the record counts them)"),
        Binding("a", "arm", "Arm", id="work.arm",
                tooltip="Arm (asks first); after STOP or a fault, clears it and re-arms"),
        Binding("x", "disarm", "Disarm", id="work.disarm", tooltip="Disarm the machine"),
        Binding("full_stop", "coverage(10)", "Cover+", id="work.cover-up",
                tooltip="Coverage of this zone up 10%"),
        Binding("comma", "coverage(-10)", "Cover-", id="work.cover-down",
                tooltip="Coverage of this zone down 10%"),
        Binding("e", "end", "End session", id="work.end",
                tooltip="Coverage, notes, aftercare and the next session"),
        Binding("p", "pedal", "Pedal", id="work.sim-pedal",
                tooltip="Simulator: press or release the foot pedal"),
        Binding("t", "skin", "Skin", id="work.sim-skin",
                tooltip="Simulator: the next skin type under the needle"),
        Binding("f", "fault", "Fault", id="work.sim-fault",
                tooltip="Simulator: trigger a fault"),
        Binding("c", "clear", "Clear cause", id="work.sim-clear",
                tooltip="Simulator: remove every fault cause (the latch stays)"),
        Binding("g", "scenario", "Scenario", id="work.sim-scenario",
                tooltip="Simulator: play a trainer scenario"),
        Binding("question_mark", "app.help", "Keys", show=False, id="work.help",
                tooltip="Every key"),
    ]

    READY_WHEN = "ScalpMap, MachinePanel, #session, #profile, #log, #sim"  # what show() fills
    skin = 0  # which of SKINS the simulator's needle is on

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        yield Static(id="session", classes="title")
        with Horizontal(id="work-body"):
            with Vertical(id="left"):
                yield ScalpMap(id="map", keys={z: self.app.key(f"work.zone-{z.value}")
                                               for z in Zone})
            with Vertical(id="middle"):
                yield Static(id="profile")
                yield Static(id="log")
            with Vertical(id="right"):
                yield StopButton(self.app.key("stop-space", "stop"))
                yield MachinePanel(id="machine")
                yield Static(id="sim")

    def became_ready(self) -> None:
        self.query_one("#profile").border_title = "zone and settings (confirmed)"
        # The console's own lines: several (key hints, "pass 2 done") are not in the record,
        # so the panel does not claim to be it (F4 shows the record).
        self.query_one("#log").border_title = "console log"

    def show(self, view: View) -> None:
        super().show(view)
        if not self.ready or not self.query(ScalpMap):
            return  # not all mounted yet (shown once it is), or being taken down
        w, m = view.work, view.machine
        self.query_one(ScalpMap).show(w)
        self.query_one(MachinePanel).show(view)
        if w is None:
            set_text(self.query_one("#session", Static), "no session open")
            return
        key, zones = self.app.key, self.app.zone_keys()
        zone = w.zone.label if w.zone else f"none: press a zone key ({zones})"
        set_text(self.query_one("#session", Static),
            f"Session {w.session_id}  client "
            f"{w.client_alias if self.app.presentation else w.client}  {w.stage.label}  "
            f"zone {zone}   [{m.identity}]")
        applied = m.applied
        if w.zone is None:
            settings = f"settings: none for this session yet (choose a zone: {zones})"
        elif not m.settings_known:
            settings = ("SETTINGS NOT CONFIRMED: the machine did not answer; its settings are "
                        "unknown until it reports them (apply again before arming)")
        elif applied is None:
            settings = "settings: none confirmed" + (
                " (arm sends them again)" if w.zone else "")
        else:
            keys = [f"{key(f'work.{q}-up')}/{key(f'work.{q}-down')}"
                    for q in ("depth", "rate", "volt")]
            settings = settings_lines(applied, (keys[0], keys[1], keys[2]))
        reasons = "\n".join(f"- {r}" for r in w.reasons) or (
            "- the base profile as written" if w.zone else "- (no zone yet)")
        advisories = "\n".join(f"! {a}" for a in w.advisories)
        target = f", target {w.target_density_pct}% density" if w.target_density_pct else ""
        others = (f"  [{key('work.profile')}: {len(w.profiles)} for this zone]"
                  if len(w.profiles) > 1 else "")
        # The zone's figures here too: below 110 columns the map gives way to this box.
        here = next((z for z in w.zones if z.zone is w.zone), None)
        figures = f"  [{zone_figures(here)}]" if here else ""
        # The cartridge on the machine, as the technician confirmed fitting it for this zone.
        fitted = f"  {w.fitted.text}" if here and w.fitted else ""
        set_text(self.query_one("#profile", Static),
            f"{zone}{figures}{fitted}  profile {w.profile or '-'}{others}{target}\n{settings}\n"
            f"why:\n{reasons}"
            + (f"\n{advisories}" if advisories else ""))
        # Newest first: on a small screen the box's end is out of sight, its top is not.
        set_text(self.query_one("#log", Static), "\n".join(reversed(view.log)))
        sim = self.app.controller.simulator
        box = self.query_one("#sim", Static)
        box.display = m.simulator and sim is not None
        if sim is not None:
            caption = f"\nsay: {m.sim_caption}" if m.sim_caption else ""
            set_text(box, f"SIMULATOR controls: {key('work.sim-pedal')} pedal, "
                          f"{key('work.sim-skin')} skin ({SKINS[self.skin]}), "
                          f"{key('work.sim-fault')} fault, {key('work.sim-clear')} clear causes, "
                          f"{key('work.sim-scenario')} scenario{caption}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SIM_ACTIONS:
            return self.app.controller.simulator is not None
        return True

    # --- the workflow --------------------------------------------------------------------

    def on_zone_cell_clicked(self, event: ZoneCell.Clicked) -> None:
        self.action_zone(event.zone.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "stop-button":
            event.stop()
            self.app.action_stop()

    def action_zone(self, zone: str) -> None:
        from console.screens.confirm import Confirm

        chosen, w = Zone(zone), self.app.view.work
        if w is None or w.zone is chosen:
            self.app.machine_call(self.app.controller.select_zone, chosen)
            return
        status = next(z for z in w.zones if z.zone is chosen)
        if status.planned:
            self._fit_then_select(status)
            return
        if self._refused(status):  # said before asking anything
            return
        armed = self.app.view.machine.state in (MachineState.ARMED, MachineState.RUNNING)

        def answered(yes: bool | None) -> None:
            if yes:
                self._fit_then_select(status, unplanned=True)

        self.app.push_screen(Confirm(
            f"{chosen.label} is not in today's plan." + (" The machine is ARMED." if armed
                                                         else "")
            + f"\nWork on {chosen.label}? Its settings are sent to the machine.",
            yes="Work on it", no="Cancel"), answered)

    def _fit_then_select(self, status: ZoneStatus, *, unplanned: bool = False) -> None:
        """Select the zone; first, if its cartridge is not the one fitted (or it has none yet:
        an unplanned zone), ask for it to be fitted: confirming selects the zone."""
        from console.screens.cartridge import FitCartridge

        app, zone, w = self.app, status.zone, self.app.view.work
        if w is None:  # the session ended meanwhile: no zone to work on
            return
        known, fitted = status.cartridge, w.fitted
        if known is not None and known.same(fitted):
            app.machine_call(functools.partial(app.controller.select_zone,
                                               unplanned=unplanned), zone)
            return
        if self._refused(status):
            return
        if known is not None:  # as planned, or as last fitted for this unplanned zone
            code, lot, expiry = known.needle.code, known.lot, known.expiry.isoformat()
        else:  # its profile's needle; the lot of the cartridge on the machine if it is one
            entries = app.controller.library.for_zone(zone)
            code = entries[0].profile.needle.code if entries else ""
            same = fitted if fitted is not None and fitted.needle.code == code else None
            training = app.view.machine.simulator
            lot = same.lot if same else TRAINING_LOT if training else ""
            expiry = (same.expiry.isoformat() if same else
                      training_expiry().isoformat() if training else "")
        app.push_screen(FitCartridge(zone, code, lot, expiry, fitted=fitted,
                                     unplanned=unplanned))

    def _refused(self, status: ZoneStatus) -> bool:
        """A cartridge change the machine's state forbids, said at once: the lot is not typed
        in for nothing (the controller refuses it too, on the state as it knows it)."""
        w = self.app.view.work
        if status.cartridge is not None and status.cartridge.same(w.fitted if w else None):
            return False  # no change
        refused = cartridge_refusal(self.app.view.machine, self.app.key("work.disarm"))
        if refused:
            self.app.notify(refused, title="Not done", severity="error", timeout=10)
        return bool(refused)

    def action_adjust(self, field: str, steps: int) -> None:
        self.app.machine_call(self.app.controller.adjust, field, steps)

    def action_profile(self) -> None:
        from console.screens.choose import Choose

        w = self.app.view.work
        if w is None or w.zone is None:
            self.app.notify("choose a zone first", severity="warning")
            return
        zone, current = w.zone, w.profile
        items = [(name, f"{name}{' (in use)' if name == current else ''}: {notes}")
                 for name, notes in self.app.controller.profiles_for(zone)]

        def chosen(name: str | None) -> None:
            if name and name != current:
                self.app.machine_call(self.app.controller.select_zone, zone, name)

        self.app.push_screen(Choose(f"Profile for {zone.label}", items), chosen)

    def action_repeat(self) -> None:
        self.app.machine_call(self.app.controller.repeat_last, then=self.app.notify)

    def action_mark_pass(self) -> None:
        self.app.machine_call(self.app.controller.mark_pass,
                              then=lambda n: self.app.notify(f"pass {n} done"))

    def action_arm(self) -> None:
        self.app.arm()

    def action_disarm(self) -> None:
        self.app.machine_call(self.app.controller.disarm)

    def action_coverage(self, delta: int) -> None:
        w = self.app.view.work
        if w is None or w.zone is None:
            self.app.notify("choose a zone first", severity="warning")
            return
        # The controller adds to its own figure: quick presses each count.
        self.app.db_call(self.app.controller.bump_coverage, delta)

    def action_end(self) -> None:
        from console.screens.end import EndScreen

        self.app.switch_screen(EndScreen())

    # --- simulator controls ----------------------------------------------------------------

    def action_pedal(self) -> None:
        self.app.sim_call(f"pedal {'up' if self.app.view.machine.pedal else 'down'}")

    def action_skin(self) -> None:
        self.skin = (self.skin + 1) % len(SKINS)
        self.app.sim_call(f"skin {SKINS[self.skin]}")
        self.show(self.app.view)

    def action_fault(self) -> None:
        from console.screens.choose import Choose
        from sim.scenario import FAULTS

        items = [(name, f"{name} {help_}".strip()) for name, (help_, _) in FAULTS.items()]

        def chosen(name: str | None) -> None:
            if name:
                value = {"link-drop": 0.6, "silent": 0.6, "delay-frames": 0.2,
                         "garbage": 64, "depth-short": 500}.get(name)
                rates = {"bit-errors": 1e-4, "drop-bytes": 0.01, "dup-bytes": 0.01,
                         "drop-frames": 0.05, "dup-frames": 0.05, "reorder-frames": 0.05}
                value = rates.get(name, value)
                self.app.sim_call(f"fault {name}" + ("" if value is None else f" {value}"),
                                  done=f"simulator: {name}")

        self.app.push_screen(Choose("Trigger a fault", items), chosen)

    def action_clear(self) -> None:
        from sim.scenario import CLEARABLE

        self.app.sim_call(*(f"clear {name}" for name in CLEARABLE),
                          done="simulator: every fault cause removed; a latched fault still "
                               f"needs re-arming ({self.app.key('work.arm')})")

    def action_scenario(self) -> None:
        from importlib import resources

        from console.screens.choose import Choose
        from sim.scenario import find

        names = sorted(p.name.removesuffix(".txt")
                       for p in resources.files("sim").joinpath("scenarios").iterdir()
                       if p.name.endswith(".txt"))

        def chosen(name: str | None) -> None:
            if name:
                self.app.sim_call(f"play {name}", done=find(name).description)

        # Each with the first sentence of its description: what it shows, before it plays.
        items = [(n, f"{n}: {find(n).description.split('. ')[0].rstrip('.')}") for n in names]
        self.app.push_screen(Choose("Play a trainer scenario", items), chosen)
