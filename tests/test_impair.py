"""The impairment spec: parsing, errors that name the key, seeded draws."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from trilink.impair import BitErrors, Impairment, ImpairmentError, Window


def test_parses_the_documented_example() -> None:
    imp = Impairment.parse("ber=1e-4,drop=1e-3,delay=5ms,unplug=3s@10s")
    assert imp.ber == 1e-4 and imp.drop == 1e-3 and imp.delay_s == pytest.approx(0.005)
    assert imp.unplug == Window(3.0, 10.0)
    assert imp.vanish is None and imp.seed == 0


@pytest.mark.parametrize(
    "spec, field, value",
    [
        ("loss=10%", "drop", 0.1),
        ("dup=0.5%", "dup", 0.005),
        ("reorder=0.01", "reorder", 0.01),
        ("delay=250us", "delay_s", 250e-6),
        ("delay=1.5s", "delay_s", 1.5),
        ("delay=2min", "delay_s", 120.0),
        ("seed=0x10", "seed", 16),
        ("vanish=1s@2s/5s", "vanish", Window(1.0, 2.0, 5.0)),
    ],
)
def test_parses_each_key(spec: str, field: str, value: object) -> None:
    got = getattr(Impairment.parse(spec), field)
    assert got == (pytest.approx(value) if isinstance(value, float) else value)


@pytest.mark.parametrize("spec", ["", "none", "  ", ",", "NONE"])
def test_empty_spec_is_a_clean_link(spec: str) -> None:
    imp = Impairment.parse(spec)
    assert imp.clean and imp == Impairment() and str(imp) == "none"


@pytest.mark.parametrize(
    "spec, named",
    [
        ("bre=1e-4", "'bre'"),
        ("ber=1e-4,jitter=5ms", "'jitter'"),
        ("ber=2", "ber="),
        ("ber=-0.1", "ber="),
        ("drop=abc", "drop="),
        ("loss=150%", "loss="),
        ("delay=5", "delay="),  # a time needs its unit
        ("delay=-5ms", "delay="),
        ("unplug=3s", "unplug="),
        ("unplug=3s@x", "unplug="),
        ("unplug=3s@1s/2s", "unplug="),  # period shorter than the duration
        ("vanish=0s@1s", "vanish="),
        ("seed=1.5", "seed"),
        ("ber=1e-4,ber=1e-3", "'ber' given twice"),
        ("drop=1e-3,loss=1e-3", "'drop' given twice"),
        ("ber", "'ber' needs a value"),
    ],
)
def test_bad_spec_raises_naming_the_key(spec: str, named: str) -> None:
    with pytest.raises(ImpairmentError) as exc:
        Impairment.parse(spec)
    assert named in str(exc.value)
    assert isinstance(exc.value, ValueError)  # CLIs catch ValueError


def test_for_link_rejects_keys_of_the_other_link() -> None:
    Impairment.parse("ber=1e-4,vanish=1s@1s").for_link("serial")
    Impairment.parse("dup=1%,reorder=1%").for_link("udp")
    with pytest.raises(ImpairmentError, match="'reorder' does not apply to a serial link"):
        Impairment.parse("reorder=1%").for_link("serial")
    with pytest.raises(ImpairmentError, match="'ber' does not apply to a udp link"):
        Impairment.parse("ber=1e-5").for_link("udp")
    with pytest.raises(ImpairmentError, match="'vanish'"):
        Impairment.parse("vanish=1s@0s").for_link("udp")


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ImpairmentError, match="ber"):
        Impairment(ber=1.5)
    with pytest.raises(ImpairmentError, match="delay"):
        Impairment(delay_s=-1.0)
    with pytest.raises(ImpairmentError, match="period"):
        Window(2.0, 0.0, 1.0)


def test_window_schedule() -> None:
    once = Window(3.0, 10.0)
    assert [once.active(t) for t in (9.99, 10.0, 12.99, 13.0)] == [False, True, True, False]
    assert [once.started(t) for t in (5, 10, 100)] == [0, 1, 1]
    assert once.next_edge(0) == 10.0 and once.next_edge(10.5) == 13.0 and once.next_edge(13.0) is None
    every = Window(1.0, 2.0, 5.0)
    assert [every.active(t) for t in (2.5, 3.5, 7.2, 8.1, 12.9)] == [True, False, True, False, True]
    assert every.started(12.0) == 3
    assert every.next_edge(3.5) == 7.0 and every.next_edge(7.5) == 8.0


spec_values = st.fixed_dictionaries(
    {},
    optional={
        "ber": st.sampled_from(["1e-5", "1e-4", "0.001", "2.5%"]),
        "loss": st.sampled_from(["0", "0.1", "30%"]),
        "dup": st.sampled_from(["0.01", "1%"]),
        "reorder": st.sampled_from(["0.05"]),
        "delay": st.sampled_from(["5ms", "250us", "1.5s", "0.5ms"]),
        "unplug": st.sampled_from(["3s@10s", "1s@2s/5s", "500ms@0s"]),
        "vanish": st.sampled_from(["1s@1s"]),
        "seed": st.integers(0, 2**31),
    },
)


@settings(max_examples=200, deadline=None)
@given(spec_values)
def test_str_round_trips(values: dict) -> None:
    spec = ",".join(f"{k}={v}" for k, v in values.items())
    imp = Impairment.parse(spec)
    again = Impairment.parse(str(imp))
    assert again == imp
    assert str(again) == str(imp)


def test_rng_is_seeded_and_streams_independent() -> None:
    imp = Impairment.parse("seed=42")
    first = imp.rng("ab").random()
    assert Impairment.parse("seed=42").rng("ab").random() == first
    assert imp.rng("ba").random() != first
    assert Impairment.parse("seed=43").rng("ab").random() != first
    assert imp.with_seed(43).rng("ab").random() == Impairment.parse("seed=43").rng("ab").random()


@pytest.mark.parametrize("p", [1e-3, 0.05, 0.3])
def test_bit_errors_rate_matches_p(p: float) -> None:
    # Geometric skips must give the same rate as one draw per trial: the
    # count over n trials is Binomial(n, p); allow 6 standard deviations.
    n_bytes = 50_000
    be = BitErrors(p, random.Random(7))
    flips = sum(bin(be.flip_mask()).count("1") for _ in range(n_bytes))
    n = 8 * n_bytes
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(flips - n * p) < 6 * sd
    hits = BitErrors(p, random.Random(8))
    k = sum(hits.hit() for _ in range(n))
    assert abs(k - n * p) < 6 * sd


def test_bit_errors_spread_over_all_bit_positions() -> None:
    be = BitErrors(0.01, random.Random(3))
    per_bit = [0] * 8
    for _ in range(40_000):
        m = be.flip_mask()
        for i in range(8):
            per_bit[i] += (m >> i) & 1
    # each position expects 400 (sd 20)
    assert all(280 < c < 520 for c in per_bit), per_bit


def test_bit_errors_edges() -> None:
    assert all(BitErrors(0.0, random.Random(1)).flip_mask() == 0 for _ in range(1000))
    assert all(BitErrors(1.0, random.Random(1)).flip_mask() == 0xFF for _ in range(10))
    assert all(BitErrors(1.0, random.Random(1)).hit() for _ in range(10))
