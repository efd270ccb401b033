# cmdline.py: the board's command line (boards/main.py on MicroPython, `trilink board` on CPython)
"""Parse the board's argv by hand (MicroPython has no argparse), load the
nation, the scenario, the key and the link, and run the firmware.

    micropython boards/main.py --nation jp --link tty:/dev/pts/5 --keys keys.json
    trilink board jp --link udp:9101:127.0.0.1:9100 --keys keys.json --start 30 --speed 10

``main(argv)`` returns the exit code: 0 when the scenario window is done,
1 for bad configuration (one line on stderr naming the file and field, the
link or the option), 2 for bad usage. The last line on stdout is
``NAME: summary {json}`` (counters, time sync, peak heap).
"""
import gc
import sys


USAGE = """usage: main.py --nation NAME --link SPEC --keys FILE [options]

  --nation NAME     boards/nations/NAME.json (or a path to a nation file)
  --link SPEC       tty:PATH[@BAUD] | udp:[BIND_HOST:]BIND_PORT:PEER_HOST:PEER_PORT | uart:ID[@BAUD]
  --keys FILE       key file of `trilink keygen` (the entry of this nation's node is used)
  --scenario NAME   boards/scenarios/NAME.json or a path (default: default)
  --seed N          override the scenario's seed
  --start S         scenario time the run starts at, seconds (default 0; earlier scans are
                    simulated at boot, not reported)
  --duration S      scenario seconds to run, then exit 0 (default: to the scenario's end)
  --speed X         scenario seconds per real second (default 1; record times stay real)
  --epoch US        relay-timebase microseconds at which scenario time START begins (waits for
                    time sync; gives every board of a bench one sky)
  --state FILE      counter-epoch state file (default: trilink-NAME.state beside the key file,
                    else in /tmp)
  --stats S         STATS frame period, seconds (default 10, 0 = none)
  --quiet           print warnings and the summary only
"""

_NUM = {"--seed": int, "--start": float, "--duration": float, "--speed": float, "--epoch": int,
        "--stats": float}
_STR = ("--nation", "--link", "--keys", "--scenario", "--state")


class UsageError(ValueError):
    """Bad command line; the message is one line."""


def parse_args(argv):
    """A dict of the options (names without dashes), or ``UsageError``.

        >>> parse_args(["--nation", "jp", "--link", "udp:1:h:2", "--keys", "k.json"])["speed"]
        1.0
    """
    o = {"scenario": "default", "seed": None, "start": 0.0, "duration": None, "speed": 1.0,
         "epoch": None, "state": None, "stats": 10.0, "quiet": False, "help": False}  # type: dict
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            o["help"] = True
            return o
        if a == "--quiet":
            o["quiet"] = True
            i += 1
            continue
        if a not in _NUM and a not in _STR:
            raise UsageError("unknown option %s" % a)
        if i + 1 >= len(argv):
            raise UsageError("option %s needs a value" % a)
        v = argv[i + 1]
        if a in _NUM:
            try:
                v = _NUM[a](v)
            except ValueError:
                raise UsageError("option %s: %r is not a number" % (a, v))
        o[a[2:]] = v
        i += 2
    for k in ("nation", "link", "keys"):
        if k not in o:
            raise UsageError("option --%s is required" % k)
    if o["speed"] <= 0:
        raise UsageError("option --speed must be above 0")
    if o["start"] < 0 or (o["duration"] is not None and o["duration"] <= 0):
        raise UsageError("options --start must be >= 0 and --duration > 0")
    if o["stats"] < 0:
        raise UsageError("option --stats must be >= 0")
    return o


def _err(msg):
    sys.stderr.write("error: " + msg + "\n")


def _say(line):
    sys.stdout.write(line + "\n")
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()


class ConfigProblem(ValueError):
    """Any of the one-line errors of the configuration files (nation, scenario, key file)."""


def _drop(name):
    # Free a module used only while loading (its code and tables are heap on a board).
    import trilink_board
    sys.modules.pop("trilink_board." + name, None)
    if hasattr(trilink_board, name):
        delattr(trilink_board, name)


def load(opts):
    """The plan ``boot.start`` needs: a dict of ``opts``, ``nation``, ``scenario``,
    ``entry`` (the board's ``keys.KeyEntry``) and ``relay`` (node id). Raises ``ConfigProblem``.

    The loaders (config, keys) are dropped once used: on a board their code
    is heap that the simulation needs."""
    gc.collect()
    from trilink_board import config, keys
    try:
        nation = config.load_nation(opts["nation"])
        scenario = config.load_scenario(opts["scenario"])
        if opts["start"] >= scenario["duration_s"]:
            raise config.ConfigError("%s: --start %.1f is past its duration_s %.1f" % (
                opts["scenario"], opts["start"], scenario["duration_s"]))
    except config.ConfigError as e:
        raise ConfigProblem(str(e))
    try:
        kf = keys.load(opts["keys"])
        entry = kf.entry(nation["node"])
    except keys.KeyFileError as e:
        msg = str(e)
        raise ConfigProblem(msg if opts["keys"] in msg else opts["keys"] + ": " + msg)
    # What the board never reads goes now (jp's coastline alone is kilobytes of floats).
    nation["territory"] = []
    nation["eez"] = []
    nation["long_name"] = ""
    scenario["description"] = ""
    plan = {"opts": opts, "nation": nation, "scenario": scenario, "entry": entry, "relay": kf.relay}
    del config, keys, kf
    _drop("config")
    _drop("keys")
    return plan


def prepare(argv, out=_say):
    """The plan of ``load`` for ``argv``, or an exit code (int) when there is nothing
    to run: 0 after ``--help``, 2 for bad usage, 1 for bad configuration."""
    try:
        opts = parse_args(argv)
    except UsageError as e:
        _err(str(e))
        sys.stderr.write(USAGE)
        return 2
    if opts["help"]:
        out(USAGE)
        return 0
    try:
        return load(opts)
    except ConfigProblem as e:
        _err(str(e))
        return 1


def main(argv, out=_say):
    """Run a board from its argv; returns the exit code (``prepare``, ``boot.start``,
    ``firmware.run_node``; boards/main.py does the same with the heap in mind)."""
    plan = prepare(argv, out)
    if isinstance(plan, int):
        return plan
    from trilink_board import boot
    node = boot.start(plan, out)
    if isinstance(node, int):
        return node
    from trilink_board.firmware import run_node
    return run_node(node, out)
