# truth_view.py: one object of a truth.Truth as an object (host code and tests; a board reads the columns)
"""Views onto the columns of ``truth.Truth``, for code that wants an object
per missile or fragment (the bench's truth, the tests). A board never loads
this module: its simulation reads the columns.

    >>> t = Truth([...]); t.advance(600.0)
    >>> ob = t.objects[0]          # views(t)[0]
    >>> ob.oid, ob.name, ob.state, ob.p[2], ob.apogee
"""


class TruthObject:
    """Object ``i`` of ``truth`` (live: reads its columns). ``p`` and ``v`` are
    memoryviews of 3 float32 (launch ENU); the rest as in ``truth.Truth``."""

    def __init__(self, truth, i):
        self.truth = truth
        self.i = i
        self.oid = i + 1
        self.frame_index = truth.frame[i]
        self.parent = truth.parent[i]

    @property
    def name(self):
        return self.truth.name_of(self.i)

    @property
    def p(self):
        return memoryview(self.truth.p)[3 * self.i:3 * self.i + 3]

    @property
    def v(self):
        return memoryview(self.truth.v)[3 * self.i:3 * self.i + 3]

    @property
    def t(self):
        return self.truth.t[self.i]

    @property
    def t_start(self):
        return self.truth.t_start[self.i]

    @property
    def t_launch(self):
        return self.truth.t_launch[self.i]

    @property
    def apogee(self):
        return self.truth.apogee[self.i]

    @property
    def t_impact(self):
        return self.truth.t_impact[self.i]

    @property
    def state(self):
        return self.truth.state[self.i]

    @property
    def boost(self):
        b = self.truth.boost
        return b[self.i] if self.i < len(b) else None

    def flying(self):
        """True while the object is in flight."""
        return self.truth.state[self.i] == 1


def views(truth):
    """A list of a ``TruthObject`` per object of ``truth``, by index (oid - 1)."""
    return [TruthObject(truth, i) for i in range(truth.n)]
