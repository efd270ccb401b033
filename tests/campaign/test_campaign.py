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

import pytest

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


# The cases below each need one relay and its boards for a window: they run three
# side by side (two batches, once per session), and each test judges its own.
_BATCHES = (
    (("adversary", cases.adversary), ("kill_replay", cases.relay_kill_replay),
     ("state_unwritable", cases.state_unwritable)),
    (("disk_full", cases.capture_disk_full), ("shared_link", cases.shared_learned_link),
     ("lost_state", cases.relay_lost_state)),
)


@pytest.fixture(scope="module")
def batch_results(tmp_path_factory):
    """name -> CaseResult, the batches run lazily: a test asks for its batch only."""
    done = {}

    def get(name):
        if name not in done:
            batch = next(b for b in _BATCHES if name in dict(b))
            tmp = tmp_path_factory.mktemp("batch")
            for (n, _fn), r in zip(batch, run_side_by_side(tmp, [(n, fn, (WINDOW_S,)) for n, fn in batch])):
                done[n] = r
        return done[name]
    return get


def test_adversary_on_a_udp_link(batch_results):
    assert_passed([batch_results("adversary")])


def test_relay_kill_then_replay(batch_results):
    r = batch_results("kill_replay")
    assert_passed([r])
    assert r.counts["refused"] >= r.counts["replayed"] == 40


def test_state_file_unwritable(batch_results):
    assert_passed([batch_results("state_unwritable")])


def test_capture_disk_full(batch_results):
    assert_passed([batch_results("disk_full")])


def test_two_boards_behind_one_learned_udp_link(batch_results):
    r = batch_results("shared_link")
    assert_passed([r])
    assert r.counts["kr_named_jp"] > 0 and r.counts["jp_named_kr"] == 0 and r.counts["leaked"] == 0


def test_relay_that_lost_its_state_file(batch_results):
    r = batch_results("lost_state")
    assert_passed([r])
    assert r.counts["refused"] == r.counts["replayed"] == 40 and r.counts["epoch"] == 2
