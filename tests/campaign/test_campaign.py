"""The short reliability campaign (docs/RELIABILITY.md), run by the normal test suite:
every case of tests/campaign/cases.py with a 20-s window, cases of one group
side by side (each its own relay, boards and links), about 2.5 minutes in
all. Each asserts the campaign's acceptance (docs/RELIABILITY.md) through ``CaseResult.failures``:
zero crashes, zero forged/replayed/corrupted frames accepted, zero warnings
lost, counters equal to the injections where exactly knowable, recovery
after an unplug <= 2 s and after a relay restart <= 5 s, relay RSS growth
under the 10x load <= 10 MB.

The fuzz cases' CI share (10^6 inputs each under ASan + UBSan) is
tests/test_wire_sanitizers.py and tests/test_codec_fuzz.py; the long run
(``python tools/campaign.py --long``) gives each driver 10^7.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from campaign import cases

WINDOW_S = 20.0


def run_side_by_side(tmp_path, jobs):
    """Run (name, fn, args) jobs at once; every result, in order."""
    with ThreadPoolExecutor(len(jobs)) as ex:
        futs = [ex.submit(fn, tmp_path / name, *args) for name, fn, args in jobs]
        return [f.result() for f in futs]


def assert_passed(results):
    bad = {r.name: r.failures for r in results if r.failures}
    assert not bad, "\n".join(f"{n}: {f}\n  {r.counted}" for r in results for n, f in bad.items() if r.name == n)


def test_noise_on_serial_links(tmp_path):
    results = run_side_by_side(tmp_path, [(f"ber{b:g}", cases.noise_serial, (b, WINDOW_S))
                                          for b in (1e-5, 1e-4, 1e-3)])
    assert_passed(results)
    # BER 1e-3 damages frames: the check that the relay rejects them is not vacuous
    assert results[-1].counts["damaged"] > 0, results[-1].counted


def test_noise_on_udp_links(tmp_path):
    results = run_side_by_side(tmp_path, [
        ("mild", cases.noise_udp, ("loss=1%,dup=5%,reorder=5%", WINDOW_S)),
        ("loss10", cases.noise_udp, ("loss=10%", WINDOW_S)),
        ("loss30", cases.noise_udp, ("loss=30%", WINDOW_S))])
    assert_passed(results)


def test_faults(tmp_path):
    results = run_side_by_side(tmp_path, [
        ("unplug", cases.unplug, (WINDOW_S,)),
        ("kill", cases.kill_board, (WINDOW_S,)),
        ("restart", cases.relay_restart, (WINDOW_S,)),
        ("clock", cases.clock_step, (WINDOW_S,))])
    assert_passed(results)
    unplug, _, restart, _ = results
    assert unplug.recovery_s is not None and unplug.recovery_s <= cases.UNPLUG_LIMIT_S
    assert restart.recovery_s is not None and restart.recovery_s <= cases.RELAY_RESTART_LIMIT_S


def test_load_debris_at_ten_times(tmp_path):
    r = cases.load(tmp_path, WINDOW_S)
    assert_passed([r])
    assert r.rss_growth_mb is not None and r.rss_growth_mb <= cases.RSS_LIMIT_MB


def test_adversary_on_a_udp_link(tmp_path):
    assert_passed([cases.adversary(tmp_path, WINDOW_S)])


def test_relay_kill_then_replay(tmp_path):
    r = cases.relay_kill_replay(tmp_path, WINDOW_S)
    assert_passed([r])
    assert r.counts["refused"] >= r.counts["replayed"] == 40


def test_state_file_unwritable(tmp_path):
    assert_passed([cases.state_unwritable(tmp_path, WINDOW_S)])


def test_capture_disk_full(tmp_path):
    assert_passed([cases.capture_disk_full(tmp_path, WINDOW_S)])


def test_two_boards_behind_one_learned_udp_link(tmp_path):
    r = cases.shared_learned_link(tmp_path, WINDOW_S)
    assert_passed([r])
    assert r.counts["kr_named_jp"] > 0 and r.counts["jp_named_kr"] == 0 and r.counts["leaked"] == 0


def test_relay_that_lost_its_state_file(tmp_path):
    r = cases.relay_lost_state(tmp_path, WINDOW_S)
    assert_passed([r])
    assert r.counts["refused"] == r.counts["replayed"] == 40 and r.counts["epoch"] == 2
