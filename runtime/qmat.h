/* qmat.h: what qmat.c shares with the kernels of each instruction set
 * (qmat_c.c, qmat_avx2.c, qmat_512.c; the vector ones are one template,
 * qmat_simd.h): the job of a call, and the readers of a packed row. */
#ifndef LM_QMAT_H
#define LM_QMAT_H

#include "gemm.h"
#include "rt.h"

#include <immintrin.h>
#include <string.h>

enum {
	TOK = 4,      /* tokens a streaming pass multiplies at once */
	AHEAD = 1024, /* bytes ahead of each row a decoding pass asks for */
};

typedef struct {
	float *y;
	const float *x;
	long n;
	lm_mat W;
	const float *sx;   /* [n, cols / group]: sum of x over each group */
} Job;

/* The kernels of one instruction set.  few: y[t, r] for r in [r0, r1)
 * and t < nt <= TOK, from x (as permute left it) and sx; row: row r of W
 * as float32 (in permute's order); permute: x in the kernels' order,
 * scaled for decoding or not for prefill, or NULL: x as it is. */
typedef struct {
	void (*few)(const Job *, const float *x, const float *sx, float *y, long nt, long r0, long r1);
	void (*row)(float *dst, const lm_mat *W, long r);
	lm_rowseg_fn *seg;   /* part of a row, as row gives it (prefill, gemm.c) */
	void (*permute)(float *xp, const float *x, long n, long cols, int bits, int mode, int scaled);
} lm_qpath;

extern const lm_qpath lm_qpath_c, lm_qpath_avx2, lm_qpath_512;
/* lm_qpath_avx2's and lm_qpath_512's decoding of FIXED_FORMATS with the
 * group size fixed (qmat_avx2_fixed.c, qmat_512_fixed.c): 0 if W is not
 * one of them. */
int lm_qfixed_avx2(const Job *j, const float *xp, const float *sx, float *y, long nt, long r0,
                   long r1);
int lm_qfixed_512(const Job *j, const float *xp, const float *sx, float *y, long nt, long r0,
                  long r1);

#define INLINE static inline __attribute__((always_inline))

/* Word k at w: a tensor's data sits wherever the file put it, and
 * safetensors aligns nothing, so the words are read by bytes (one load on
 * x86, where alignment costs nothing). */
INLINE uint32_t word(const uint32_t *w, size_t k)
{
	uint32_t v;
	memcpy(&v, (const unsigned char *)w + 4 * k, 4);
	return v;
}

/* The 32 integers held by the `bits` words at w, in order.  Element i sits
 * at bits [i * bits, (i + 1) * bits) of the words read as one little-endian
 * stream; for 3, 5 and 6 bits an element can straddle two words.  Inlined
 * with a constant `bits`, the straddle test folds away for 2, 4 and 8. */
INLINE void unpack32(float *q, const uint32_t *w, int bits)
{
	uint32_t m = (1u << bits) - 1;
	for (int i = 0; i < 32; i++) {
		int p = i * bits, k = p >> 5, s = p & 31;
		uint64_t v = (uint64_t)word(w, k) >> s;
		if (s + bits > 32)
			v |= (uint64_t)word(w, k + 1) << (32 - s);
		q[i] = (float)(uint32_t)(v & m);
	}
}

INLINE float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* The values of 32 codes of an FP mode (mxfp.c), branch-free so that gcc
 * vectorises it: E2M1 as float bits from its exponent and mantissa; E4M3
 * as its 7 low bits moved to a float's exponent and mantissa, times 2^120
 * (the bias 127 - 7: exact, subnormals included). */
INLINE void fp32(float *v, const uint32_t *w, int bits, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t c = word(w, i * bits / 32) >> (i * bits % 32);
		if (bits == 4) {
			uint32_t e = (c >> 1) & 3, m = c & 1;
			uint32_t u = e ? (e + 126) << 23 | m << 22 : m * 0x3f000000u;
			v[i] = from_bits(u | (c & 8) << 28);
		} else {
			float f = from_bits((c & 0x7f) << 20) * 0x1p120f;
			v[i] = c & 0x80 ? -f : f;
		}
	}
}

/* The weights' factors of n inputs: affine's integers (n = 32), or FP
 * values (n = 32, or 16 at the end of an nvfp4 row of 16 * odd inputs). */
INLINE void codes(float *q, const uint32_t *w, int bits, int mode, int n)
{
	if (mode == LM_AFFINE)
		unpack32(q, w, bits);
	else
		fp32(q, w, bits, n);
}

