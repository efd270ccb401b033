"""The kernel's error tree and the one function that turns a return code into it.

Every C call of the binding that can fail goes through :func:`check` with the
:class:`Codes` of its header; the codes and their names are read from ``lib``
(the headers' enums), never written again here.

    >>> from trilink_native._kernel import lib
    >>> check(3, CODEC, "encode")
    3
    >>> try:
    ...     check(lib.TL_CODEC_ETRUNC, CODEC, "decode")
    ... except CodecError as e:
    ...     e.reason, e.code == lib.TL_CODEC_ETRUNC, isinstance(e, KernelError)
    ('truncated', True, True)
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Tuple, Type

from trilink_native._kernel import lib

ABI_VERSION = 1


def abi_version() -> int:
    """ABI version of the compiled kernel.

        >>> abi_version() == ABI_VERSION
        True
    """
    return int(lib.tl_abi_version())


if abi_version() != ABI_VERSION:  # a stale build next to new Python code
    raise ImportError(
        f"trilink_native._kernel has ABI {abi_version()}, binding expects {ABI_VERSION}; "
        "reinstall with `pip install -e .`"
    )


class KernelError(Exception):
    """A C kernel call returned an error code. ``reason`` names it (for the
    wire and the codec, the counter or error name of PROTOCOL.md), ``code``
    is the C value (None when the binding itself refused).

        >>> str(KernelError("no_space", "encode", -6))
        'no_space (encode, code -6)'
    """

    def __init__(self, reason: str, detail: Optional[str] = None, code: Optional[int] = None) -> None:
        extra = [s for s in (detail, None if code is None else f"code {code}") if s]
        super().__init__(reason + (f" ({', '.join(extra)})" if extra else ""))
        self.reason = reason
        self.code = code


class KernelArgumentError(KernelError, ValueError):
    """The kernel rejected a call's arguments as a whole (a binding or caller bug)."""


class WireError(KernelError, ValueError):
    """A frame, chunk or argument was rejected. ``reason`` is the counter name
    of PROTOCOL.md section 3.3: ``crc_error``, ``malformed``, ``oversize``,
    ``auth_fail``, ``replay`` or ``wrong_link``.

        >>> from trilink_native.binding import parse_frame
        >>> try:
        ...     parse_frame(b"short")
        ... except WireError as e:
        ...     e.reason
        'malformed'
    """


class CodecError(KernelError, ValueError):
    """A payload that does not decode, or a batch the codec cannot encode;
    ``reason`` names which (see CODEC_REASONS)."""


class FusionError(KernelError):
    """A fusion kernel call refused its input; ``code`` is the TL_TRK_* code
    and ``reason`` its STATUS_NAMES text."""


class FusionArgumentError(FusionError, KernelArgumentError):
    """A fusion kernel call rejected its arguments as a whole (returned -1)."""


class AssignmentInfeasible(FusionError):
    """Forbidden pairs leave no complete matching of the smaller side."""


class PictureError(FusionError):
    """A picture call failed; ``code`` is TL_PIC_E* or TL_TRK_E*."""


# TL_ERR_* code -> counter name (PROTOCOL.md section 3.3).
WIRE_REASONS: Dict[int, str] = {
    int(lib.TL_ERR_CRC): "crc_error",
    int(lib.TL_ERR_MALFORMED): "malformed",
    int(lib.TL_ERR_OVERSIZE): "oversize",
    int(lib.TL_ERR_AUTH): "auth_fail",
    int(lib.TL_ERR_REPLAY): "replay",
    int(lib.TL_ERR_WRONG_LINK): "wrong_link",
}

# TL_CODEC_E* code -> error name (PROTOCOL.md section 5.7 and the encoder's).
CODEC_REASONS: Dict[int, str] = {
    int(lib.TL_CODEC_ETRUNC): "truncated",
    int(lib.TL_CODEC_EVERSION): "version",
    int(lib.TL_CODEC_EMALFORMED): "malformed",
    int(lib.TL_CODEC_ERANGE): "range",
    int(lib.TL_CODEC_ENOBASE): "no_base",
    int(lib.TL_CODEC_ENOSPACE): "no_space",
    int(lib.TL_CODEC_EARG): "argument",
    int(lib.TL_CODEC_EFULL): "full",
}

# TL_TRK_* status (geo.h) -> what it means; per-track status arrays use them too.
STATUS_NAMES: Dict[int, str] = {
    int(lib.TL_TRK_OK): "ok",
    int(lib.TL_TRK_ENONFINITE): "non-finite input or result",
    int(lib.TL_TRK_ENOTPD): "covariance not symmetric positive definite",
    int(lib.TL_TRK_ETIME): "time out of order or step too long",
    int(lib.TL_TRK_ENOIMPACT): "no impact within the search horizon (or already below the surface)",
    int(lib.TL_TRK_EARG): "degenerate geometry",
    int(lib.TL_TRK_ESINGULAR): "singular innovation or geometry",
}

