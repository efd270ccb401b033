/* trilink kernel: 6-state ECEF ballistic motion model (point mass + J2
 * gravity, Coriolis and centrifugal terms of the rotating frame), fixed-step
 * RK4 with the state transition matrix from the variational equations, and
 * white-acceleration process noise. State x = [px py pz vx vy vz] (m, m/s,
 * ECEF); covariance P is 6x6 row-major double[36]. */
#ifndef TRILINK_MOTION_H
#define TRILINK_MOTION_H

#include <stdint.h>
#include "geo.h"

/* Default RK4 step: 1 s. A prediction over dt takes floor(dt/step) full
 * steps and one final step for the remainder (so dt = 0.1 s is one step). */
#define TL_MOTION_STEP_DEFAULT 1.0
/* Default white-acceleration spectral density q, m^2/s^3 per axis. */
#define TL_MOTION_Q_DEFAULT 1.0
/* Longest single prediction accepted (s); a longer one is TL_TRK_ETIME. */
#define TL_MOTION_MAX_DT 86400.0

/* cffi:begin */
/* Motion model configuration. Fill with tl_motion_default() and change
 * fields; a NULL pointer wherever a const tl_motion * is taken means defaults. */
typedef struct tl_motion {
    double q;     /* white-acceleration spectral density, m^2/s^3 per axis (>= 0) */
    double step;  /* RK4 step, s (> 0) */
    int32_t j2;   /* nonzero: include the J2 term of gravity */
} tl_motion;

void tl_motion_default(tl_motion *m);

/* Acceleration in ECEF (gravity + J2 + centrifugal + Coriolis) at state x[6]. */
void tl_motion_accel(const tl_motion *m, const double x[6], double a[3]);

/* Propagate one track by dt >= 0 seconds in place. P may be NULL (state
 * only); Phi (6x6, may be NULL) receives the state transition matrix over dt.
 * Returns a TL_TRK_* code; on error x and P are untouched. */
int tl_motion_predict1(const tl_motion *m, double x[6], double P[36], double dt, double Phi[36]);

/* Jacobi integral of n states x[n,6] into out[n], J/kg: the energy per unit
 * mass in the Earth-fixed frame, 0.5 |v|^2 + U(r) - 0.5 W^2 (x^2 + y^2),
 * with U the point-mass (+J2) gravity potential of this model. It is
 * constant along the model's ballistic flight and rises at a.v under a
 * thrust acceleration a, so its rate tells boost from coast (edge/phase.py,
 * docs/FUSION.md). A non-finite state gives NaN. Returns 0, or -1 for
 * invalid arguments. */
int32_t tl_motion_jacobi(const tl_motion *m, int32_t n, const double *x, double *out);

/* Batched: predict every track i from t_from[i] to the common time t_to, in
 * place. x is [n,6], P is [n,36] or NULL (state only), status is [n].
 * t_to < t_from[i] is TL_TRK_ETIME for that track. Returns the number of
 * failed tracks, or -1 for invalid arguments. */
int32_t tl_motion_predict(const tl_motion *m, int32_t n, double *x, double *P,
                          const double *t_from, double t_to, int32_t *status);
/* cffi:end */

/* Internal to the fusion kernel (impact.c, kalman.c), not exposed to cffi. */
/* Validate a track: finite x (and P), |r| >= 100 km, P symmetric PD. */
int tl_motion_check(const double x[6], const double *P);
/* Propagate s (and P, and the accumulated transition Phi_tot, each may be
 * NULL) by nfull RK4 steps of m->step, then one step of `tail` if > 0. */
void tl_motion_run(const tl_motion *m, double s[6], double *P, double *Phi_tot, int64_t nfull,
                   double tail);

#endif
