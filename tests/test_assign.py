"""Optimal assignment (native/c/assign.c) against scipy's linear_sum_assignment."""
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from trilink_native import binding
from trilink_native.reference import fusion as ref


def _random_problem(rng: np.random.Generator) -> np.ndarray:
    nr, nc = rng.integers(1, 65, size=2)
    kind = rng.integers(4)
    if kind == 0:
        c = rng.random((nr, nc))
    elif kind == 1:  # many ties
        c = rng.integers(0, 5, size=(nr, nc)).astype(float)
    elif kind == 2:  # wide dynamic range, negative costs
        c = rng.normal(size=(nr, nc)) * 10.0 ** rng.integers(-3, 4)
    else:  # chi-square-like gating costs
        c = rng.chisquare(6, size=(nr, nc))
    p_forbid = rng.choice([0.0, 0.1, 0.5, 0.9])
    c[rng.random((nr, nc)) < p_forbid] = np.inf
    return c


def _scipy_total(c: np.ndarray) -> float | None:
    try:
        r, k = linear_sum_assignment(c)
    except ValueError:
        return None
    return float(c[r, k].sum())


def test_matches_scipy_on_10k_random_rectangular_problems_with_forbidden_pairs():
    rng = np.random.default_rng(20240604)
    problems = [_random_problem(rng) for _ in range(10_000)]
    r2cs, totals, status = binding.assign_batch(problems)
    infeasible = 0
    for c, r2c, total, st in zip(problems, r2cs, totals, status):
        want = _scipy_total(c)
        if want is None:
            infeasible += 1
            assert st == -3
            continue
        assert st == 0
        used = r2c[r2c >= 0]
        assert len(used) == min(c.shape)
        assert len(set(used.tolist())) == len(used)
        assert np.isfinite(c[np.flatnonzero(r2c >= 0), used]).all()
        assert total == pytest.approx(want, rel=1e-12, abs=1e-9)
        assert total == pytest.approx(c[np.flatnonzero(r2c >= 0), used].sum(), rel=1e-12, abs=1e-12)
    # The mix must exercise both outcomes.
    assert 0 < infeasible < len(problems) // 2


def test_single_call_matches_scipy_and_returns_scipy_shape():
    c = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    rows, cols, total = binding.assign(c)
    r, k = linear_sum_assignment(c)
    assert total == c[r, k].sum() == 5.0
    assert rows.tolist() == r.tolist() and cols.tolist() == k.tolist()
    rows, cols, total = binding.assign(c.T[:2])  # tall and wide views
    assert total == pytest.approx(_scipy_total(c.T[:2]))


def test_reference_agrees_with_scipy():
    rng = np.random.default_rng(7)
    for _ in range(300):
        c = _random_problem(rng)[:12, :12]
        want = _scipy_total(c)
        if want is None:
            with pytest.raises(ValueError):
                ref.assign(c)
        else:
            assert ref.assign(c)[1] == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_empty_and_infeasible_and_bad_costs():
    assert binding.assign(np.zeros((0, 3)))[2] == 0.0
    assert binding.assign(np.zeros((3, 0)))[2] == 0.0
    with pytest.raises(binding.AssignmentInfeasible):
        binding.assign([[np.inf, np.inf], [1.0, 2.0]])
    with pytest.raises(ValueError):
        binding.assign([[np.nan, 1.0]])
    with pytest.raises(ValueError):
        binding.assign([[-np.inf, 1.0]])
    with pytest.raises(ValueError):
        binding.assign([1.0, 2.0])


def test_batch_failure_does_not_touch_neighbours():
    good = np.array([[1.0, 2.0], [2.0, 1.0]])
    r2cs, totals, status = binding.assign_batch([good, [[np.nan]], [[np.inf]], good])
    assert status.tolist() == [0, -2, -3, 0]
    assert totals.tolist() == [2.0, 0.0, 0.0, 2.0]
    assert r2cs[0].tolist() == r2cs[3].tolist() == [0, 1]
    assert r2cs[1].tolist() == r2cs[2].tolist() == [-1]
