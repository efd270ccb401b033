/* trilink kernel: impact prediction. Propagate a 6-state ECEF track to the
 * WGS-84 ellipsoid surface (h = 0), give the impact time and point, the 2-D
 * (east, north) covariance of the impact point by linearisation (state
 * transition matrix and process noise carried to impact, then projected
 * along the velocity onto the local tangent plane) with its 95% ellipse, and
 * the threatened territory from polygons. */
#ifndef TRILINK_IMPACT_H
#define TRILINK_IMPACT_H

#include <stdint.h>
#include "geo.h"
#include "motion.h"

/* Give up looking for an impact after this long (s): a lofted ICBM flies ~53 min. */
#define TL_IMPACT_MAX_T 14400.0

/* cffi:begin */
enum {
    TL_TERRITORY_NONE = -1,      /* tl_territory_of: no polygon contains the point */
    TL_TERRITORY_EMALFORMED = -2 /* tl_territory_of: a malformed polygon list */
};

typedef struct {
    double t_impact;    /* impact time, on the timebase of t0 */
    double lat, lon;    /* impact point, rad */
    double ecef[3];     /* impact point, m */
    double cov_en[4];   /* 2x2 (east, north) covariance of the impact point, m^2 */
    double semi_major;  /* 95% ellipse semi-axes, m (sqrt(5.991 * eigenvalue)) */
    double semi_minor;
    double orient;      /* azimuth of the major axis, rad clockwise from north, [0, pi) */
    double sigma_t;     /* 1-sigma impact time, s */
    int32_t territory;  /* index of the territory polygon containing the point, or -1 */
} tl_impact;

/* Point-in-polygon over n_terr territories. Polygon k has vertices
 * verts[2*j] = lat, verts[2*j+1] = lon (rad) for j in offsets[k] .. offsets[k+1]-1
 * (offsets has n_terr+1 entries, each polygon >= 3 vertices, implicitly
 * closed). Longitudes are unwrapped around the point, so polygons may cross
 * the antimeridian. Returns the first containing index, -1 if none, or -2 for
 * a malformed polygon list. */
int32_t tl_territory_of(double lat, double lon, int32_t n_terr,
                        const int32_t *offsets, const double *verts);

/* Impact prediction for n tracks at times t0[n]: x [n,6], P [n,36] (not
 * modified), out [n]. Territories as in tl_territory_of (n_terr may be 0).
 * Returns the number of failed tracks, or -1. */
int32_t tl_impact_predict(const struct tl_motion *m, int32_t n, const double *x, const double *P,
                          const double *t0, int32_t n_terr, const int32_t *offsets,
                          const double *verts, tl_impact *out, int32_t *status);
/* cffi:end */

#endif
