/* temperature.c: scaling queries by their position (lm_temperature in
 * lmcc.h), as global attention layers without RoPE do to stay sharp over
 * long contexts. */
#include "rt.h"

#include <math.h>

void lm_temperature(float *x, long n, long width, long pos, lm_qtemp q)
{
	for (long t = 0; t < n; t++) {
		double f = log(floor((double)(pos + t + 1) / q.floor_scale) + 1) * q.attn_scale + 1;
		float *r = x + t * width;
		for (long i = 0; i < width; i++)
			r[i] = (float)(r[i] * f);
	}
}
