/* trilink kernel: Kalman predict and update. Generic linear predict/update
 * with given F, Q, H, R (the FilterPy-comparable path); position update and
 * a range/azimuth/elevation EKF update for the 6-state ECEF track. Every
 * update uses the Joseph form and leaves P exactly symmetric and checked
 * positive definite (Cholesky); a failed track keeps its input. */
#ifndef TRILINK_KALMAN_H
#define TRILINK_KALMAN_H

#include <stdint.h>
#include "geo.h"
#include "motion.h"

/* cffi:begin */
enum { TL_KF_MAX_X = 9, TL_KF_MAX_Z = 6 };

/* Linear predict for n tracks: x <- F x, P <- F P F^T + Q. x [n,dx], P [n,dx,dx],
 * F and Q [dx,dx] shared. Returns failed count or -1. */
int32_t tl_kf_predict(int32_t n, int32_t dx, double *x, double *P,
                      const double *F, const double *Q, int32_t *status);

/* Linear update (Joseph form, FilterPy's ordering) for n tracks with
 * measurements z [n,dz], H [dz,dx] shared, R [n,dz,dz] per track. */
int32_t tl_kf_update(int32_t n, int32_t dx, int32_t dz, double *x, double *P,
                     const double *z, const double *H, const double *R, int32_t *status);

/* Position update of 6-state ECEF tracks: z [n,3] ECEF m, R [n,9] m^2. */
int32_t tl_kf_update_pos(int32_t n, double *x, double *P, const double *z,
                         const double *R, int32_t *status);

/* EKF update from a radar at site_llh [n,3] (rad, rad, m): z [n,3] =
 * (range m, azimuth rad clockwise from north, elevation rad), R [n,9]. The
 * azimuth innovation is wrapped to (-pi, pi]. */
int32_t tl_kf_update_rae(int32_t n, double *x, double *P, const double *z,
                         const double *R, const double *site_llh, int32_t *status);

/* Predicted measurement (range, az, el) of ECEF position pos[3] from a site. */
int tl_rae_from_ecef(const double pos[3], const double site_llh[3], double rae[3]);

/* Soak: `steps` cycles of tl_kf_predict + tl_kf_update on one track, taking
 * measurement k from zs[(k % nz)*dz]. Every `check_every` steps (and at the
 * end) P is tested for symmetry and positive definiteness; *worst_asym gets
 * the largest max|P-P^T|/max|P| seen. Returns TL_TRK_OK or the first error. */
int tl_kf_soak(int32_t steps, int32_t dx, int32_t dz, double *x, double *P,
               const double *F, const double *Q, const double *H, const double *R,
               const double *zs, int32_t nz, int32_t check_every, double *worst_asym);
/* cffi:end */

#endif
