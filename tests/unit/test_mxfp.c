/* test_mxfp: lm_fp_quantize (MLX's quantize in modes mxfp4, nvfp4 and
 * mxfp8) against a direct implementation of MLX's rule, on random rows
 * and on the edge cases the rule decides: ties between FP4 values, tiny
 * negatives, all-zero groups, FP8 saturation and subnormals, bfloat16
 * weights (MLX computes in the weights' dtype).
 *
 * The direct implementation picks codes by search over the values a code
 * can take, not by the bit tricks lm_fp_quantize (like MLX) uses: the
 * nearest E2M1 value, the first in MLX's table order on a tie; the nearest
 * E4M3 value among codes 0 .. 0x7e, the even code on a tie (0x7f, 480,
 * is never written: MLX saturates at 448).  Prints PASS/FAIL lines. */
#include "rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;

static void check(int ok, const char *what)
{
	printf("%s mxfp %s\n", ok ? "PASS" : "FAIL", what);
	failed |= !ok;
}

static float rd(float f, int dtype)
{
	return dtype == LM_BF16 ? lm_bf16_to_f32(lm_f32_to_bf16(f)) : f;
}

static unsigned nearest_e4m3(float v)
{
	if (isnan(v))
		return 0x7e | (signbit(v) ? 0x80 : 0);
	double a = fabs(v);
	unsigned best = 0;
	for (unsigned c = 1; c <= 0x7e; c++) {
		double d = fabs(lm_e4m3(c) - a), bd = fabs(lm_e4m3(best) - a);
		if (d < bd || (d == bd && c % 2 == 0))
			best = c;
	}
	return best | (signbit(v) ? 0x80 : 0);
}

static unsigned nearest_e2m1(float v, int dtype)
{
	static const float table[16] = {0, .5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -.5f, -1, -1.5f, -2, -3, -4, -6};
	unsigned best = 0;
	for (unsigned k = 1; k < 16; k++)
		if (rd(fabsf(rd(v - table[k], dtype)), dtype) < rd(fabsf(rd(v - table[best], dtype)), dtype))
			best = k;
	return best;
}

static void direct(const float *w, long cols, int mode, int dtype, uint32_t *q, uint8_t *s)
{
	int bits = mode == LM_MXFP8 ? 8 : 4, group = mode == LM_NVFP4 ? 16 : 32;
	memset(q, 0, cols * bits / 8);
	for (long g = 0; g < cols / group; g++) {
		const float *wg = w + g * group;
		float amax = 0;
		for (int i = 0; i < group; i++)
			amax = fabsf(wg[i]) > amax ? fabsf(wg[i]) : amax;
		float sc = rd(amax / (bits == 4 ? 6 : 448), dtype), div;
		int wide = 0;
		if (mode == LM_NVFP4) {
			s[g] = (uint8_t)nearest_e4m3(sc);
			div = lm_e4m3(s[g]);
			wide = 1;
		} else {
			int e = sc == 0 ? 0 : (int)rd(rintf(rd(log2f(sc), dtype)), dtype);
			s[g] = (uint8_t)(e + 127);
			div = rd(ldexpf(1, e), dtype);
		}
		for (int i = 0; i < group; i++) {
			float v = rd(wg[i] / div, dtype);
			unsigned c = bits == 8 ? nearest_e4m3(v) : nearest_e2m1(v, wide ? LM_F32 : dtype);
			long k = g * group + i;
			q[k * bits / 32] |= (uint32_t)c << (k * bits % 32);
		}
	}
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double gauss(void)
{
	double u = 0;
	for (int i = 0; i < 12; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		u += (rng >> 11) * (1.0 / 9007199254740992.0);
	}
	return u - 6;
}

static void compare(const char *name, const float *w, long cols, int mode, int dtype)
{
	int bits = mode == LM_MXFP8 ? 8 : 4, group = mode == LM_NVFP4 ? 16 : 32;
	uint32_t *q1 = lm_alloc(cols * bits / 8), *q2 = lm_alloc(cols * bits / 8);
	uint8_t *s1 = lm_alloc(cols / group), *s2 = lm_alloc(cols / group);
	lm_fp_quantize(w, cols, mode, dtype, q1, s1);
	direct(w, cols, mode, dtype, q2, s2);
	char what[160];
	snprintf(what, sizeof what, "%s %s%s: codes and scale bytes as the rule gives them", name,
	         lm_qmode_name(mode), dtype == LM_BF16 ? " bf16" : "");
	check(!memcmp(q1, q2, cols * bits / 8) && !memcmp(s1, s2, cols / group), what);
	free(q1);
	free(q2);
	free(s1);
	free(s2);
}

int main(void)
{
	enum { C = 4096 };
	float *w = lm_alloc(C * sizeof *w);
	int modes[3] = {LM_MXFP4, LM_NVFP4, LM_MXFP8};
	for (int m = 0; m < 3; m++)
		for (int d = 0; d < 2; d++) {
			int dt = d ? LM_BF16 : LM_F32;
			/* groups of every magnitude, from 2^-40 to 2^20 */
			for (long i = 0; i < C; i++)
				w[i] = rd((float)(gauss() * ldexp(1, (int)(i / 32 % 61) - 40)), dt);
			compare("random rows", w, C, modes[m], dt);
			/* the rule's corners, group by group: exact ties between
			 * FP4 values (.25, .75, 1.25, 1.75, 2.5, 3.5, 5 times the
			 * scale), negatives that round to zero, zeros, one large
			 * outlier, FP8 subnormals and values past 448 */
			for (long i = 0; i < C; i++) {
				static const float tie[] = {.25f, .75f, 1.25f, 1.75f, 2.5f, 3.5f, 5, 6};
				long g = i / 32, k = i % 32;
				float v;
				switch (g % 6) {
				case 0: v = tie[k % 8] * (k & 8 ? -1 : 1) * ldexpf(1, (int)(g % 13) - 6); break;
				case 1: v = k ? -1e-3f * (float)k : 6; break;
				case 2: v = 0; break;
				case 3: v = k == 5 ? 1000 : (float)gauss(); break;
				case 4: v = ldexpf((float)(k % 8), -9 - (int)(g % 5)) * (k & 16 ? -1 : 1); break;
				default: v = k < 2 ? 448 : 463.9f + k; break;
				}
				w[i] = rd(v, dt);
			}
			compare("edge cases", w, C, modes[m], dt);
		}
	/* an all-zero group: mx scale byte 127 (2^0), nvfp4 byte 0; codes 0 */
	uint32_t q[4];
	uint8_t s[2];
	memset(w, 0, 32 * sizeof *w);
	lm_fp_quantize(w, 32, LM_MXFP4, LM_F32, q, s);
	check(s[0] == 127 && !q[0] && !q[3], "zero group mxfp4: scale byte 127, codes 0");
	lm_fp_quantize(w, 32, LM_NVFP4, LM_F32, q, s);
	check(s[0] == 0 && s[1] == 0 && !q[0] && !q[3], "zero group nvfp4: scale byte 0, codes 0");
	free(w);
	return failed;
}
