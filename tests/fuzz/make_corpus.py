#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py - writes the seed corpus tests/fuzz/corpus/<target>/.

Each seed is a short, valid session in the byte language of its target
(see the opcode switch in tests/fuzz/fuzz_<target>.c): registrations of the
common classes, tracked requests and their responses/timeouts, unsolicited
requests (vendor range 2 with OUI), reads.  Run from the repository root:
    python3 tests/fuzz/make_corpus.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# indices into fz_classes[] (tests/fuzz/fuzz_common.h)
C = {0x00: 0, 0x01: 1, 0x81: 2, 0x03: 3, 0x04: 4, 0x05: 5, 0x06: 6, 0x07: 7, 0x08: 8,
     0x09: 9, 0x0a: 10, 0x11: 11, 0x12: 12, 0x21: 13, 0x30: 14, 0x31: 15}


def reg_req(cls, method_byte=0x43, rmpp=False, oui_idx=0, wrong_qp=False, user_rmpp=False):
    """fz_reg2_req(): b, class, [version], mask, [oui], [rmpp], [flags]"""
    b = (1 if wrong_qp else 0) | (0x0c if rmpp else 0) | (0x20 if user_rmpp else 0)
    out = bytes([b, C[cls], method_byte])
    if 0x30 <= cls <= 0x4f:
        out += bytes([oui_idx])
    return out


def write(s, *files):
    d = os.path.join(ROOT, s)
    os.makedirs(d, exist_ok=True)
    for name, data in files:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def op(slot, code):
    return bytes([(slot << 4) | code])


# ---- fuzz_client_write -----------------------------------------------------
def cw_write(slot, agent, cls, method=1, tid=0x1234, timeout=True, grh=False, lenb=0):
    """structured write: b, id, t, lid, 36 MAD header bytes, class"""
    t = (1 if timeout else 0) | 2 | (0x0c if grh else 0)
    mh = bytearray(36)
    mh[3] = method
    mh[8:16] = struct.pack(">Q", tid)
    return op(slot, 9) + bytes([lenb, agent, t]) + b"\x04\x00" + bytes(mh) + bytes([C[cls]])


def cw_reg2(slot, *a, **k):
    return op(slot, 3) + reg_req(*a, **k)


def cw_reg1(slot, *a, **k):
    return op(slot, 4) + reg_req(*a, **k)


def cw_answer(back=1, timeout=False):
    return op(0, 14) + bytes([(back - 1) | (8 if timeout else 0)])


def cw_read(slot, b=0):
    return op(slot, 12) + bytes([b])


cfg = b"\x3f\x00"
write("fuzz_client_write",
      ("perf-get-response", cfg + cw_reg2(0, 0x04) + cw_write(0, 0, 0x04) + cw_answer() + cw_read(0)),
      ("sa-rmpp-timeout", cfg + cw_reg2(0, 0x03, rmpp=True) + cw_write(0, 0, 0x03, lenb=6) +
       cw_answer(timeout=True) + cw_read(0, 3)),
      ("old-header", cfg + cw_reg1(0, 0x04) + cw_write(0, 0, 0x04) + cw_answer() + cw_read(0, 4) + cw_read(0)),
      ("enable-pkey-grh", cfg + op(0, 7) + cw_reg2(0, 0x09, method_byte=0x01) +
       cw_write(0, 0, 0x09, grh=True) + cw_answer() + cw_read(0)),
      ("smp-privileged", b"\x3f\x40" + cw_reg2(0, 0x81, method_byte=0x01) + cw_write(0, 0, 0x81)
       + op(1, 0) + b"\x01" + cw_reg2(1, 0x01) + cw_write(1, 0, 0x01)),
      ("vendor2-two-files", cfg + cw_reg2(0, 0x30) + op(1, 0) + b"\x02" + cw_reg2(1, 0x30) +
       cw_reg2(1, 0x30, method_byte=0x08) + cw_write(1, 1, 0x30) + cw_answer() + cw_read(1)),
      ("unreg-release", cfg + cw_reg2(0, 0x04) + cw_write(0, 0, 0x04) + op(0, 6) + b"\x00" +
       cw_answer() + op(0, 1) + op(0, 0) + b"\x00"),
      ("queue-full", b"\x00\x00" + cw_reg2(0, 0x04) + cw_write(0, 0, 0x04, tid=1) +
       cw_write(0, 0, 0x04, tid=2) + cw_answer(2) + cw_answer(1) + cw_read(0) + cw_read(0)),
      ("policy-rate", b"\x3f\x07" + op(1, 0) + b"\x01" + cw_reg2(1, 0x04) + cw_write(1, 0, 0x04, tid=1) +
       cw_write(1, 0, 0x04, tid=2) + op(0, 15) + b"\x01\xff\xff" + cw_write(1, 0, 0x04, tid=3)),
      ("unknown-ioctl", cfg + op(0, 8) + struct.pack("<I", 0xc0281b05) + b"\x01" + bytes(40)),
      )

# ---- fuzz_ioctl -------------------------------------------------------------
def reg2_raw(qpn, cls, ver, flags, mask, oui, rmpp):
    return struct.pack("<IIBBHIQQIB3x", 0xdeadbeef, qpn, cls, ver, 0, flags, mask, 0, oui, rmpp)


