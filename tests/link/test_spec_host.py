"""A host written from docs/protocol.md alone (struct, zlib and a textbook COBS; nothing from
firmware_bridge) talks to the simulated firmware over a real pty. If the document and the
firmware drift apart, this fails. Written for version 2: TELEMETRY carries the setpoints in
force, and its ack is the last command acted on."""

import struct
import time
import zlib

import serial

EXTRA = {0x01: 0xE5, 0x02: 0x1E, 0x03: 0xA1, 0x04: 0x5A, 0x05: 0xF9, 0x06: 0x02, 0x07: 0xA5,
         0x08: 0x36, 0x81: 0x8C, 0x82: 0xA9, 0x83: 0x54, 0x84: 0xF4, 0x85: 0x3D}


# state flags faults rate volt current depth temp uptime, setpoints x3, runs, needle time
TELEMETRY = "<BBHHHHHhIHHHBI"


def cobs(data: bytes) -> bytes:
    out, code_at, code = bytearray([0]), 0, 1
    for b in data:
        if b:
            out.append(b)
            code += 1
        if not b or code == 0xFF:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def uncobs(data: bytes) -> bytes | None:
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def frame(seq, mtype, payload=b""):
    body = bytes([seq, 0, mtype]) + payload
    return cobs(body + struct.pack("<I", zlib.crc32(body + bytes([EXTRA[mtype]])))) + b"\x00"


class SpecHost:
    def __init__(self, path):
        self.port = serial.Serial(path, 115200, timeout=0.01)
        self.buf = b""
        self.seq = 0
        self.telemetry = []

    def frames(self):
        self.buf += self.port.read(4096)
        *runs, self.buf = self.buf.split(b"\x00")
        for run in runs:
            body = uncobs(run) if run else None
            if not body or len(body) < 7 or body[2] not in EXTRA:
                continue
            crc = zlib.crc32(body[:-4] + bytes([EXTRA[body[2]]]))
            if struct.unpack("<I", body[-4:])[0] == crc:
                yield body[0], body[1], body[2], body[3:-4]

    def command(self, mtype, payload=b"", *, heartbeat=True):
        self.seq = self.seq % 255 + 1
        self.port.write(frame(self.seq, mtype, payload))
        end = time.monotonic() + 1
        while time.monotonic() < end:
            for _seq, ack, t, p in self.frames():
                if t == 0x85:
                    self.telemetry.append((ack, *struct.unpack(TELEMETRY, p)))
                elif ack == self.seq:
                    return t, p
            if heartbeat:
                self.port.write(frame(0, 0x08))
        raise AssertionError("no answer")


def test_a_host_written_from_the_spec_interoperates(pty):
    h = SpecHost(pty.address)
    t, p = h.command(0x01, bytes([2]))
    assert t == 0x81
    (proto, _maj, _min, _pat, model, serial_no, boot_id, caps, *limits, wd, state, faults,
     a1, a2, a3) = struct.unpack("<BBBB8s12sIH3H3HHBH3H", p)
    assert proto == 2 and model.rstrip(b"\0") == b"SMP-R1" and caps & 0x10
    assert serial_no.rstrip(b"\0") == b"SIM-0001" and faults == 0
    assert boot_id == pty.firmware.boot_id and state == 0 and (a1, a2, a3) == (0, 0, 0)
    assert limits == [200, 500, 3000, 2500, 1500, 12000] and wd == 250
    assert h.command(0x04, struct.pack("<HHH", 1800, 1300, 7500)) == (
        0x83, struct.pack("<HHH", 1800, 1300, 7500))
    assert h.command(0x04, struct.pack("<HHH", 1800, 1300, 12500)) == (0x84, bytes([4, 3, 3]))
    assert h.command(0x02) == (0x82, bytes([0x02]))
    pty.firmware.set_pedal(True)
    assert h.command(0x05, struct.pack("<H", 200)) == (0x82, bytes([0x05]))
    end = time.monotonic() + 0.3
    while time.monotonic() < end:  # heartbeats every 20 ms keep the 200 ms watchdog fed
        h.port.write(frame(0, 0x08))
        for _seq, _ack, t, p in h.frames():
            if t == 0x85:
                h.telemetry.append((_ack, *struct.unpack(TELEMETRY, p)))
        time.sleep(0.02)
    running = [t for t in h.telemetry if t[1] == 2]
    assert running and running[-1][2] & 0x0F == 0x0F  # pedal, motor, link, session
    ack, *_, set_depth, set_rate, set_volts, runs, _needle_ms = running[-1]
    assert runs == 1
    assert ack == h.seq and (set_depth, set_rate, set_volts) == (1800, 1300, 7500)
    assert h.command(0x06) == (0x82, bytes([0x06]))
    assert pty.firmware.state == 3 and not pty.firmware.motor_on
    h.port.close()
