# messages.py: payloads of the trilink control messages (docs/PROTOCOL.md §4)
"""Encode and decode the payload of every message type of PROTOCOL.md §4
except TRACK_REPORT and PICTURE (the track codec's, §5). A message is a
dict whose keys are the field names of §4; lists of pairs are lists of
tuples and counts (``n``) are implied by the list lengths.

    >>> p = encode(WARNING_ACK, {"warning_id": 7})
    >>> p
    b'\\x07\\x00\\x00\\x00'
    >>> decode(WARNING_ACK, p)
    {'warning_id': 7}
    >>> decode(HELLO, encode(HELLO, {"role": 0, "proto": 1, "max_payload": 1024,
    ...     "epoch": 3, "min_epoch": 0, "name": "jp"}))["name"]
    'jp'

Every payload that is too short or too long for its type, whose count
overruns it, whose name is not UTF-8 or whose field is out of its stated
range raises ``WireError("malformed")`` (§4.9), from ``decode`` and from
``encode`` alike; a type this module does not know raises
``WireError("unknown_type")``.
"""
import struct

from trilink_board.wire import (DELIVERY, HEARTBEAT, HELLO, KEYFRAME_REQ, MAX_PAYLOAD, STATS,
                                TIME_SYNC_REQ, TIME_SYNC_RESP, WARNING, WARNING_ACK, WireError)

_NAME_MAX = 16

# WARNING (§4.5): 42 bytes. ``kind`` says what the warning is about; the
# relay imports these names (edge/pipeline.py), the bench decodes with them.
WARNING_FORMAT = "<IIBBQiiIIHBBHH"
WARNING_SIZE = 42
KIND_TERRITORY, KIND_EEZ, KIND_OVERFLIGHT, KIND_LAUNCH = 0, 1, 2, 3
KIND_NAMES = ("territory", "eez", "overflight", "launch")     # the bench JSON's strings too
STATUS_ACTIVE, STATUS_UPDATED, STATUS_OBSOLETE = 0, 1, 2
NATION_NONE = 0xFF
# class_guess: what the relay makes of the missile (§4.5)
CLASS_UNKNOWN, CLASS_SRBM, CLASS_MRBM, CLASS_IRBM, CLASS_ICBM = 0, 1, 2, 3, 4
CLASS_NAMES = ("unknown", "srbm", "mrbm", "irbm", "icbm")
_HELLO = "<BBHIIB"
_PAIR = "<BI"

# Fixed-size payloads: struct format and field names in wire order.
_FIXED = {
    HEARTBEAT: ("<QIII", ("time_us", "tx_frames", "rx_frames", "rx_errors")),
    TIME_SYNC_REQ: ("<HQ", ("req_id", "t1_us")),
    TIME_SYNC_RESP: ("<HQQQ", ("req_id", "t1_us", "t2_us", "t3_us")),
    WARNING: (WARNING_FORMAT, ("warning_id", "track_id", "status", "nation", "impact_us",
                               "lat_e7", "lon_e7", "semi_major_m", "semi_minor_m", "orient_cdeg",
                               "kind", "class_guess", "azimuth_cdeg", "sigma_t_ds")),
    WARNING_ACK: ("<I", ("warning_id",)),
}

# Stated ranges narrower than the field's integer type (§4).
_RANGES = {
    "role": (0, 1),
    "max_payload": (0, MAX_PAYLOAD),
    "status": (0, 2),
    "orient_cdeg": (0, 35999),
    "azimuth_cdeg": (0, 35999),
    "kind": (0, 3),
    "class_guess": (0, 4),
    "lat_e7": (-900000000, 900000000),
    "lon_e7": (-1800000000, 1800000000),
}

_LIMITS = {"B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF),
           "Q": (0, 0xFFFFFFFFFFFFFFFF), "i": (-0x80000000, 0x7FFFFFFF)}


def _bad(detail):
    return WireError("malformed", detail)


def _check(name, code, value):
    # MicroPython's struct.pack truncates silently: check every value here.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad("%s must be an integer" % name)
    lo, hi = _RANGES.get(name, _LIMITS[code])
    if not lo <= value <= hi:
        raise _bad("%s=%d outside %d..%d" % (name, value, lo, hi))


def _field(msg, name, code):
    try:
        value = msg[name]
    except (KeyError, TypeError):
        raise _bad("missing field %s" % name)
    _check(name, code, value)
    return value


