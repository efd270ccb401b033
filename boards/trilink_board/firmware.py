# firmware.py: the national sensor board as a node on a link (HELLO, heartbeat, time sync, reports, picture, warnings)
# One module (~750 lines, one class Node) on purpose: the board runs at 163.6 of 192 KB of heap
# (tests/test_board_heap.py), and a codec split into three modules already ran it out of memory;
# a Node split across modules (mixins) would add module objects too, so it was not tried.
"""The board firmware: the simulation of sim.py turned into a node that
talks PROTOCOL.md to the relay over one link (link.py).

    >>> sim = Simulation(config.load_scenario("default"), nation)
    >>> node = Node(nation, sim, key_entry, relay_node=0, link=open_link("udp:9101:127.0.0.1:9100"),
    ...             counter=EpochCounter("/tmp/jp.state"), start=30.0, duration=60.0, speed=10.0)
    >>> node.run()          # returns when the scenario window is done
    0

What it does, all from one loop that polls the link:

* boot: reads and bumps the counter epoch (epoch.py), sends HELLO (and
  again every 30 s until the relay answers), then a HEARTBEAT every 1 s
  and TIME_SYNC_REQ on timesync's schedule (10 at 0.2 s, then every 1 s);
* the scenario runs on the board's clock (clock.py: the host's monotonic
  clock with the nation's simulated offset and drift) from scenario time
  ``start`` for ``duration`` seconds, ``speed`` times faster than real
  time. With ``epoch_us`` the scenario clock is pinned to the relay's
  timebase instead (scenario time ``start`` at relay time ``epoch_us``;
  the board waits for its first time sync), so that every board of a
  bench flies the same missile at the same instant. Scans before
  ``start`` are simulated at boot without reporting;
* every radar scan that updated confirmed tracks becomes one TRACK_REPORT
  (split if over 1024 bytes): a keyframe for a track the relay does not
  hold (new, asked for by KEYFRAME_REQ, or after the timebase changed), a
  delta otherwise, each record carrying its track update's ``report_id``
  (numbered in the counter epoch's block, ``(epoch mod 1024) << 20 | n``,
  so ids keep rising across reboots: PROTOCOL.md 5.5).
  Record times are the scan's instant on the relay timebase (frame flag
  RELAY_TIME) once synced, on the board clock before;
* PICTURE: decoded into the bounded picture (``codec.Table``, 12 tracks: what
  goes first when full is in its docstring); every fused update decoded
  that carried source reports gives a DELIVERY frame (its track id, the
  (node, report_id) pairs, the local receive time and its relay
  mapping); deltas without a base are asked for with KEYFRAME_REQ;
* WARNING: one console line and the LED (``machine.Pin("LED")`` where it
  exists) the first time a warning_id (with that content) arrives; every
  copy is acknowledged with WARNING_ACK, so a lost ack is repaired by the
  relay's retransmission. Active warnings are kept per (track, nation,
  impact or overflight); an obsolete one clears its key and the LED goes
  off with the last; a launch alert (kind 3) is shown, never held;
* HELLO from the relay: ``min_epoch`` above ours moves the counter epoch
  (the only state write a HELLO can cause); a challenge (a HELLO with a
  nonce) is answered with our HELLO carrying that nonce, one refused as a
  replay (a relay that lost its state) with ``min_epoch`` above our mark
  of the relay's counter, at most once a second; a new relay epoch
  (a restarted relay) resets the time sync, the copies the relay held
  (keyframes follow) and the picture.

``counts`` holds the PROTOCOL.md 3.3 receive counters and the board's own;
``summary()`` is the dict printed at exit, with the peak heap.
"""
import gc
import json
import struct
from binascii import crc32

from trilink_board import codec, wire
from trilink_board.clock import BoardClock
from trilink_board.timesync import TimeSync

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]  # micropython.const's stand-in
        return x


