"""The one public door to the C kernel: import the typed wrappers from here.

The binding is one module per C header, as pynacl's ``nacl.bindings`` is;
they are the only Python that touches cffi's ``ffi``/``lib``, and this module
re-exports them so that no caller names a private module:

=================  ==============================  ==========================================
module             header (native/c/)              holds
=================  ==============================  ==========================================
``_errors``        (every header's return codes)   ``KernelError`` and its tree, ``check``
``_arrays``        --                              numpy shape checks and C pointers
``_crc32``         crc32.h                         ``crc32``
``_sha256``        sha256.h                        ``sha256``, ``HmacKey``, ``hmac_sha256``
``_cobs``          cobs.h                          ``cobs_encode``, ``cobs_decode``
``_wire``          wire.h                          frames, ``Keyring``, ``Deframer``
``_codec``         codec.h                         ``TrackBatch``, codec, ``DeadReckoner``
``_drmodel``       drmodel.h                       ``dr_extrapolate``
``_geo``           geo.h                           WGS-84 conversions, TL_TRK_* codes
``_motion``        motion.h                        ``MotionModel``, ``predict``, ``jacobi``
``_kalman``        kalman.h                        ``kf_*``, ``update_position``/``_rae``
``_impact``        impact.h                        ``predict_impact``, ``territory_of``
``_assign``        assign.h                        ``assign``, ``assign_batch``
``_ci``            ci.h                            ``ci_fuse`` and its kin
``_picture``       picture.h                       ``Picture``
``_relaypath``     relaypath.h                     ``RxPath``, ``RxFrames`` (the relay's receive hot path)
=================  ==============================  ==========================================

Each wrapper checks sizes, hands arrays to C as pointers (one call per batch)
and turns a return code into an exception through the one ``check`` function;
every code and size comes from the headers (``lib``). Errors form one tree::

    KernelError
    ├── KernelArgumentError (also ValueError)
    ├── WireError (also ValueError)       reason: the PROTOCOL.md 3.3 counter
    ├── CodecError (also ValueError)      reason: the PROTOCOL.md 5.7 name
    └── FusionError                       code: TL_TRK_*
        ├── FusionArgumentError (also KernelArgumentError)
        ├── AssignmentInfeasible
        └── PictureError                  code: TL_PIC_E* or TL_TRK_*

    >>> from trilink_native import binding
    >>> binding.abi_version()
    1
    >>> issubclass(binding.CodecError, binding.KernelError), issubclass(binding.PictureError, binding.KernelError)
    (True, True)
"""
from __future__ import annotations

from trilink_native._kernel import ffi, lib  # noqa: F401  (the same names as before the split)
from trilink_native._errors import (  # noqa: F401
    ABI_VERSION, CODEC_REASONS, STATUS_NAMES, WIRE_REASONS, AssignmentInfeasible, CodecError, FusionArgumentError,
    FusionError, KernelArgumentError, KernelError, PictureError, WireError, abi_version,
)
from trilink_native._crc32 import crc32  # noqa: F401
from trilink_native._sha256 import SHA256_SIZE, HmacKey, hmac_sha256, sha256  # noqa: F401
from trilink_native._cobs import cobs_decode, cobs_encode  # noqa: F401
from trilink_native._wire import (  # noqa: F401
    BROADCAST, CRC_SIZE, FLAG_ACK_REQ, FLAG_RELAY_TIME, FLAG_RETRANSMIT, FLAG_URGENT, HEADER_SIZE, KEY_SIZE,
    MAX_CHUNK, MAX_COUNTER, MAX_FRAME, MAX_PAYLOAD, MAX_SERIAL, MSG_DELIVERY, MSG_HEARTBEAT, MSG_HELLO,
    MSG_KEYFRAME_REQ, MSG_NAMES, MSG_PICTURE, MSG_STATS, MSG_TIME_SYNC_REQ, MSG_TIME_SYNC_RESP, MSG_TRACK_REPORT, MSG_TYPES,
    MSG_WARNING, MSG_WARNING_ACK, OVERHEAD, TAG_SIZE, WIRE_VERSION, Deframer, Frame, Keyring, pack_frame,
    parse_frame, serial_encode,
)
from trilink_native._codec import (  # noqa: F401
    CODEC_MAX_PAYLOAD, CODEC_MAX_RECORDS, CODEC_MAX_SOURCES, CODEC_PICTURE, CODEC_REPORT, CODEC_VERSION,
    DR_COUNTERS, DR_DROP, DR_UPDATE, REC_DELTA, REC_DROP, REC_DUP, REC_GONE, REC_KEY, REC_NO_BASE, REC_NONE,
    REC_OK, SEND_COV, SEND_IMPACT, SEND_META, CodecTable, DeadReckoner, TrackBatch, codec_decode, codec_encode,
)
from trilink_native._drmodel import dr_extrapolate  # noqa: F401
from trilink_native._geo import (  # noqa: F401
    TRK_EARG, TRK_ENOIMPACT, TRK_ENONFINITE, TRK_ENOTPD, TRK_ESINGULAR, TRK_ETIME, TRK_OK, ecef_to_enu,
    ecef_to_geodetic, enu_to_ecef, geodetic_to_ecef,
)
from trilink_native._motion import MotionModel, acceleration, jacobi, predict, predict_one  # noqa: F401
from trilink_native._kalman import (  # noqa: F401
    kf_predict, kf_soak, kf_update, rae_from_ecef, update_position, update_rae,
)
from trilink_native._impact import Impacts, predict_impact, territory_of  # noqa: F401
from trilink_native._assign import assign, assign_batch  # noqa: F401
from trilink_native._ci import CI_FAST, CI_LOGDET, CI_NAIVE, CI_TRACE, ci_batch, ci_fuse, ci_objective, ci_weighted  # noqa: F401
from trilink_native._picture import PIC_MAX_MEMBERS, PIC_MAX_NODE, PICTURE_STATS, Picture  # noqa: F401
from trilink_native._relaypath import RxFrames, RxPath  # noqa: F401

# The binding's modules, in the order above (tests run each one's docstring examples).
MODULES = ("_errors", "_arrays", "_crc32", "_sha256", "_cobs", "_wire", "_codec", "_drmodel", "_geo", "_motion",
           "_kalman", "_impact", "_assign", "_ci", "_picture", "_relaypath")
