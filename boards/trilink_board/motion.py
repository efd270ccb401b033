# motion.py: ballistic acceleration in an Earth-fixed ENU frame
"""Unpowered motion in a local, Earth-fixed ENU frame (``geo.LocalFrame``).

Gravity is the WGS-84 point mass plus the J2 oblateness term, pointing at the
Earth's centre; because the frame turns with the Earth, Coriolis and
centrifugal terms are added. Both the truth and the local tracker use it.

    >>> f = geo.LocalFrame(40.89, 140.30, 0.0)
    >>> ax, ay, az = accel(f, 0.0, 0.0, 100e3, 0.0, 0.0, 0.0)   # az ~ -9.5 m/s^2
"""
import math

from trilink_board import geo


def accel(frame, px, py, pz, vx, vy, vz):
    """Acceleration (ax, ay, az) m/s^2 of a free body at (p, v) in ``frame``."""
    c = frame.centre
    k = frame.axis
    rx = px - c[0]
    ry = py - c[1]
    rz = pz - c[2]
    r2 = rx * rx + ry * ry + rz * rz
    r = math.sqrt(r2)
    z = rx * k[0] + ry * k[1] + rz * k[2]      # distance along the spin axis
    gm_r3 = geo.GM / (r2 * r)
    j = 1.5 * geo.J2 * geo.WGS84_A * geo.WGS84_A / r2
    # J2: a = -GM r/r^3 [1 + j (1 - 5 z^2/r^2)] - GM/r^3 j 2 z k
    fa = -gm_r3 * (1.0 + j * (1.0 - 5.0 * z * z / r2))
    fk = -gm_r3 * j * 2.0 * z
    w = geo.OMEGA_E
    ww = w * w
    # -2 w (k x v) and -w^2 k x (k x r) = w^2 (r - (k.r) k)
    cx = k[1] * vz - k[2] * vy
    cy = k[2] * vx - k[0] * vz
    cz = k[0] * vy - k[1] * vx
    return (fa * rx + fk * k[0] - 2.0 * w * cx + ww * (rx - z * k[0]),
            fa * ry + fk * k[1] - 2.0 * w * cy + ww * (ry - z * k[1]),
            fa * rz + fk * k[2] - 2.0 * w * cz + ww * (rz - z * k[2]))


def propagate(frame, s, h):
    """Advance the state list/array ``s`` = [px, py, pz, vx, vy, vz] by ``h`` seconds (one RK4 step), in place."""
    x0, y0, z0, u0, v0, w0 = s[0], s[1], s[2], s[3], s[4], s[5]
    h2 = 0.5 * h
    a1 = accel(frame, x0, y0, z0, u0, v0, w0)
    u2 = u0 + h2 * a1[0]
    v2 = v0 + h2 * a1[1]
    w2 = w0 + h2 * a1[2]
    a2 = accel(frame, x0 + h2 * u0, y0 + h2 * v0, z0 + h2 * w0, u2, v2, w2)
    u3 = u0 + h2 * a2[0]
    v3 = v0 + h2 * a2[1]
    w3 = w0 + h2 * a2[2]
    a3 = accel(frame, x0 + h2 * u2, y0 + h2 * v2, z0 + h2 * w2, u3, v3, w3)
    u4 = u0 + h * a3[0]
    v4 = v0 + h * a3[1]
    w4 = w0 + h * a3[2]
    a4 = accel(frame, x0 + h * u3, y0 + h * v3, z0 + h * w3, u4, v4, w4)
    h6 = h / 6.0
    s[0] = x0 + h6 * (u0 + 2.0 * u2 + 2.0 * u3 + u4)
    s[1] = y0 + h6 * (v0 + 2.0 * v2 + 2.0 * v3 + v4)
    s[2] = z0 + h6 * (w0 + 2.0 * w2 + 2.0 * w3 + w4)
    s[3] = u0 + h6 * (a1[0] + 2.0 * a2[0] + 2.0 * a3[0] + a4[0])
    s[4] = v0 + h6 * (a1[1] + 2.0 * a2[1] + 2.0 * a3[1] + a4[1])
    s[5] = w0 + h6 * (a1[2] + 2.0 * a2[2] + 2.0 * a3[2] + a4[2])
