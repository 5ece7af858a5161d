"""What every console screen has: the banner on top and the key bindings in the footer, and a
hook for presentation mode changing (the app calls it on every screen and dialog)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import ActiveBinding
from textual.screen import ModalScreen, Screen, ScreenResultType
from textual.widgets import Footer

from console.view import View
from console.widgets.banner import Banner

if TYPE_CHECKING:
    from console.app import SmpApp


class SmpScreen(Screen[Any]):
    """A full screen of the workflow. `show(view)` is called with every new view, but only
    once the screen is built (`ready`): views arrive from the session's thread at any time."""

    if TYPE_CHECKING:  # they run in the console's app only: its attributes, typed
        @property
        def app(self) -> SmpApp: ...  # type: ignore[override]  # narrowed, never assigned

    ready = False
    # Binding ids the footer shows first, in this order, the others after them as declared: a
    # footer longer than the window is cut at its end, and what is cut must not be STOP or
    # the way on (every key stays in the F2 list).
    FOOTER_FIRST: ClassVar[tuple[str, ...]] = ()

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        found = super().active_bindings
        rank = {bid: i for i, bid in enumerate(self.FOOTER_FIRST)}
        first = sorted((k for k, b in found.items() if b.binding.id in rank),
                       key=lambda k: rank.get(found[k].binding.id or "", 0))
        return {**{k: found[k] for k in first}, **found}

    def compose_frame(self) -> ComposeResult:
        yield Banner(id="banner")
        yield Footer()

    # What must be mounted before the screen is ready (a selector list): widgets nested in
    # rows mount after the screen's own on_mount, and a view or a key may come in between.
    READY_WHEN: ClassVar[str] = ""

    def on_mount(self) -> None:
        self._get_ready()

    def _get_ready(self) -> None:
        want = self.READY_WHEN
        if want and len(self.query(want)) < want.count(",") + 1:
            if self.is_attached:
                self.call_after_refresh(self._get_ready)
            return
        self.ready = True
        # The view as it is now: one that came before (a resume can come before the banner
        # is mounted, and the next view may be a while) is shown, SIMULATOR or LINK LOST too.
        self.show(self.app.view)
        self.became_ready()

    def became_ready(self) -> None:
        """What the screen does once all of it is there (the working screen shows itself)."""

    def focus_first(self, selector: str) -> None:
        """Focus the first `selector` once it is there: widgets nested in rows mount after
        the screen's on_mount (a query then finds nothing)."""
        if not self.is_attached:
            return
        found = self.query(selector)
        if found:
            found.first().focus()
        else:
            self.call_after_refresh(self.focus_first, selector)

    def on_screen_resume(self) -> None:
        self.show(self.app.view)

    def show(self, view: View) -> None:
        for banner in self.query(Banner):
            banner.show(view)

    def presentation_changed(self, on: bool) -> None:
        """Show again whatever depends on presentation mode (a screen with names adds to it)."""
        self.show(self.app.view)


class SmpModal(ModalScreen[ScreenResultType]):
    """A dialog; the banner stays visible on the screen beneath it."""

    if TYPE_CHECKING:
        @property
        def app(self) -> SmpApp: ...  # type: ignore[override]  # as SmpScreen's

    def show(self, view: View) -> None:
        """Nothing of its own to update: the app shows each view to the screen beneath."""

    def presentation_changed(self, on: bool) -> None:
        """A dialog showing a name or health data shows it again (see Confirm)."""
