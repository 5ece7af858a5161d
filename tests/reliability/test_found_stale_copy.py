"""Found by this suite (reordered frames): a retransmitted SET whose late copy arrived after the
host's next command was executed again, putting back the older setpoint while the host had
recorded the newer one. Equality with the last command is not enough once frames can be
reordered; the machine now also refuses to execute again any of its last few commands.

Deterministic, on the firmware's fake clock: copy, next command, then the stale copy.
"""

from __future__ import annotations

from firmware_bridge.codec import PROTOCOL_VERSION, Hello, Set, encode
from protocols.settings import WireSettings
from sim.clock import FakeClock
from sim.firmware import Firmware

OLD = WireSettings(1800, 1300, 7500)
NEW = WireSettings(1850, 1300, 7500)


def test_a_stale_copy_of_an_older_set_is_not_executed_again():
    fw = Firmware(FakeClock(), boot_id=1)
    fw.feed(encode(Hello(PROTOCOL_VERSION), seq=3))
    fw.feed(encode(Set(*OLD), seq=4))
    fw.feed(encode(Set(*NEW), seq=5))
    fw.feed(encode(Set(*OLD), seq=4))  # the retransmission, overtaken by seq 5
    assert fw.applied == NEW
    assert fw.sets_applied == 2
    assert [e.detail for e in fw.log if e.what == "duplicate"] == ["SET: stale copy"]


def test_the_last_command_repeated_is_still_answered_and_a_new_session_starts_afresh():
    fw = Firmware(FakeClock(), boot_id=1)
    fw.feed(encode(Hello(PROTOCOL_VERSION), seq=3))
    fw.feed(encode(Set(*OLD), seq=4))
    fw.take_output()
    fw.feed(encode(Set(*OLD), seq=4))
    assert fw.take_output()  # answered again, byte for byte, not executed
    assert fw.sets_applied == 1
    fw.feed(encode(Hello(PROTOCOL_VERSION), seq=200))  # a new host may use any numbers
    fw.feed(encode(Set(*NEW), seq=4))
    assert fw.applied == NEW and fw.sets_applied == 2
