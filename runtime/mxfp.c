/* mxfp.c: MLX's floating-point quantization modes, code by code.
 *
 * mxfp4, nvfp4 and mxfp8 store each weight as a small float code and each
 * group one scale byte; w = value(code) * value(scale), no bias (lmcc.h).
 * The values are those MLX's CPU kernels decode:
 *   E2M1  sign, 2 exponent bits, 1 mantissa bit: +-{0, .5, 1, 1.5, 2, 3, 4, 6};
 *   E4M3  sign, 4 exponent bits (bias 7), 3 mantissa bits, subnormal at
 *         exponent 0; no infinity and no NaN: 0x7f reads as 480;
 *   E8M0  a bare exponent 2^(s - 127); s = 255 is +infinity, s = 0 2^-127.
 *
 * Quantizing follows MLX's quantize for these modes as its CPU runs it
 * (composed array ops, each rounded to the weights' own dtype):
 *   amax = max |w| over the group, s = amax / M with M = 6 (FP4) or 448;
 *   nvfp4: the scale byte is E4M3(s), rounded to nearest even, saturating
 *          at 448; the weights are divided by its value;
 *   mx:    the scale is 2^e with e = round(log2(s)) (halves to even; e = 0
 *          when s is 0), stored as the byte e + 127 (wrapping, unclamped)
 *          and the weights are divided by 2^e;
 *   then an FP4 code is the nearest E2M1 value, the first of the table
 *   (+0, .5, ..., 6, -0, ..., -6) on a tie, so ties go to the smaller
 *   magnitude and a negative weight that rounds to zero becomes +0; an
 *   FP8 code is E4M3 rounded to nearest even, saturating at 448.
 * A weight's code sits at bits [c * bits, (c + 1) * bits) of the row's
 * words, LSB first: 8 FP4 codes or 4 FP8 codes a word. */
#include "rt.h"

#include <math.h>
#include <string.h>

static const float e2m1_mag[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};

float lm_e2m1(unsigned code)
{
	float m = e2m1_mag[code & 7];
	return code & 8 ? -m : m;
}

float lm_e4m3(unsigned code)
{
	int e = (code >> 3) & 15, m = code & 7;
	float v = e ? ldexpf(1 + m / 8.0f, e - 7) : ldexpf((float)m, -9);
	return code & 0x80 ? -v : v;
}

float lm_e8m0(unsigned code)
{
	code &= 255;
	return code == 255 ? INFINITY : code == 0 ? ldexpf(1, -127) : ldexpf(1, (int)code - 127);
}

float lm_fp_scale(unsigned code, int mode)
{
	return mode == LM_NVFP4 ? lm_e4m3(code) : lm_e8m0(code);
}

static uint32_t bits_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float float_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* float to E4M3 as MLX's ToFP8: nearest even, subnormals by adding 2^14
 * (the float add rounds to a multiple of 2^-9), 448 from 464 up (and for
 * infinity and NaN). */
static unsigned to_e4m3(float f)
{
	uint32_t b = bits_of(f), sign = b & 0x80000000u;
	b ^= sign;
	unsigned r;
	if (b >= 543u << 21)
		r = 0x7e;
	else if (b < 121u << 23)
		r = (uint8_t)(bits_of(float_of(b) + float_of(141u << 23)) - (141u << 23));
	else
		r = (uint8_t)((b + ((uint32_t)(7 - 127) << 23) + 0x7ffff + ((b >> 20) & 1)) >> 20);
	return r | sign >> 24;
}

float lm_round_to(float f, int dtype)
{
	if (dtype == LM_BF16)
		return lm_bf16_to_f32(lm_f32_to_bf16(f));
	if (dtype == LM_F16)
		return lm_f16_to_f32(lm_f32_to_f16(f));
	return f;
}

/* A result of MLX's arithmetic in dtype: computed in float, rounded. */
#define rd lm_round_to

/* MLX's argmin over |v - E2M1 table|: the first strict minimum, and a
 * NaN distance in front stays (no later one compares smaller). */
static unsigned nearest_e2m1(float v, int dtype)
{
	unsigned best = 0;
	float bd = 0;
	for (unsigned k = 0; k < 16; k++) {
		float d = rd(fabsf(rd(v - lm_e2m1(k), dtype)), dtype);
		if (k == 0 || d < bd) {
			best = k;
			bd = d;
		}
	}
	return best;
}

void lm_fp_quantize(const float *w, long cols, int mode, int dtype, uint32_t *q,
                    uint8_t *scales)
{
	int bits = mode == LM_MXFP8 ? 8 : 4, group = mode == LM_NVFP4 ? 16 : 32;
	float top = bits == 4 ? 6.0f : 448.0f;
	memset(q, 0, (size_t)(cols * bits / 32) * 4);
	for (long g0 = 0; g0 < cols; g0 += group) {
		float amax = 0;
		for (long c = g0; c < g0 + group; c++)
			amax = fmaxf(amax, fabsf(w[c]));
		float s = rd(amax / top, dtype), div;
		/* for nvfp4 MLX multiplies by a float32 1 (its "scale encode"
		 * without a global scale): from there on the weights are float32 */
		int wide = mode == LM_NVFP4;
		if (mode == LM_NVFP4) {
			unsigned b = to_e4m3(s);
			scales[g0 / group] = (uint8_t)b;
			div = lm_e4m3(b);
		} else {
			float e = s == 0 ? 0 : rd(rintf(rd(log2f(s), dtype)), dtype);
			scales[g0 / group] = (uint8_t)(int)rd(e + 127, dtype);
			div = rd(exp2f(e), dtype);
		}
		for (long c = g0; c < g0 + group; c++) {
			float v = rd(w[c] / div, dtype);
			unsigned code = bits == 8 ? to_e4m3(v) : nearest_e2m1(v, wide ? LM_F32 : dtype);
			q[c * bits / 32] |= (uint32_t)code << (c * bits % 32);
		}
	}
}
