import pytest

from sim.linkfaults import FaultyChannel, LinkFaults
from sim.pacing import BaudPacer

FRAMES = [bytes([i + 1, 7, 9, 0]) for i in range(200)]
STREAM = b"".join(FRAMES)


def delivered(ch, data=STREAM, now=0.0):
    return b"".join(chunk for _, chunk in ch.process(data, now))


def test_no_faults_is_transparent():
    assert delivered(FaultyChannel()) == STREAM


def test_the_same_seed_replays_the_same_faults():
    f = LinkFaults(bit_error_rate=0.01, drop_frame_rate=0.1, dup_byte_rate=0.01)
    assert delivered(FaultyChannel(f, seed=7)) == delivered(FaultyChannel(f, seed=7))
    assert delivered(FaultyChannel(f, seed=7)) != delivered(FaultyChannel(f, seed=8))


def test_bit_errors_flip_about_the_asked_share_of_bits():
    ch = FaultyChannel(LinkFaults(bit_error_rate=0.01), seed=1)
    out = delivered(ch, STREAM * 20)
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(out, STREAM * 20, strict=True))
    bits = len(STREAM) * 20 * 8
    assert flipped == ch.counts["bits_flipped"]
    assert 0.5 * 0.01 * bits < flipped < 1.5 * 0.01 * bits


def test_dropped_and_duplicated_frames_are_whole_frames():
    ch = FaultyChannel(LinkFaults(drop_frame_rate=0.2, dup_frame_rate=0.2), seed=3)
    out = delivered(ch)
    frames = [f + b"\0" for f in out.split(b"\0")[:-1]]
    assert set(frames) <= set(FRAMES)
    assert len(frames) == 200 - ch.counts["frames_dropped"] + ch.counts["frames_duplicated"]
    assert ch.counts["frames_dropped"] and ch.counts["frames_duplicated"]


def test_reordered_frames_arrive_swapped():
    ch = FaultyChannel(LinkFaults(reorder_frame_rate=1.0), seed=0)
    out = delivered(ch, b"".join(FRAMES[:4]))
    assert out == FRAMES[1] + FRAMES[0] + FRAMES[3] + FRAMES[2]


def test_delayed_frames_carry_a_later_delivery_time():
    ch = FaultyChannel(LinkFaults(delay_frame_rate=1.0, delay_s=0.3), seed=0)
    assert {at for at, _ in ch.process(FRAMES[0], 5.0)} == {5.3}


def test_outages_lose_bytes_until_they_end():
    ch = FaultyChannel()
    ch.outage(1.0, down_s=0.5)
    assert ch.process(STREAM, 1.2) == []
    assert ch.counts["bytes_lost_in_outage"] == len(STREAM)
    assert delivered(ch, FRAMES[0], 1.6) == FRAMES[0]


@pytest.mark.parametrize("bad", [{"bit_error_rate": 2}, {"drop_frame_rate": -0.1},
                                 {"delay_s": 60}])
def test_rates_outside_zero_to_one_are_refused(bad):
    with pytest.raises(ValueError):
        LinkFaults(**bad)


def test_pacer_never_exceeds_the_baud_rate_in_any_second():
    pacer = BaudPacer(115200, now=0.0)
    sent_per_second = [0] * 3
    t = 0.0
    while t < 3.0:
        sent_per_second[int(t)] += pacer.take(1000, t)
        t += 0.0005
    assert all(n <= 11520 for n in sent_per_second)
    assert all(n >= 11500 for n in sent_per_second)  # and it does carry a full line


def test_pacer_idle_line_earns_no_credit():
    pacer = BaudPacer(9600, now=0.0)
    assert pacer.take(5, 100.0) == 0  # bytes queued after a long idle still need their time
    assert pacer.wait_s(100.0) == pytest.approx(1 / 960)
    assert pacer.take(5, 100.0 + 2.5 / 960) == 2
