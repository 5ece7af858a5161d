"""Decoder fuzz: 100,000 random and mutated inputs, no exception and no false accept.

A false accept is a frame delivered that the sender never sent. For random bytes no frame may
come out at all; for a mutated stream of genuine frames every frame that comes out must be one
of the genuine ones, unchanged.
"""

import contextlib
import random

from firmware_bridge.codec import MESSAGES, Decoder, Malformed, encode
from tests.link.test_codec import GOLDEN

N_RANDOM = 40_000
N_MUTATED = 60_000


def genuine_frames(rng):
    frames = [bytes.fromhex(g[3]) for g in GOLDEN]
    for _ in range(20):
        msg, *_ = rng.choice(GOLDEN)
        frames.append(encode(msg, seq=rng.randrange(256), ack=rng.randrange(256)))
    return frames


def mutate(rng, data: bytearray) -> bytearray:
    for _ in range(rng.randint(1, 4)):
        if not data:
            data += bytes([rng.randrange(256)])
        op = rng.randrange(9)
        i = rng.randrange(len(data))
        if op == 0:
            data[i] ^= 1 << rng.randrange(8)  # a bit error
        elif op == 1:
            data[i] = rng.randrange(256)  # a byte error
        elif op == 2:
            data.insert(i, rng.randrange(256))  # an extra byte
        elif op == 3:
            del data[i]  # a lost byte
        elif op == 4:
            j = min(len(data), i + rng.randint(1, 30))
            data[i:i] = data[i:j]  # a repeated run
        elif op == 5:
            del data[i:]  # truncated
        elif op == 6:
            data.insert(i, 0)  # a spurious delimiter
        elif op == 7:
            zeros = [k for k, b in enumerate(data) if b == 0]
            if zeros:
                del data[rng.choice(zeros)]  # a lost delimiter: two frames merge
        else:
            j = min(len(data), i + rng.randint(1, 8))
            data[i:j] = bytes(rng.randrange(256) for _ in range(j - i))  # a burst
    return data


def check_delivered(frames, allowed):
    for f in frames:
        assert (f.seq, f.ack, f.type, f.payload) in allowed, f"false accept: {f}"
        with contextlib.suppress(Malformed):
            f.message()


def test_random_bytes_never_decode():
    rng = random.Random(1234)
    d = Decoder()
    for _ in range(N_RANDOM):
        n = rng.choice((1, 4, 9, 16, 40, 70, 300))
        data = rng.randbytes(n)
        if rng.random() < 0.5:
            d = Decoder()
        assert d.feed(data) == []


def test_mutated_streams_deliver_only_genuine_frames():
    rng = random.Random(5678)
    frames = genuine_frames(rng)
    allowed = {tuple(f) for f in Decoder().feed(b"".join(frames))}
    assert len({t for *_, t, _p in allowed}) == len(MESSAGES)
    delivered = 0
    for _ in range(N_MUTATED):
        stream = bytearray(b"".join(rng.sample(frames, rng.randint(1, 4))))
        stream = mutate(rng, stream)
        d = Decoder()
        cut = rng.randrange(len(stream) + 1)
        out = d.feed(bytes(stream[:cut])) + d.feed(bytes(stream[cut:]) + b"\x00")
        check_delivered(out, allowed)
        delivered += len(out)
    # The mutations leave many frames intact: the test exercised acceptance too.
    assert delivered > N_MUTATED // 2
