# sim_stream.py: print one nation's simulated plot and track stream as JSON lines
"""Run a scenario through one nation's radars and tracker; print the stream.

Used to check that CPython and MicroPython produce the same stream:

    micropython -X heapsize=192K boards/sim_stream.py default jp 60
    python3 boards/sim_stream.py default jp 60

Arguments: scenario, nation, seconds of scenario time, optional seed. One
JSON object per line: {"p": [t, radar, r, az, el, oid]} per plot and
{"k": [t, tid, report_id, x0..x5, P00, P11, P22, P33, P44, P55]} per track
report; a last {"end": ...} line carries counts and the live heap after a
final collection (MicroPython; 0 on CPython).
"""
import sys

try:
    sys.path.append(__file__[: __file__.rfind("/")] if "/" in __file__ else ".")
except NameError:
    pass

from trilink_board import config
from trilink_board.sim import Simulation


def main(argv):
    if len(argv) < 3:
        print("usage: sim_stream.py SCENARIO NATION SECONDS [SEED]")
        return 2
    try:
        scen = config.load_scenario(argv[0])
        nat = config.load_nation(argv[1])
    except config.ConfigError as e:
        print("error: " + str(e))
        return 1
    seed = int(argv[3]) if len(argv) > 3 else None
    sim = Simulation(scen, nat, seed)
    until = float(argv[2])
    n_plots = 0
    n_reports = 0
    while sim.step(until):
        for i in range(sim.n_plots):
            p = sim.plots[i]
            print('{"p": [%.6f, %d, %.4f, %.9f, %.9f, %d]}' % (p.t, p.radar, p.r, p.az, p.el, p.oid))
        n_plots += sim.n_plots
        for tr in sim.tracker.updated[:sim.n_updated]:
            x = tr.x
            P = tr.P
            print('{"k": [%.6f, %d, %d, %.3f, %.3f, %.3f, %.4f, %.4f, %.4f, %.3f, %.3f, %.3f, %.4f, %.4f, %.4f]}'
                  % (sim.t, tr.tid, tr.report_id, x[0], x[1], x[2], x[3], x[4], x[5],
                     P[0], P[7], P[14], P[21], P[28], P[35]))
        n_reports += sim.n_updated
    import gc
    gc.collect()
    live = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    print('{"end": {"plots": %d, "reports": %d, "live_heap": %d}}' % (n_plots, n_reports, live))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
