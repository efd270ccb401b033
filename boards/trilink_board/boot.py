# boot.py: bring a board up from a loaded plan: simulation, counter epoch, link, node
"""The second half of the board's start (cmdline.py loads the files):

    >>> node = start(cmdline.prepare(["--nation", "jp", "--link", "udp:9101:127.0.0.1:9100",
    ...                                "--keys", "keys.json"]))
    >>> firmware.run_node(node)

The simulation is made first, while the heap is still in one piece (its
preallocations need contiguous blocks on a 192 KB heap), then the picture's
rows (``codec.Table``), then the firmware is imported, the counter epoch bumped and the link opened. Returns the
``firmware.Node``, or 1 after a one-line error on stderr (state file or link).
"""
import gc
import sys

from trilink_board.epoch import EpochCounter, StateError
from trilink_board.link import LinkError, open_link


def _state_path(opts, name):
    # Default: beside the key file; a read-only folder falls back to /tmp.
    if opts["state"]:
        return opts["state"], False
    k = opts["keys"]
    d = k[:k.rfind("/")] if "/" in k else "."
    return d + "/trilink-" + name + ".state", True


def start(plan, out=print):
    """The ``firmware.Node`` of a ``cmdline.load`` plan, or 1 (error printed)."""
    opts = plan["opts"]
    nation = plan["nation"]
    gc.collect()
    from trilink_board.sim import Simulation
    sim = Simulation(plan["scenario"], nation, opts["seed"])
    plan["scenario"] = None
    gc.collect()
    # The picture's preallocated rows next, before the firmware's code takes the larger holes.
    from trilink_board.codec import Table
    picture = Table()
    gc.collect()
    from trilink_board.firmware import Node
    try:
        path, default = _state_path(opts, nation["name"])
        try:
            ctr = EpochCounter(path)
        except StateError:
            if not default:
                raise
            ctr = EpochCounter("/tmp/trilink-" + nation["name"] + ".state")
        link = open_link(opts["link"])
    except (StateError, LinkError) as e:
        sys.stderr.write("error: " + str(e) + "\n")
        return 1
    quiet = opts["quiet"]

    def say(line):
        if not quiet or ": WARNING " in line:
            out(line)

    spec = opts["link"]
    gc.collect()
    node = Node(nation, sim, plan["entry"], plan["relay"], link, ctr, start=opts["start"],
                duration=opts["duration"], speed=opts["speed"], epoch_us=opts["epoch"], stats_s=opts["stats"],
                out=say, reopen=(lambda: open_link(spec)) if not link.datagram else None)
    node.picture = picture
    return node