PICTURE_NAMES: Dict[int, str] = {
    int(lib.TL_PIC_EFULL): "table full",
    int(lib.TL_PIC_EUNKNOWN): "unknown track",
    int(lib.TL_PIC_ENODE): f"node id above {int(lib.TL_PIC_MAX_NODE)}",
}

_Entry = Tuple[Type[KernelError], str]


class Codes:
    """The return codes of one header: which values are not errors (``ok``),
    and for each error code the exception class and reason it raises;
    ``other`` is raised for a code the table does not name.

        >>> Codes("demo", lambda rc: rc == 0, {-1: (KernelArgumentError, "argument")}).entry(-1)[1]
        'argument'
    """

    def __init__(self, name: str, ok: Callable[[int], bool], errors: Mapping[int, _Entry],
                 other: Type[KernelError] = KernelError) -> None:
        self.name, self.ok, self.errors, self.other = name, ok, dict(errors), other

    def entry(self, rc: int) -> _Entry:
        return self.errors.get(rc, (self.other, f"{self.name} error {rc}"))

    def but(self, ok: Optional[Callable[[int], bool]] = None, **named: _Entry) -> "Codes":
        """A copy with another ``ok`` rule and/or entries replaced, by lib name."""
        errors = dict(self.errors)
        errors.update({int(getattr(lib, name)): e for name, e in named.items()})
        return Codes(self.name, ok or self.ok, errors, self.other)


def _nonneg(rc: int) -> bool:
    return rc >= 0


def _zero(rc: int) -> bool:
    return rc == 0


def _table(cls: Type[KernelError], names: Mapping[int, str]) -> Dict[int, _Entry]:
    return {code: (cls, name) for code, name in names.items()}


# wire.h: >= 0 is a length or a count.
WIRE = Codes("wire", _nonneg, {
    **_table(WireError, WIRE_REASONS),
    int(lib.TL_ERR_ARG): (KernelArgumentError, "argument"),
    int(lib.TL_ERR_SPACE): (KernelError, "output buffer too small (a binding bug)"),
}, KernelArgumentError)

# cobs.h decode: a bad chunk is a malformed frame (PROTOCOL.md case 2).
COBS = Codes("cobs", _nonneg, {
    int(lib.TL_COBS_EMALFORMED): (WireError, "malformed"),
    int(lib.TL_COBS_ESPACE): (KernelError, "output buffer too small (a binding bug)"),
})

# codec.h: >= 0 is a length or a record count.
CODEC = Codes("codec", _nonneg, _table(CodecError, CODEC_REASONS), CodecError)

# geo.h TL_TRK_*: a single call succeeds with TL_TRK_OK; -1 rejects the arguments.
FUSION = Codes("fusion", _zero, {
    **_table(FusionError, {c: n for c, n in STATUS_NAMES.items() if c}),
    -1: (FusionArgumentError, "arguments rejected by the kernel"),
}, FusionError)
# ... a batched call returns how many tracks failed (each has its status).
FUSION_BATCH = FUSION.but(ok=_nonneg)

# picture.h: TL_TRK_* and TL_PIC_E*.
PICTURE = Codes("picture", _zero, {
    **FUSION.errors,
    **_table(PictureError, {c: n for c, n in STATUS_NAMES.items() if c}),
    **_table(PictureError, PICTURE_NAMES),
}, PictureError)

# assign.h
ASSIGN = Codes("assign", _zero, {
    int(lib.TL_ASSIGN_EARG): (FusionArgumentError, "bad arguments"),
    int(lib.TL_ASSIGN_ECOST): (FusionArgumentError, "cost contains NaN or -inf"),
    int(lib.TL_ASSIGN_EINFEASIBLE): (AssignmentInfeasible, "cost matrix is infeasible"),
}, FusionArgumentError)

# impact.h tl_territory_of: an index, or TL_TERRITORY_NONE.
TERRITORY = Codes("territory", lambda rc: rc >= int(lib.TL_TERRITORY_NONE), {
    int(lib.TL_TERRITORY_EMALFORMED): (FusionArgumentError, "malformed territory polygons"),
}, FusionArgumentError)


def check(rc: int, codes: Codes, what: str, detail: Optional[str] = None) -> int:
    """``rc`` when ``codes`` counts it a success, else raise its exception:
    the class and reason ``codes`` names for it, ``what`` (the call) and
    ``detail`` in the message, ``code`` = rc.

        >>> check(0, FUSION, "ci_fuse")
        0
        >>> try:
        ...     check(int(lib.TL_PIC_EUNKNOWN), PICTURE, "drop")
        ... except PictureError as e:
        ...     str(e)
        'unknown track (drop, code 17)'
    """
    rc = int(rc)
    if codes.ok(rc):
        return rc
    cls, reason = codes.entry(rc)
    raise cls(reason, what if detail is None else f"{what}: {detail}", rc)