_HEARTBEAT_US = const(1000000)
_HELLO_US = const(30000000)
_LINK_DOWN_US = const(3500000)
_GC_US = const(1000000)          # collect and sample the heap this often
_RETRY_US = const(1000000)       # reopen a failed tty this often
_POLL_MAX_MS = const(50)
_SEEN_WARNINGS = const(32)
_COV_SIG = const(2)              # covariance codes that moved this far travel in a delta
_COV_COR = const(4)
_RXBUF = const(256)              # serial reads; a UDP datagram needs MAX_FRAME
_REPORT_BATCH = const(8)         # records per TRACK_REPORT at most (a scan of more: several frames)
# report_id = (counter epoch mod 1024) << 20 | n (PROTOCOL.md 5.5): ids keep rising across
# reboots and stay below 2^30, a small int on every MicroPython port (no allocation per report).
_RID_SHIFT = const(20)
_RID_N = const(0xFFFFF)
_RID_EPOCHS = const(0x3FF)

# PROTOCOL.md 4.7 counter ids of what the board counts: all but the relay's queue counters
_STATS_IDS = tuple((i + 1, k) for i, k in enumerate(wire.STATS_COUNTERS) if k not in ("dropped_stale", "queue_depth"))
_STATUS = ("ACTIVE", "UPDATED", "OBSOLETE")
_KINDS = ("TERRITORY", "EEZ", "OVERFLIGHT", "LAUNCH")
# What a board receives; any other type is unknown_type (PROTOCOL.md 3.3 case 13), not accepted.
_RX_TYPES = (wire.HELLO, wire.HEARTBEAT, wire.TIME_SYNC_RESP, wire.PICTURE, wire.KEYFRAME_REQ, wire.WARNING,
             wire.STATS)

# Payloads (PROTOCOL.md 4) packed here with struct rather than through
# messages.py: that module's generality costs ~9 KB of a 192 KB heap. The
# tests decode every frame the board sends with messages.py.
_HELLO = "<BBHIIB"
_HEARTBEAT = "<QIII"
_SYNC_REQ = "<HQ"
_SYNC_RESP = "<HQQQ"
_WARNING = "<IIBBQiiIIHBBHH"     # PROTOCOL.md 4.5, 42 bytes
_DELIVERY = "<QQIB"
_PAIR = "<BI"


def _need(payload, size):
    if len(payload) != size:
        raise wire.WireError("malformed", "payload of %d bytes, want %d" % (len(payload), size))


def _led():
    # The on-board LED on a Pico ("LED"), nothing on the unix port or CPython.
    try:
        import machine
        return machine.Pin("LED", machine.Pin.OUT)
    except Exception:  # ImportError, AttributeError, ValueError: no such pin here
        return None