/* Scale g of the matrix's storage as a float. */
INLINE float scale_at(const lm_mat *W, size_t g, int mode)
{
	if (mode == LM_AFFINE)
		return lm_load_f32(W->scales, W->sdtype, g);
	return lm_fp_scale(((const uint8_t *)W->scales)[g], mode);
}

/* Every format, as (bits, mode) constants for the kernels' templates. */
#define FORMAT_CASES(X) \
	X(2, LM_AFFINE) X(3, LM_AFFINE) X(4, LM_AFFINE) X(5, LM_AFFINE) X(6, LM_AFFINE) \
	X(8, LM_AFFINE) X(4, LM_MXFP4) X(4, LM_NVFP4) X(8, LM_MXFP8)
#define FORMAT_KEY(bits, mode) ((mode) * 16 + (bits))
/* The common affine formats, as (bits, group): decoding has a loop for
 * each with the group size fixed as well (qmat_simd.h's K(lm_qfixed)). */
#define FIXED_FORMATS(X) X(4, 32) X(4, 64) X(4, 128) X(8, 32) X(8, 64) X(8, 128)

/* Columns [c0, c1) of row r into dst[0, c1 - c0) (c0 a multiple of 32,
 * and of group when the group is smaller; c1 one too, or the row's end). */
INLINE void row_c(float *dst, const lm_mat *W, long r, int bits, int mode, long c0, long c1)
{
	const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld + c0 / 32 * bits;
	size_t g0 = (size_t)r * W->sld;
	for (long c = c0; c < c1; c += 32, w += bits) {
		float q[32];
		int n = c1 - c < 32 ? (int)(c1 - c) : 32;
		float *o = dst + (c - c0);
		codes(q, w, bits, mode, n);
		if (mode != LM_AFFINE) {
			/* one rounding (none but underflow: few significant bits) */
			for (int i = 0; i < n; i++)
				o[i] = q[i] * scale_at(W, g0 + (c + i) / W->group, mode);
			continue;
		}
		float s = scale_at(W, g0 + c / W->group, mode);
		float b = lm_load_f32(W->biases, W->sdtype, g0 + c / W->group);
		/* two roundings, as MLX's dequantize: s * q, then + b */
		for (int i = 0; i < n; i++) {
			float p = s * q[i];
			o[i] = p + b;
		}
	}
}

/* Elements per 32-bit lane in the vector kernels: 32 / bits for the
 * widths that fill a word; 8 (3 bytes) for 3 bits, 4 (3 bytes) for 6 and
 * 4 (20 bits at a 4-bit offset every other lane) for 5. */
static inline int lane_elems(int bits)
{
	return bits == 2 ? 16 : bits == 3 || bits == 4 ? 8 : 4;
}

/* The power of two element k's input is scaled by (qmat_simd.h): the
 * factor that turns the vector element K(code) gives into its value. */
static inline float elem_scale(int k, int bits, int mode)
{
	if (mode != LM_AFFINE)
		return bits == 8 ? 256 : 1;
	return 1.0f / (float)(1u << (bits * (k % (lane_elems(bits) / 2))));
}

#define AVX2_T __attribute__((target("avx2,fma,f16c")))

/* Eight lanes of a chunk: its words as they are when bits divides 32;
 * otherwise 24 bytes (3 and 6 bits) or 20 (5 bits) spread three bytes a
 * lane by a byte shuffle within each 16-byte half, the upper half loaded
 * from inside the chunk so that nothing past it is read. */
AVX2_T static inline __attribute__((always_inline)) __m256i lanes_avx2(const uint32_t *w, int bits)
{
	if (32 % bits == 0)
		return _mm256_loadu_si256((const __m256i *)w);
	const char *p = (const char *)w;
	__m128i lo = _mm_loadu_si128((const __m128i *)p);
	__m128i hi = _mm_loadu_si128((const __m128i *)(p + (bits == 5 ? 4 : 8)));
	__m256i v = _mm256_set_m128i(hi, lo);
	if (bits == 5) {
		v = _mm256_shuffle_epi8(v, _mm256_setr_epi8(
		        0, 1, 2, -1, 2, 3, 4, -1, 5, 6, 7, -1, 7, 8, 9, -1,
		        6, 7, 8, -1, 8, 9, 10, -1, 11, 12, 13, -1, 13, 14, 15, -1));
		return _mm256_srlv_epi32(v, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
	}
	return _mm256_shuffle_epi8(v, _mm256_setr_epi8(
	        0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,
	        4, 5, 6, -1, 7, 8, 9, -1, 10, 11, 12, -1, 13, 14, 15, -1));
}

#endif
