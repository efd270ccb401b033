/* trilink kernel: WGS-84 geodetic <-> ECEF <-> local ENU conversions, and the
 * per-track status codes shared by the whole fusion kernel (geo, motion,
 * kalman, impact; the association/CI/picture code may return them too). */
#ifndef TRILINK_GEO_H
#define TRILINK_GEO_H

#include <stdint.h>

/* WGS-84 defining constants (NIMA TR8350.2). */
#define TL_WGS84_A 6378137.0
#define TL_WGS84_F (1.0 / 298.257223563)
#define TL_WGS84_GM 3.986004418e14 /* m^3/s^2 */
#define TL_WGS84_OMEGA 7.292115e-5 /* rad/s, Earth rotation rate */
#define TL_WGS84_J2 1.08262998905e-3 /* -sqrt(5) * C20, WGS-84 normalised C20 = -4.84166774985e-4 */

/* cffi:begin */
/* Per-track status codes. A batched call writes one per track into its
 * status[] array and returns how many tracks failed (or -1 when the call's
 * own arguments are invalid: NULL pointer, n < 0, bad dimensions). A track
 * whose status is not TL_TRK_OK is left exactly as it was on input. */
enum {
    TL_TRK_OK = 0,
    TL_TRK_ENONFINITE = 1, /* NaN or inf in an input (or an overflow in the result) */
    TL_TRK_ENOTPD = 2,     /* covariance not symmetric positive definite (input or result) */
    TL_TRK_ETIME = 3,      /* t_to < t_from, or the step is longer than TL_MOTION_MAX_DT */
    TL_TRK_ENOIMPACT = 4,  /* no ellipsoid crossing within TL_IMPACT_MAX_T, or already below it */
    TL_TRK_EARG = 5,       /* degenerate geometry: position near the Earth's centre, bad polygon */
    TL_TRK_ESINGULAR = 6   /* innovation covariance singular, or azimuth undefined (target overhead) */
};

/* Geodetic (lat rad, lon rad, height m above the ellipsoid) -> ECEF m. */
void tl_geo_to_ecef(const double llh[3], double ecef[3]);
/* ECEF m -> geodetic (Heikkinen closed form; exact to well under a mm from
 * the Earth's surface to GEO). Returns TL_TRK_EARG within 1 km of the centre,
 * TL_TRK_ENONFINITE for NaN/inf, else TL_TRK_OK. */
int tl_ecef_to_geo(const double ecef[3], double llh[3]);
/* Rows E, N, U (unit vectors in ECEF) of the local frame at (lat, lon): R[9] row-major. */
void tl_enu_basis(double lat, double lon, double R[9]);
/* ECEF point -> ENU m around origin llh (rad, rad, m). */
void tl_ecef_to_enu(const double ecef[3], const double origin_llh[3], double enu[3]);
/* ENU m around origin llh -> ECEF point. */
void tl_enu_to_ecef(const double enu[3], const double origin_llh[3], double ecef[3]);

/* Batched forms over n points stored as [n,3] row-major; status may be NULL.
 * Return the number of failed points (their outputs are NaN), or -1. */
int32_t tl_geo_to_ecef_n(int32_t n, const double *llh, double *ecef, int32_t *status);
int32_t tl_ecef_to_geo_n(int32_t n, const double *ecef, double *llh, int32_t *status);
int32_t tl_ecef_to_enu_n(int32_t n, const double *ecef, const double origin_llh[3], double *enu, int32_t *status);
int32_t tl_enu_to_ecef_n(int32_t n, const double *enu, const double origin_llh[3], double *ecef, int32_t *status);
/* cffi:end */

#endif
