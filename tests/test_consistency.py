"""Fused-picture consistency over 100 Monte Carlo runs of a two-radar IRBM
scenario (tools/fusion_consistency.py): range/az/el EKFs per radar, the C
picture associating and CI-fusing them, impact predicted 60 s before impact."""
import importlib.util
import pathlib

_TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "fusion_consistency.py"
_spec = importlib.util.spec_from_file_location("fusion_consistency", _TOOL)
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)


def test_two_radar_irbm_fusion_is_consistent_accurate_and_predicts_impact():
    res = fc.run(n_runs=100, seed=1)
    print(res)
    # one missile, one fused track in every run at every step
    assert res["fused_count_bad"] == 0
    # average NEES (100 runs) within [5.34, 6.70] or below it (CI is
    # conservative) for at least 95% of the time steps
    assert res["nees_in_or_below"] >= 0.95
    # and not absurdly conservative either: the fused covariance stays
    # within a factor ~3 of the actual error
    assert res["nees_mean"] > 1.5
    # fused position RMSE no worse than the best single source, both while
    # both radars report and over the whole flight
    assert res["both_steps"] > 20
    assert res["rmse_both_fused"] <= min(res["rmse_both_jp"], res["rmse_both_kr"])
    assert res["rmse_all_fused"] <= min(res["rmse_all_jp"], res["rmse_all_kr"])
    # impact point predicted 60 s before impact: within 5 km on average
    assert res["impact_ok"] == 100
    assert res["impact_miss_mean"] <= 5e3
