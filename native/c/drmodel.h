/* trilink kernel: the dead-reckoning motion model (PROTOCOL.md section 5.6).
 *
 * A free body in the nation's local, Earth-fixed ENU frame: WGS-84 point-mass
 * gravity plus J2 toward the Earth's centre, Coriolis and centrifugal terms
 * of the rotating Earth, fixed-step RK4 (floor(dt/step) steps of `step`,
 * then one step of the remainder). The board's copy is
 * boards/trilink_board/deadreckon.py; both ends extrapolate the same way
 * (the same model, not bit-identical floats). */
#ifndef TRILINK_DRMODEL_H
#define TRILINK_DRMODEL_H

/* cffi:begin */
typedef struct tl_drm {
    double cn, cu;   /* Earth's centre in ENU: (0, cn, cu) m */
    double kn, ku;   /* spin axis in ENU: (0, cos lat, sin lat) */
    double step;     /* RK4 step, s */
} tl_drm;

/* Model for an ENU origin at geodetic latitude lat_deg, height h_m. */
void tl_drm_init(tl_drm *m, double lat_deg, double h_m, double step_s);
/* Advance x[6] (m, m/s) by dt_s >= 0 seconds in place. */
void tl_drm_extrapolate(const tl_drm *m, double x[6], double dt_s);
/* cffi:end */

#endif