class Node:
    """One board on one link. ``Node(nation, sim, key_entry, relay_node, link, counter,
    start=0.0, duration=None, speed=1.0, epoch_us=None, stats_s=10.0, out=print, reopen=None)``;
    ``sim`` is a fresh ``sim.Simulation`` (made by the caller before this module is imported,
    while the heap is still in one piece); ``run()`` returns 0 when the scenario window is done."""

    def __init__(self, nation, sim, key_entry, relay_node, link, counter, start=0.0,
                 duration=None, speed=1.0, epoch_us=None, stats_s=10.0, out=print, reopen=None):
        self.name = nation["name"]
        self.node = nation["node"]
        self.relay = relay_node
        self.link = link
        self.reopen = reopen
        self.out = out
        self.key_id = key_entry.key_id
        self.ring = wire.Keyring(self.node, (relay_node,))
        self.ring.add(key_entry.key_id, key_entry.node, key_entry.key)
        self.mac = self.ring.mac(key_entry.key_id)
        self.ctr = counter          # epoch.EpochCounter, already bumped for this boot
        c = nation["clock"]
        self.clock = BoardClock(c["offset_s"], c["drift_ppm"])
        self.sync = TimeSync()
        self.start = float(start)
        self.speed = float(speed)
        self.end = self.start + (float(duration) if duration is not None
                                 else max(0.0, sim.duration - self.start))
        self.epoch_us = epoch_us
        self.stats_us = int(stats_s * 1000000) if stats_s else 0
        self.nations_bit = (1 << (self.node - 1)) if self.node <= 32 else 0
        self.prec = codec.Precision()
        # tid -> the copy the relay holds of our tracks: one row per track slot and a batch
        self.up_held = codec.Held(sim.tracker.size + _REPORT_BATCH)
        # The fused picture as decoded: preallocated rows, bounded (codec.Table's policy);
        # boot.py makes it before this module is imported, else the first PICTURE does.
        self.picture = None
        self.seen = {}              # warning_id -> crc32 of its payload
        self.seen_order = []
        self.active = {}            # (track id, nation, 1 if overflight else 0) -> id of its warning not yet obsolete
        self.led = _led()
        self.deframer = None if link.datagram else wire.Deframer()
        self.rxbuf = bytearray(wire.MAX_FRAME + 1 if link.datagram else _RXBUF)
        self.seq = 0
        self.write_local = 0
        self.tx_free = 0
        self.lead = True            # lead the first serial frame with 0x00 (flush the relay's partial chunk)
        self.counts = {"frames_in": 0, "frames_out": 0, "bytes_in": 0, "bytes_out": 0, "crc_error": 0,
                       "malformed": 0, "oversize": 0, "auth_fail": 0, "replay": 0, "wrong_link": 0,
                       "unknown_type": 0, "not_for_me": 0, "reports": 0, "report_frames": 0,
                       "keyframes": 0, "deltas": 0, "pictures": 0, "fused_updates": 0, "no_base": 0,
                       "keyframe_reqs_sent": 0, "keyframe_reqs_rx": 0, "deliveries": 0, "warnings": 0,
                       "warning_copies": 0, "warning_acks": 0, "sync_samples": 0, "hello_rx": 0,
                       "link_errors": 0, "scans": 0, "late_scans": 0}
        self.max_lag_us = 0
        self.peak_live = 0
        self.peak_alloc = 0
        self.relay_epoch = None
        self.hello_answered = False
        self.refused_hello_us = None    # when we last answered a challenge we refused
        self.relay_seen = False
        self.relay_time_stamps = None   # the timebase of the records the relay holds
        self.req_id = 0
        self.pending = {}           # req_id -> (t1, wire time of the request)
        self.sim = sim
        self.scenario_t = 0.0
        self._seed_reports(1)
        # Scans before the window are simulated (the tracker needs them) but not reported.
        while self.sim.step(self.start):
            self._report_ids_left()
        self.base0 = None           # scenario clock origin (relay or local us)
        self.done = False

    def _seed_reports(self, n):
        """Number the tracker's next report ``n`` in the current counter epoch's block."""
        base = (self.ctr.epoch & _RID_EPOCHS) << _RID_SHIFT
        trk = self.sim.tracker
        trk.next_report = base | n
        # A scan numbers at most one report per track: stop a whole scan short of the next block.
        self.rid_last = base + _RID_N - trk.size

    def _report_ids_left(self):
        # About 10^6 reports in one boot: take the next counter epoch (one more state-file
        # write) rather than run into the block the next boot will use.
        if self.sim.tracker.next_report > self.rid_last:
            self.ctr.jump(self.ctr.epoch + 1)
            self._seed_reports(1)

    # ---- sending ----

    def send(self, mtype, payload, flags=0):
        """Pack and write one frame to the relay; returns its serial/datagram length."""
        raw = wire.pack(self.mac, self.key_id, self.node, self.relay, mtype, self.seq, self.ctr.next(),
                        payload, flags)
        self.seq = (self.seq + 1) & 0xFFFF
        data = raw if self.link.datagram else wire.serial_encode(raw, self.lead)
        self.lead = False
        self.write_local = self.clock.local_us()
        if self.link.baud:
            # When the serial line will have sent everything written so far: a TIME_SYNC_REQ
            # written behind a report leaves only then (the sync's asymmetry correction).
            start = self.tx_free if self.tx_free > self.write_local else self.write_local
            self.tx_free = start + len(data) * 10000000 // self.link.baud
        try:
            self.link.write(data)
        except OSError as e:
            self._link_failed(e)
            return len(data)
        self.counts["frames_out"] += 1
        self.counts["bytes_out"] += len(data)
        return len(data)

    def _hello(self, nonce=0, min_epoch=0):
        # nonce: the relay challenge this HELLO answers (PROTOCOL.md 2.2), appended when set.
        name = self.name.encode()
        p = struct.pack(_HELLO, 0, wire.VERSION, wire.MAX_PAYLOAD, self.ctr.epoch, min_epoch, len(name)) + name
        self.send(wire.HELLO, p + struct.pack("<I", nonce) if nonce else p)

    def _count(self, k):
        # A 3.3 counter: on serial, cases 1-7 are the deframer's own counts.
        d = self.deframer
        return self.counts[k] + (d.counts.get(k, 0) if d is not None else 0)

    def _heartbeat(self, now):
        # rx_errors (PROTOCOL.md 4.2): every rejection of 3.3 but not_for_me (not an error).
        err = 0
        for k in ("crc_error", "malformed", "oversize", "auth_fail", "replay", "wrong_link", "unknown_type"):
            err += self._count(k)
        c = self.counts
        self.send(wire.HEARTBEAT, struct.pack(_HEARTBEAT, now, c["frames_out"] & 0xFFFFFFFF,
                                              c["frames_in"] & 0xFFFFFFFF, err & 0xFFFFFFFF))

    def _sync_request(self):
        self.req_id = (self.req_id + 1) & 0xFFFF
        t1 = self.clock.local_us()
        self.send(wire.TIME_SYNC_REQ, struct.pack(_SYNC_REQ, self.req_id, t1))
        # Until the request's last byte left: the time spent packing it after t1, and on a
        # serial link the bytes queued ahead of it and its own wire time.
        up = (self.tx_free if self.link.baud else self.write_local) - t1
        if len(self.pending) > 8:
            self.pending = {}
        self.pending[self.req_id] = (t1, up)

    def _stats(self):
        out = bytearray((len(_STATS_IDS),))
        for i, k in _STATS_IDS:
            out += struct.pack(_PAIR, i, self._count(k) & 0xFFFFFFFF)
        self.send(wire.STATS, out)

    # ---- scenario clock ----

    def _scen_now(self, now):
        """Scenario time at board time ``now``, or None while it cannot be known (waiting for sync)."""
        if self.epoch_us is not None:
            if not self.sync.synced:
                return None
            return self.start + self.speed * (self.sync.to_relay(now) - self.epoch_us) * 1e-6
        if self.base0 is None:
            self.base0 = now
        return self.start + self.speed * (now - self.base0) * 1e-6

    def _stamp(self, ts):
        """(t_us, flags) of scenario instant ``ts``: relay timebase with RELAY_TIME once known."""
        if self.epoch_us is not None:
            return self.epoch_us + int((ts - self.start) * 1e6 / self.speed), wire.RELAY_TIME
        b = (self.base0 or 0) + int((ts - self.start) * 1e6 / self.speed)
        if self.sync.synced:
            return self.sync.to_relay(b), wire.RELAY_TIME
        return b, 0

    def _local_of_scen(self, ts):
        t, flags = self._stamp(ts)
        return self.sync.to_local(t) if flags else t

    # ---- reports ----

    def _advance(self, now):
        t = self._scen_now(now)
        if t is None:
            return
        if t >= self.end:
            t = self.end
            self.done = True
        sim = self.sim
        while sim.step(t):
            self._report_ids_left()
            self.counts["scans"] += 1
            lag = now - self._local_of_scen(sim.t)
            if lag > self.max_lag_us:
                self.max_lag_us = lag
            if lag > 100000:
                self.counts["late_scans"] += 1
            if sim.n_updated:
                self._report(sim)

    def _report(self, sim):
        t_us, flags = self._stamp(sim.t)
        if flags != self.relay_time_stamps:
            # Held copies on the other timebase cannot be a delta's base.
            self.up_held.clear()
            self.relay_time_stamps = flags
        held = self.up_held
        trk = sim.tracker
        if len(held) > trk.size:
            # Copies of tracks the tracker dropped are no base for anything: at most one per slot
            # (so the rows, one per slot and a batch, are never all taken).
            held.keep(trk.live_tids())
        # In frames of at most _REPORT_BATCH records, each quantised just before it is sent:
        # a debris scan updating 40 tracks held 40 records and their staged copies at once.
        for j in range(0, sim.n_updated, _REPORT_BATCH):
            self._report_batch(trk, j, min(j + _REPORT_BATCH, sim.n_updated), t_us, flags)

    def _report_batch(self, trk, first, end, t_us, flags):
        held = self.up_held
        X = trk.X
        P = memoryview(trk.PP)
        items = []
        for j in range(first, end):
            k = trk.updated_k[j]
            tid = trk.tid[k]
            o = 6 * k
            u = codec.Update(tid, t_us, [X[o], X[o + 1], X[o + 2], X[o + 3], X[o + 4], X[o + 5]],
                             P[36 * k:36 * k + 36], 0, self.nations_bit, trk.report_id[k])
            r = codec.quantise(u, self.prec)
            h = held.get(tid)
            if h is None or not codec.delta_ok(h, t_us, self.prec):
                items.append((codec.KEY, r, 0))
                continue
            send = 0
            for i in range(6):
                if abs(r.sig[i] - h.sig[i]) >= _COV_SIG:
                    send = codec.SEND_COV
            for i in range(15):
                if abs(r.cor[i] - h.cor[i]) >= _COV_COR:
                    send = codec.SEND_COV
            if r.flags != h.flags or r.nations != h.nations:
                send |= codec.SEND_META
            items.append((codec.DELTA, r, send))
        self._send_reports(items, t_us, flags)

    def _send_reports(self, items, t_us, flags):
        try:
            payload = codec.encode(codec.REPORT, self.prec, items, base_us=t_us, held=self.up_held)
        except codec.CodecError as e:
            if e.reason != "no_space" or len(items) < 2:
                raise
            half = len(items) // 2
            self._send_reports(items[:half], t_us, flags)
            self._send_reports(items[half:], t_us, flags)
            return
        self.send(wire.TRACK_REPORT, payload, flags)
        c = self.counts
        c["report_frames"] += 1
        c["reports"] += len(items)
        for it in items:
            c["keyframes" if it[0] == codec.KEY else "deltas"] += 1

    # ---- receiving ----

    def _receive(self, timeout_ms):
        link = self.link
        try:
            if not link.poll(timeout_ms):
                return
            n = link.readinto(self.rxbuf)
        except OSError as e:
            self._link_failed(e)
            return
        if not n:
            return
        now = self.clock.local_us()
        self.counts["bytes_in"] += n
        if link.datagram:
            try:
                frames = (wire.parse(memoryview(self.rxbuf)[:n]),)
            except wire.WireError as e:
                self.counts[e.reason] += 1
                return
        elif self.deframer is not None:
            frames = self.deframer.feed(self.rxbuf, n)
        else:
            return
        for f in frames:
            self._frame(f, now)

    def _frame(self, f, now):
        try:
            self.ring.verify(f)
        except wire.WireError as e:
            self.counts[e.reason] += 1
            if e.reason == "replay" and f.mtype == wire.HELLO and f.dst == self.node:
                self._refused_challenge(f, now)
            return
        if f.dst != self.node and f.dst != wire.BROADCAST:
            self.counts["not_for_me"] += 1
            return
        if f.mtype not in _RX_TYPES:
            self.counts["unknown_type"] += 1
            return
        self.counts["frames_in"] += 1
        self.last_rx = now
        if not self.relay_seen:
            self.relay_seen = True
            self.out("%s: relay link up" % self.name)
        t = f.mtype
        try:
            if t == wire.HEARTBEAT:
                _need(f.payload, 20)
            elif t == wire.STATS:
                p = f.payload
                if not p or len(p) != 1 + 5 * p[0]:
                    raise wire.WireError("malformed", "STATS")
            elif t == wire.TIME_SYNC_RESP:
                self._on_sync(f, now)
            elif t == wire.PICTURE:
                self._on_picture(f, now)
            elif t == wire.WARNING:
                self._on_warning(f)
            elif t == wire.HELLO:
                self._on_hello(f)
            elif t == wire.KEYFRAME_REQ:
                self._on_keyframe_req(f)
        except (wire.WireError, codec.CodecError):
            self.counts["malformed"] += 1

    def _on_sync(self, f, t4):
        _need(f.payload, 26)
        req_id, t1, t2, t3 = struct.unpack(_SYNC_RESP, f.payload)
        p = self.pending.pop(req_id, None)
        if p is None or p[0] != t1:
            return  # an answer to a request we no longer wait for
        down = (len(f.raw) + 2) * 10000000 // self.link.baud if self.link.baud else 0
        self.sync.add(t1, t2, t3, t4, p[1], down)
        self.counts["sync_samples"] += 1
        if self.sync.samples == 1:
            self.out("%s: time sync offset %d us delay %d us" % (self.name, self.sync.offset_us,
                                                                self.sync.delay_us))

    def _on_hello(self, f):
        p = f.payload
        if len(p) < 13:
            raise wire.WireError("malformed", "HELLO")
        role, _, max_payload, epoch, min_epoch, n = struct.unpack_from(_HELLO, p, 0)
        if len(p) not in (13 + n, 17 + n) or n > 16 or role > 1 or max_payload > wire.MAX_PAYLOAD:
            raise wire.WireError("malformed", "HELLO")
        # A challenge (a nonce after the name): answered with our HELLO carrying it, so that the
        # relay learns our counter from a frame made now (PROTOCOL.md 2.2). Nothing is stored.
        nonce = struct.unpack_from("<I", p, 13 + n)[0] if len(p) == 17 + n else 0
        if role != 1:
            self.counts["unknown_type"] += 1
            return
        self.counts["hello_rx"] += 1
        self.hello_answered = True
        if self.ctr.jump(min_epoch):
            self.out("%s: counter epoch raised to %d by the relay" % (self.name, self.ctr.epoch))
            # Report ids move to the new epoch's block too, keeping their sequence number.
            self._seed_reports(self.sim.tracker.next_report & _RID_N)
        if self.relay_epoch is not None and epoch != self.relay_epoch:
            # A restarted relay: its clock, its copies of our tracks and our picture are gone.
            self.out("%s: relay restarted (epoch %d -> %d)" % (self.name, self.relay_epoch, epoch))
            self.sync.reset()
            self.pending = {}
            self.next_sync = 0
            self.up_held.clear()
            if self.picture is not None:
                self.picture.clear()
            if not nonce:
                self._hello()
        self.relay_epoch = epoch
        if nonce:
            self._hello(nonce)

    def _refused_challenge(self, f, now):
        # An authentic relay challenge below our mark of the relay's counter: a replay, or a relay
        # that lost its state file (PROTOCOL.md 2.2). Answered, at most once a second and storing
        # nothing, with min_epoch above that mark: only the relay that asked can take the answer.
        p = f.payload
        if len(p) < 17 or len(p) != 17 + p[12] or p[0] != 1:
            return
        if self.refused_hello_us is not None and now - self.refused_hello_us < _HEARTBEAT_US:
            return
        self.refused_hello_us = now
        self._hello(struct.unpack_from("<I", p, len(p) - 4)[0], (self.ring.marks[f.key_id] >> 28) + 1)

    def _on_keyframe_req(self, f):
        p = f.payload
        if not p or len(p) != 1 + 4 * p[0]:
            raise wire.WireError("malformed", "KEYFRAME_REQ")
        self.counts["keyframe_reqs_rx"] += 1
        if not p[0]:
            self.up_held.clear()
        for k in range(p[0]):
            tid = struct.unpack_from("<I", p, 1 + 4 * k)[0]
            if tid in self.up_held:
                del self.up_held[tid]

    def _on_picture(self, f, rx_local):
        pic = self.picture
        if pic is None:
            pic = self.picture = codec.Table()   # 12 tracks, PICTUREs of up to 8 records
        n = pic.decode(f.payload)
        c = self.counts
        c["pictures"] += 1
        rx_relay = self.sync.to_relay(rx_local) if self.sync.synced else 0
        missing = []  # type: list
        for row in range(pic.size, pic.size + n):
            status = pic.b[8 * row + 5]     # codec.Table's row layout
            if status == codec.NO_BASE:
                c["no_base"] += 1
                # Ask again only for a track the table keeps: a refused one would be refused
                # again (displacing nothing), its keyframe wasted downlink.
                if len(missing) < 255 and pic.wanted(row):
                    missing.append(pic.w[3 * row])
            elif status == codec.OK and pic.b[8 * row + 4] != codec.DROP:
                c["fused_updates"] += 1
                s = pic.src0[row]
                k = pic.b[8 * row + 7]
                if k:
                    out = bytearray(struct.pack(_DELIVERY, rx_local, rx_relay, pic.w[3 * row], k))
                    for j in range(s, s + k):
                        out += struct.pack(_PAIR, pic.snode[j], pic.srid[j])
                    self.send(wire.DELIVERY, out)
                    c["deliveries"] += 1
        if missing:
            self.send(wire.KEYFRAME_REQ, struct.pack("<B%dI" % len(missing), len(missing), *missing))
            c["keyframe_reqs_sent"] += 1

    def _on_warning(self, f):
        _need(f.payload, 42)
        m = struct.unpack(_WARNING, f.payload)
        wid, status, kind = m[0], m[2], m[10]
        if (status > 2 or m[9] > 35999 or abs(m[5]) > 900000000 or abs(m[6]) > 1800000000 or kind > 3
                or m[11] > 4 or m[12] > 35999):
            raise wire.WireError("malformed", "WARNING field out of range")
        self.counts["warning_copies"] += 1
        self.send(wire.WARNING_ACK, struct.pack("<I", wid), wire.URGENT)
        self.counts["warning_acks"] += 1
        digest = crc32(f.payload)
        if self.seen.get(wid) == digest:
            return  # a retransmission: acknowledged again, shown once
        if wid not in self.seen:
            self.seen_order.append(wid)
            if len(self.seen_order) > _SEEN_WARNINGS:
                del self.seen[self.seen_order.pop(0)]
        self.seen[wid] = digest
        self.counts["warnings"] += 1
        # Keyed by track, nation and impact/overflight: a cancel (status 2) is a warning of its
        # own id; an EEZ -> territory upgrade is an update of the same key. Launch alerts are news.
        key = (m[1], m[3], 1 if kind == 2 else 0)
        if kind == 3:
            pass
        elif status == 2:
            self.active.pop(key, None)
        else:
            self.active[key] = wid
        if self.led is not None:
            self.led.value(1 if self.active else 0)
        self.out(self.warning_line(m))

    def warning_line(self, m):
        """The one console line of a WARNING payload's fields (the tuple of PROTOCOL.md 4.5)."""
        wid, tid, status, nation, impact_us, lat, lon, a, b, orient, kind, cls, az, sig = m
        when = ""
        if self.sync.synced:
            when = " %.1f s" % ((impact_us - self.sync.to_relay(self.clock.local_us())) * 1e-6)
        lat *= 1e-7
        lon *= 1e-7
        where = "no nation" if nation == 0xFF else "nation %d" % nation
        return ("%s: WARNING %d %s track %d %s %s %.3f%s %.3f%s%s (sigma %.1f s), %s, ellipse %.1f x %.1f km at "
                "%.1f deg, azimuth %.1f, class %d"
                % (self.name, wid, _STATUS[status], tid, _KINDS[kind], "launch" if kind == 3 else "impact",
                   abs(lat), "N" if lat >= 0 else "S", abs(lon), "E" if lon >= 0 else "W", when, sig * 0.1,
                   where, a * 1e-3, b * 1e-3, orient * 0.01, az * 0.01, cls))

    def _link_failed(self, e):
        self.counts["link_errors"] += 1
        if self.reopen is None:
            raise e
        if self.link is not None:
            self.out("%s: link lost (%s), reopening" % (self.name, e))
            try:
                self.link.close()
            except OSError:
                pass
            self.link = None

    # ---- the loop ----

    def run(self):
        """Run until the scenario window is done; returns 0."""
        clock = self.clock
        self.out("%s: boot node %d epoch %d mono_us %d offset_us %d drift_ppb %d link %s" % (
            self.name, self.node, self.ctr.epoch, clock.boot_us, clock.offset_us, clock.drift_ppb,
            self.link.name))
        now = clock.local_us()
        self._hello()
        self.next_hello = now + _HELLO_US
        self.next_beat = now + _HEARTBEAT_US
        self.next_sync = now
        self.next_stats = now + self.stats_us
        self.next_gc = now
        self.next_retry = now
        self.last_rx = now
        self._sample_heap()
        while not self.done:
            now = clock.local_us()
            if self.link is None:
                if now >= self.next_retry:
                    self.next_retry = now + _RETRY_US
                    try:
                        self.link = self.reopen()
                        self.lead = True
                        self.out("%s: link reopened" % self.name)
                    except OSError:
                        pass
                if self.link is None:
                    self._advance(now)
                    _sleep_ms(20)
                    continue
            self._timers(now)
            self._advance(now)
            if self.done or self.link is None:
                continue
            self._receive(self._timeout_ms(now))
        self._sample_heap()
        return 0

    def _timers(self, now):
        if now >= self.next_beat:
            self.next_beat += _HEARTBEAT_US
            if self.next_beat < now:
                self.next_beat = now + _HEARTBEAT_US
            self._heartbeat(now)
        if now >= self.next_sync:
            self.next_sync = now + self.sync.interval_us()
            self._sync_request()
        if not self.hello_answered and now >= self.next_hello:
            self.next_hello = now + _HELLO_US
            self._hello()
        if self.relay_seen and now - self.last_rx > _LINK_DOWN_US:
            self.relay_seen = False
            self.hello_answered = False
            self.next_hello = now + _HELLO_US
            self.out("%s: relay link down (no frame for %.1f s)" % (self.name, (now - self.last_rx) * 1e-6))
        if self.stats_us and now >= self.next_stats:
            self.next_stats = now + self.stats_us
            self._stats()
        if now >= self.next_gc:
            self.next_gc = now + _GC_US
            self._sample_heap()

    def _timeout_ms(self, now):
        nxt = self.next_beat
        if self.next_sync < nxt:
            nxt = self.next_sync
        scan = self._next_scan_local()
        if scan is not None and scan < nxt:
            nxt = scan
        ms = (nxt - now) // 1000
        if ms < 0:
            return 0
        return ms if ms < _POLL_MAX_MS else _POLL_MAX_MS

    def _next_scan_local(self):
        if self.base0 is None and self.epoch_us is None:
            return None
        if self.epoch_us is not None and not self.sync.synced:
            return None
        best = None
        for r in self.sim.radars:
            if best is None or r.next_scan < best:
                best = r.next_scan
        if best is None:
            return None
        if best > self.end:
            best = self.end
        return self._local_of_scen(best)

    def _sample_heap(self):
        if not hasattr(gc, "mem_alloc"):
            return
        a = gc.mem_alloc()
        if a > self.peak_alloc:
            self.peak_alloc = a
        gc.collect()
        a = gc.mem_alloc()
        if a > self.peak_live:
            self.peak_live = a

    def summary(self):
        """What the board prints at exit: counters, sync, lag and heap (bytes; 0 on CPython)."""
        pic = self.picture
        return {"board": self.name, "node": self.node, "epoch": self.ctr.epoch, "counts": self.counts,
                "sync": {"synced": self.sync.synced, "offset_us": self.sync.offset_us,
                         "base_local_us": self.sync.base_local,
                         "delay_us": self.sync.delay_us, "drift_ppm": self.sync.drift_ppm},
                "max_lag_us": self.max_lag_us,
                "scenario_t": self.sim.t if self.sim is not None else self.scenario_t,
                "peak_live_heap": self.peak_live, "peak_alloc_heap": self.peak_alloc,
                "picture_tracks": len(pic.index) if pic else 0, "picture_refused": pic.refused if pic else 0,
                "picture_evicted": pic.evicted if pic else 0, "active_warnings": len(self.active),
                # serial receive errors (PROTOCOL.md 3.3 cases 1-7) are the deframer's own counts
                "deframer": self.deframer.counts if self.deframer is not None else None}


def _sleep_ms(ms):
    import time
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(ms)
    else:
        time.sleep(ms / 1000.0)


def run_node(node, out=print):
    """Run ``node`` to the end of its window (or Ctrl-C), close its link and print
    ``NAME: summary {json}`` through ``out`` as the last line; returns the exit code."""
    code = 0
    try:
        code = node.run()
    except KeyboardInterrupt:
        pass
    finally:
        if node.link is not None:
            node.link.close()
    # The simulation is done: give its heap to the summary's formatting.
    node.scenario_t = node.sim.t
    node.sim = None
    gc.collect()
    out(node.name + ": summary " + json.dumps(node.summary()))
    return code
