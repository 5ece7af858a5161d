"""Found by this suite: a machine that falls silent right after acknowledging ARM, before any
telemetry showed it armed, ran on with the pedal down while the host, believing it disarmed,
judged the link LOST and sent no STOP (the machine still heard the heartbeat, so its watchdog
never fired). The host now counts an acknowledged ARM as armed until telemetry says otherwise.

Deterministic, so in-process: the simulator's own filter withholds every telemetry frame, then
everything, at exactly the moments that matter.
"""

from __future__ import annotations

from firmware_bridge.codec import MsgType
from firmware_bridge.events import LinkState
from sim.serve import PtyServer
from tests.link.conftest import FrameFilter, connected, wait_for
from tests.sim.test_sim_process import CROWN


def test_a_machine_silent_after_acking_arm_is_stopped_by_the_host():
    server = PtyServer.simulate(baud=115200, seed=3)
    server.start()
    fw = server.machine.firmware
    silent = False
    server.machine.machine_to_host = FrameFilter(
        lambda f: 0 if silent or (f.type == MsgType.TELEMETRY and fw.handshaken) else 1)
    try:
        with connected(server.address) as host:
            assert host.apply(CROWN) == CROWN
            host.arm()  # acknowledged; no telemetry has told the host the machine is armed
            server.machine.press_pedal(True)
            assert fw.motor_on
            silent = True
            assert wait_for(lambda: host.link_state == LinkState.LOST, timeout=2)
            assert wait_for(lambda: not fw.motor_on, timeout=1), "needle ran on, no STOP sent"
            assert [e.what for e in fw.log if e.what == "STOP"]
            host.close(disarm=False)
    finally:
        server.close()
