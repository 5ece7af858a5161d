"""What must be on screen without scrolling, at the smallest terminal a clinic has (80x24) and
at the sizes around it: STOP, the state in words, the confirmed depth, rate and voltage, the
zone, and the banners (issue: at 80x24 the confirmed settings and the profile were not
visible at all)."""

from __future__ import annotations

import asyncio

import pytest
from textual.geometry import Region

from console.app import make_app
from console.widgets.banner import Banner
from console.widgets.machine import MachinePanel
from tests.console.test_snapshots import FAULTED, LOST, RUNNING, _working


def _on_screen(app, widget) -> Region:
    """The part of `widget` the terminal shows (the footer's row is not the screen's)."""
    screen = Region(0, 0, app.size.width, app.size.height - 1)
    return widget.region.intersection(screen)


def _lines_shown(app, widget) -> list[str]:
    """The lines of `widget`'s text that are on screen (inside its border)."""
    region = _on_screen(app, widget)
    inner = region.height - (widget.region.height - widget.content_region.height)
    return str(widget.render()).split("\n")[:max(0, inner)]


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (200, 60)])
@pytest.mark.parametrize("view", [RUNNING, FAULTED, LOST], ids=["running", "fault",
                                                                "link-lost"])
def test_at_80x24_the_working_screen_shows_stop_state_settings_zone_and_banners(store, size,
                                                                                view):
    app = make_app(store)

    async def run():
        async with app.run_test(size=size) as pilot:
            await _working(view)(pilot)
            screen = app.screen
            stop = screen.query_one("#stop-button")
            assert _on_screen(app, stop).height >= 3, "STOP is not fully on screen"
            banner = "\n".join(str(b.render()) for b in screen.query(Banner))
            assert "SIMULATOR" in banner
            if view is FAULTED:
                assert "FAULT" in banner
            if view is LOST:
                assert "LINK LOST" in banner
            state = _lines_shown(app, screen.query_one(MachinePanel).query_one("#state"))
            assert state and state[0].startswith("Machine: "), state
            assert view.machine.state.value in state[0] or "UNKNOWN" in state[0]
            profile = "\n".join(_lines_shown(app, screen.query_one("#profile")))
            for shown in ("Hairline", "hairline-soft", "depth   1.55 mm", "rate    110.0 Hz",
                          "voltage 6.5 V"):
                assert shown in profile, f"{shown!r} is not on screen:\n{profile}"

    asyncio.run(run())


@pytest.mark.parametrize("size", [(120, 40), (200, 60)])
def test_zone_tiles_show_run_time_and_coverage_even_on_the_smallest_tile(store, size):
    """Each tile's two lines fit its width, so nothing wraps out of sight (the coverage of
    Mid-scalp and Part line was lost to wrapping)."""
    from console.widgets.scalp import ZoneCell

    app = make_app(store)

    async def run():
        async with app.run_test(size=size) as pilot:
            await _working(RUNNING)(pilot)
            for cell in app.screen.query(ZoneCell):
                status = next(z for z in RUNNING.work.zones if z.zone is cell.zone)
                name, figures = str(cell.render()).split("\n")
                assert max(len(name), len(figures)) <= cell.content_region.width, cell.zone
                if status.planned:
                    minutes, seconds = divmod(status.run_ms // 1000, 60)
                    cover = "--" if status.coverage_pct is None else status.coverage_pct
                    assert figures.startswith(f"{minutes}:{seconds:02d} {cover}%"), figures
                else:
                    assert figures == "unplanned"

    asyncio.run(run())


def test_at_200x60_the_map_grows_with_the_screen(store):
    """Why: at 200x60 the map stayed narrow (the width of a 120-column screen's)."""
    from console.widgets.scalp import ScalpMap, ZoneCell

    sizes = {}

    async def run(size):
        app = make_app(store)
        async with app.run_test(size=size) as pilot:
            await _working(RUNNING)(pilot)
            cell = app.screen.query(ZoneCell).first()
            sizes[size] = (app.screen.query_one(ScalpMap).region.width, cell.region.size)

    for size in ((120, 40), (200, 60)):
        asyncio.run(run(size))
    (small, small_cell), (big, big_cell) = sizes[(120, 40)], sizes[(200, 60)]
    assert big >= small * 1.4, sizes
    assert big_cell.width > small_cell.width and big_cell.height > small_cell.height, sizes