def reg1_raw(qpn, cls, ver, mask, oui, rmpp):
    return struct.pack("<I4IBBB3sB", 0, mask & 0xffffffff, mask >> 32, 0, 0, qpn, cls, ver,
                       oui.to_bytes(3, "big"), rmpp)


write("fuzz_ioctl",
      ("reg2-then-pkey", cfg + op(0, 2) + reg_req(0x04) + op(0, 10) + op(0, 8) + b"\x00"),
      ("pkey-then-reg1", cfg + op(0, 10) + op(0, 6) + reg_req(0x04) + op(0, 8) + b"\x00"),
      ("raw-reg2", cfg + op(0, 0) + reg2_raw(1, 0x04, 1, 0, 0x6, 0, 0) +
       op(1, 0) + reg2_raw(1, 0x30, 1, 0, 0x2, 0x001405, 1)),
      ("raw-reg2-bad-flags", cfg + op(0, 0) + reg2_raw(1, 0x03, 2, 0x3, 0x2, 0, 1)),
      ("raw-reg1", cfg + op(0, 5) + reg1_raw(1, 0x03, 2, 0x40000006, 0, 1) +
       op(1, 5) + reg1_raw(0, 0x81, 1, 0x2, 0, 0)),
      ("conflict", cfg + op(0, 14) + reg_req(0x09) + op(0, 14) + reg_req(0x30, oui_idx=1)),
      ("unknown", cfg + op(0, 11) + b"\x01\x01" + op(0, 11) + b"\x00" + struct.pack("<I", 0x80041b02)
       + bytes(4)),
      ("send-only-many", cfg + (op(0, 2) + reg_req(0x00)) * 33 + op(0, 8) + b"\x05" + op(0, 2) + reg_req(0x00)),
      )

# ---- fuzz_wire_mad ----------------------------------------------------------
def wm_reg(slot, *a, **k):
    return op(slot, 5) + reg_req(*a, **k) + b"\x01"


def wm_send(slot, agent, tid_lo=7):
    # b=0: tracked GET of the agent's class, 256 bytes; id; lid; tid (2 bytes)
    return op(slot, 7) + bytes([0, agent]) + b"\x05\x00" + bytes([0, tid_lo])


def wm_answer(k=0, grh=False, status=False):
    """wire(): a response (or timeout) to a live transaction"""
    b = 0x00 | (1 if grh else 0)
    out = op(0, 0) + bytes([b, 1, 1]) + b"\x07\x00" + b"\x00"
    if grh:
        out += bytes([0, 64, 0]) + bytes(range(16)) + struct.pack("<I", 0x12345)
    kk = k | (0x18 if status else 0)
    return out + bytes([kk]) + struct.pack("<I", 0xabc)


def wm_request(slot, agent, madlen_code=0, raw=False):
    b = (madlen_code << 2) | (0x10 if not raw else 0x30)
    out = op(0, 1) + bytes([b, 2, 1]) + b"\x09\x00" + b"\x00"
    if madlen_code == 3:
        out += b"\x20"
    if raw:
        return out + bytes([1, 0x04, 1, 1]) + bytes(60)
    return out + bytes([slot, agent, 1]) + struct.pack("<Q", 0x1122334455667788) + b"\x00" + bytes(32)


def wm_read(slot, b=0):
    return op(slot, 10) + bytes([b])


write("fuzz_wire_mad",
      ("get-response", cfg + wm_reg(0, 0x04) + wm_send(0, 0) + wm_answer() + wm_read(0)),
      ("timeout", cfg + wm_reg(0, 0x04) + wm_send(0, 0) + wm_answer(status=True) + wm_read(0)),
      ("grh-response", cfg + wm_reg(0, 0x09, method_byte=0x01) + wm_send(0, 0) + wm_answer(grh=True)
       + wm_read(0, 2)),
      ("unsolicited", cfg + wm_reg(0, 0x04) + wm_request(0, 0) + wm_read(0) + wm_request(0, 0, 3)),
      ("vendor2-oui", cfg + wm_reg(1, 0x30) + wm_request(1, 0) + wm_read(1) + wm_reg(0, 0x30, oui_idx=1)
       + wm_request(0, 0) + wm_read(0)),
      ("rmpp-long", cfg + wm_reg(0, 0x03, rmpp=True) + wm_request(0, 0, 2) + wm_read(0) + wm_read(0, 1)),
      ("two-clients", cfg + wm_reg(0, 0x04) + wm_reg(1, 0x04, method_byte=0x08) + wm_send(0, 0, 1) +
       wm_send(1, 0, 1) + wm_answer(1) + wm_answer(0) + wm_read(0) + wm_read(1)),
      ("unreg-inflight", cfg + wm_reg(0, 0x04) + wm_send(0, 0) + op(0, 12) + b"\x00" + wm_answer()),
      ("raw", cfg + wm_reg(0, 0x04) + wm_request(0, 0, raw=True) + op(0, 3) + b"\x34" + bytes(8)),
      )
