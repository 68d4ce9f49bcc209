/* dtype.c: the element types of weights, and conversions between them
 * and float32: the checkpoint loader, the kernels and the compiler's
 * writers (quantize, fuse, init) all reach them here. */
#include "rt.h"

#include <math.h>
#include <string.h>

size_t lm_dtype_size(int dtype)
{
	return dtype == LM_F32 || dtype == LM_U32 ? 4 : dtype == LM_U8 ? 1 : 2;
}

float lm_bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

uint16_t lm_f32_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((u >> 16) | 0x40);   /* quiet NaN */
	u += 0x7fff + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

float lm_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	float f;
	if (exp == 0) {
		/* zero or subnormal: man * 2^-24 */
		f = ldexpf((float)man, -24);
		return sign ? -f : f;
	}
	if (exp == 31)
		u = sign | 0x7f800000 | (man << 13);
	else
		u = sign | ((exp + 112) << 23) | (man << 13);
	memcpy(&f, &u, 4);
	return f;
}

uint16_t lm_f32_to_f16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	uint16_t sign = (u >> 16) & 0x8000;
	uint32_t a = u & 0x7fffffff;
	if (a > 0x7f800000)
		return sign | 0x7e00;                  /* NaN */
	if (a >= 0x477ff000)
		return sign | 0x7c00;                  /* rounds past 65504: inf */
	if (a < 0x38800000) {
		/* subnormal: a multiple of 2^-24, rounded to nearest even */
		float m = rintf(ldexpf(fabsf(f), 24));
		return sign | (uint16_t)m;
	}
	a += 0xfff + ((a >> 13) & 1);
	return sign | (uint16_t)((a >> 13) - (112 << 10));
}

float lm_load_f32(const void *p, int dtype, size_t i)
{
	uint16_t h;
	float f;
	if (dtype == LM_F32) {
		memcpy(&f, (const char *)p + 4 * i, 4);
		return f;
	}
	memcpy(&h, (const char *)p + 2 * i, 2);
	return dtype == LM_BF16 ? lm_bf16_to_f32(h) : lm_f16_to_f32(h);
}