def _utf8_ok(b):
    # Strict RFC 3629 check (MicroPython's decoder accepts overlongs and
    # surrogates that CPython rejects; both implementations must agree).
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            k, lo, hi = 1, 0x80, 0xBF
        elif c == 0xE0:
            k, lo, hi = 2, 0xA0, 0xBF
        elif 0xE1 <= c <= 0xEC or 0xEE <= c <= 0xEF:
            k, lo, hi = 2, 0x80, 0xBF
        elif c == 0xED:
            k, lo, hi = 2, 0x80, 0x9F
        elif c == 0xF0:
            k, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            k, lo, hi = 3, 0x80, 0xBF
        elif c == 0xF4:
            k, lo, hi = 3, 0x80, 0x8F
        else:
            return False
        if i + k >= n:
            return False
        if not lo <= b[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += k + 1
    return True


def _pairs(msg, name, first, second):
    try:
        items = list(msg[name])
    except (KeyError, TypeError):
        raise _bad("missing list %s" % name)
    if len(items) > 255:
        raise _bad("%s has %d entries, at most 255" % (name, len(items)))
    out = bytearray()
    for item in items:
        try:
            a, b = item
        except (TypeError, ValueError):
            raise _bad("%s entries are (%s, %s) pairs" % (name, first, second))
        _check(first, "B", a)
        _check(second, "I", b)
        out += struct.pack(_PAIR, a, b)
    return len(items), out


def _unpairs(payload, start, n):
    if len(payload) != start + 5 * n:
        raise _bad("%d pairs need %d bytes, have %d" % (n, start + 5 * n, len(payload)))
    return [struct.unpack_from(_PAIR, payload, start + 5 * k) for k in range(n)]


def encode(mtype, msg):
    """The payload (bytes) of message ``msg`` (a dict) of type ``mtype``."""
    if mtype in _FIXED:
        fmt, names = _FIXED[mtype]
        values = [_field(msg, name, code) for name, code in zip(names, fmt[1:])]
        return struct.pack(fmt, *values)
    if mtype == HELLO:
        name = msg.get("name", "") if isinstance(msg, dict) else None
        if not isinstance(name, str):
            raise _bad("name must be a str")
        raw = name.encode("utf-8")
        if len(raw) > _NAME_MAX:
            raise _bad("name of %d bytes, at most %d" % (len(raw), _NAME_MAX))
        values = [_field(msg, f, c) for f, c in
                  (("role", "B"), ("proto", "B"), ("max_payload", "H"), ("epoch", "I"), ("min_epoch", "I"))]
        out = struct.pack(_HELLO, *(values + [len(raw)])) + raw
        if "nonce" in msg:   # the optional challenge / answer of §2.2
            out += struct.pack("<I", _field(msg, "nonce", "I"))
        return out
    if mtype == KEYFRAME_REQ:
        try:
            ids = list(msg["track_ids"])
        except (KeyError, TypeError):
            raise _bad("missing list track_ids")
        if len(ids) > 255:
            raise _bad("track_ids has %d entries, at most 255" % len(ids))
        for t in ids:
            _check("track_id", "I", t)
        return struct.pack("<B%dI" % len(ids), len(ids), *ids)
    if mtype == STATS:
        n, body = _pairs(msg, "counters", "counter_id", "value")
        out = bytes([n]) + body
    elif mtype == DELIVERY:
        head = [_field(msg, f, c) for f, c in (("rx_local_us", "Q"), ("rx_relay_us", "Q"), ("track_id", "I"))]
        n, body = _pairs(msg, "reports", "src_node", "report_id")
        out = struct.pack("<QQIB", *(head + [n])) + body
    else:
        raise WireError("unknown_type", "no payload layout for type 0x%02x here" % mtype)
    if len(out) > MAX_PAYLOAD:
        raise _bad("payload of %d bytes exceeds %d" % (len(out), MAX_PAYLOAD))
    return out


def decode(mtype, payload):
    """The message (a dict) in ``payload`` of type ``mtype``; raises ``WireError``."""
    payload = bytes(payload)
    size = len(payload)
    if mtype in _FIXED:
        fmt, names = _FIXED[mtype]
        if size != struct.calcsize(fmt):
            raise _bad("type 0x%02x payload of %d bytes, want %d" % (mtype, size, struct.calcsize(fmt)))
        msg = dict(zip(names, struct.unpack(fmt, payload)))
        for name in names:
            if name in _RANGES:
                _check(name, "B", msg[name])
        return msg
    if mtype == HELLO:
        if size < 13:
            raise _bad("HELLO of %d bytes, want at least 13" % size)
        role, proto, max_payload, epoch, min_epoch, n = struct.unpack_from(_HELLO, payload, 0)
        if n > _NAME_MAX or size not in (13 + n, 17 + n):
            raise _bad("HELLO name of %d bytes in a %d-byte payload" % (n, size))
        raw = payload[13:13 + n]
        if not _utf8_ok(raw):
            raise _bad("HELLO name is not UTF-8")
        _check("role", "B", role)
        _check("max_payload", "H", max_payload)
        out = {"role": role, "proto": proto, "max_payload": max_payload, "epoch": epoch,
               "min_epoch": min_epoch, "name": bytes(raw).decode("utf-8")}
        if size == 17 + n:
            out["nonce"] = struct.unpack_from("<I", payload, 13 + n)[0]
        return out
    if mtype == KEYFRAME_REQ:
        if size < 1 or size != 1 + 4 * payload[0]:
            raise _bad("KEYFRAME_REQ of %d bytes" % size)
        return {"track_ids": list(struct.unpack_from("<%dI" % payload[0], payload, 1))}
    if mtype == STATS:
        if size < 1:
            raise _bad("empty STATS")
        return {"counters": _unpairs(payload, 1, payload[0])}
    if mtype == DELIVERY:
        if size < 21:
            raise _bad("DELIVERY of %d bytes, want at least 21" % size)
        rx_local, rx_relay, track_id, n = struct.unpack_from("<QQIB", payload, 0)
        return {"rx_local_us": rx_local, "rx_relay_us": rx_relay, "track_id": track_id,
                "reports": _unpairs(payload, 21, n)}
    raise WireError("unknown_type", "no payload layout for type 0x%02x here" % mtype)
