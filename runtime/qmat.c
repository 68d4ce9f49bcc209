/* qmat.c: products with weights in MLX's group formats (LM_Q).
 *
 * What is stored (lmcc.h): per row, `bits`-bit codes packed LSB-first into
 * 32-bit words, and per group of `group` inputs one scale s (and in affine
 * mode one bias b): w = s * q + b with q the unsigned integer (affine), or
 * w = s * v(q) with v the value of an FP4 E2M1 or FP8 E4M3 code and s that
 * of an E8M0 or E4M3 byte (mxfp4, nvfp4, mxfp8; mxfp.c).  A group starts
 * on a word boundary (group * bits is a multiple of 32), and 32 inputs
 * always fill exactly `bits` words: the kernels read a row 32 inputs at a
 * time.
 *
 * How a product reads it, without ever making a float copy of the matrix:
 *   - few tokens (decoding): the row is read once, packed.  Within a group
 *       sum_c w_c x_c = s * (q . x_g) + b * sum(x_g),
 *     and sum(x_g) is the same for every row, so it is computed once per
 *     call; a row costs one integer-times-float dot product per group plus
 *     two multiply-adds, and the bytes read are the packed words, the
 *     scales and the biases: the bandwidth bound.  The FP modes have no
 *     bias: s * (v . x_g), v widened from its code by a table or by the
 *     half-precision converter.
 *   - many tokens (prefill): a panel of rows is dequantized to float32 into
 *     a per-thread buffer and multiplied by OpenBLAS sgemm, as matmul.c
 *     does with BF16 panels; the dequantizing costs 1/n of the product.
 * Activations are never rounded: q, s and b widen to float32 exactly, and
 * only the order of the sums differs from MLX's dequantize-then-multiply. */
#define _GNU_SOURCE
#include "rt.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

enum {
	FEW = 8,      /* up to this many tokens: the streaming kernels */
	TOK = 4,      /* tokens a streaming pass multiplies at once */
	PANEL = 64,   /* rows dequantized at once for sgemm */
	AHEAD = 1024, /* bytes ahead of each row a decoding pass asks for */
};

typedef struct {
	float *y;
	const float *x;
	long n;
	lm_mat W;
	const float *sx;   /* [n, cols / group]: sum of x over each group */
} Job;

#define INLINE static inline __attribute__((always_inline))

/* The 32 integers held by the `bits` words at w, in order.  Element i sits
 * at bits [i * bits, (i + 1) * bits) of the words read as one little-endian
 * stream; for 3, 5 and 6 bits an element can straddle two words.  Inlined
 * with a constant `bits`, the straddle test folds away for 2, 4 and 8. */
INLINE void unpack32(float *q, const uint32_t *w, int bits)
{
	uint32_t m = (1u << bits) - 1;
	for (int i = 0; i < 32; i++) {
		int p = i * bits, k = p >> 5, s = p & 31;
		uint64_t v = (uint64_t)w[k] >> s;
		if (s + bits > 32)
			v |= (uint64_t)w[k + 1] << (32 - s);
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
		uint32_t c = w[i * bits / 32] >> (i * bits % 32);
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

/* ---- one row to float32 ---- */

/* Columns c0.. of row r (c0 a multiple of 32, and of group when the
 * group is smaller). */
INLINE void row_c(float *dst, const lm_mat *W, long r, int bits, int mode, long c0)
{
	const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld + c0 / 32 * bits;
	size_t g0 = (size_t)r * W->sld;
	for (long c = c0; c < W->cols; c += 32, w += bits) {
		float q[32];
		int n = W->cols - c < 32 ? (int)(W->cols - c) : 32;
		codes(q, w, bits, mode, n);
		if (mode != LM_AFFINE) {
			/* one rounding (none but underflow: few significant bits) */
			for (int i = 0; i < n; i++)
				dst[c + i] = q[i] * scale_at(W, g0 + (c + i) / W->group, mode);
			continue;
		}
		float s = scale_at(W, g0 + c / W->group, mode);
		float b = lm_load_f32(W->biases, W->sdtype, g0 + c / W->group);
		/* two roundings, as MLX's dequantize: s * q, then + b */
		for (int i = 0; i < 32; i++) {
			float p = s * q[i];
			dst[c + i] = p + b;
		}
	}
}

static void row_any_c(float *dst, const lm_mat *W, long r)
{
	switch (FORMAT_KEY(W->bits, W->mode)) {
#define X(bits, mode) case FORMAT_KEY(bits, mode): row_c(dst, W, r, bits, mode, 0); break;
	FORMAT_CASES(X)
#undef X
	default: lm_bug("quantized matrix with %d bits, mode %d", W->bits, W->mode);
	}
}

void lm_qrow(float *dst, const lm_mat *W, long r)
{
	row_any_c(dst, W, r);
}

/* ---- few tokens, portable ---- */

/* y[t, r] for r in [r0, r1) and t < nt <= TOK.  Eight partial sums per
 * token let gcc keep the dot product in vector registers. */
INLINE void rows_c(const Job *j, const float *x, const float *sx, float *y,
                   long nt, long r0, long r1, int bits, int mode)
{
	const lm_mat *W = &j->W;
	long cols = W->cols, G = W->group, ng = cols / G;
	int two = G == 16;    /* nvfp4: 32 inputs hold two groups */
	for (long r = r0; r < r1; r++) {
		const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld;
		size_t g0 = (size_t)r * W->sld;
		float acc[TOK] = {0};
		for (long g = 0; g < ng; g += 1 + two) {
			float d[TOK][2][8] = {{{0}}};
			int pair = two && g + 1 < ng;
			for (long c = g * G; c < g * G + (pair ? 32 : G); c += 32, w += bits) {
				float q[32];
				int n = pair || G >= 32 ? 32 : 16;
				codes(q, w, bits, mode, n);
				for (long t = 0; t < nt; t++)
					for (int i = 0; i < n; i += 8)
						for (int l = 0; l < 8; l++)
							d[t][two && i >= 16][l] += q[i + l] * x[t * cols + c + i + l];
			}
			for (int h = 0; h <= pair; h++) {
				float s = scale_at(W, g0 + g + h, mode);
				float b = mode == LM_AFFINE ? lm_load_f32(W->biases, W->sdtype, g0 + g) : 0;
				for (long t = 0; t < nt; t++) {
					const float *e = d[t][h];
					float dot = ((e[0] + e[1]) + (e[2] + e[3])) + ((e[4] + e[5]) + (e[6] + e[7]));
					acc[t] += mode == LM_AFFINE ? s * dot + b * sx[t * ng + g] : s * dot;
				}
			}
		}
		for (long t = 0; t < nt; t++)
			y[t * W->rows + r] = acc[t];
	}
}

static void few_c(const Job *j, const float *x, const float *sx, float *y,
                  long nt, long r0, long r1)
{
	switch (FORMAT_KEY(j->W.bits, j->W.mode)) {
#define X(bits, mode) case FORMAT_KEY(bits, mode): rows_c(j, x, sx, y, nt, r0, r1, bits, mode); break;
	FORMAT_CASES(X)
#undef X
	default: lm_bug("quantized matrix with %d bits, mode %d", j->W.bits, j->W.mode);
	}
}

/* ---- few tokens and prefill rows, SIMD ---- */

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

AVX2_T static inline float hsum_avx2(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#define L 8
#define K(name) name##_avx2
#define TARGET AVX2_T
#define Vf __m256
#define Vi __m256i
#define vzero _mm256_setzero_ps
#define vfma _mm256_fmadd_ps
#define vmul _mm256_mul_ps
#define vadd _mm256_add_ps
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vset1 _mm256_set1_ps
#define vcvt _mm256_cvtepi32_ps
#define vcast _mm256_castsi256_ps
#define vcvtph(h) _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_packus_epi32( \
	(h), _mm256_permute2x128_si256((h), (h), 1))))
#define vperm(v, i) _mm256_permutevar8x32_ps(v, i)
#define vhsum hsum_avx2
#define iand _mm256_and_si256
#define isrli _mm256_srli_epi32
#define islli _mm256_slli_epi32
#define iset1 _mm256_set1_epi32
#define iadd _mm256_add_epi32
#define isub _mm256_sub_epi32
#define iminu _mm256_min_epu32
#define ixor _mm256_xor_si256
#define vcasti _mm256_castps_si256
#define iloadu(p) _mm256_loadu_si256((const __m256i *)(p))
#define LANES lanes_avx2
#define LOAD16(p) _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD8(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p)))
#include "qmat_simd.h"
#undef L
#undef K
#undef TARGET
#undef Vf
#undef Vi
#undef vzero
#undef vfma
#undef vmul
#undef vadd
#undef vload
#undef vstore
#undef vset1
#undef vcvt
#undef vcast
#undef vcvtph
#undef vperm
#undef vhsum
#undef iand
#undef isrli
#undef islli
#undef iset1
#undef iadd
#undef isub
#undef iminu
#undef ixor
#undef vcasti
#undef iloadu
#undef LANES
#undef LOAD16
#undef LOAD8

/* AVX-512: sixteen lanes are two AVX2 chunks side by side. */
#define AVX512_T __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

AVX512_T static inline __attribute__((always_inline)) __m512i lanes_512(const uint32_t *w, int bits)
{
	__m256i lo = lanes_avx2(w, bits);
	__m256i hi = lanes_avx2(w + 8 * lane_elems(bits) * bits / 32, bits);
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

#define L 16
#define K(name) name##_512
#define TARGET AVX512_T
#define Vf __m512
#define Vi __m512i
#define vzero _mm512_setzero_ps
#define vfma _mm512_fmadd_ps
#define vmul _mm512_mul_ps
#define vadd _mm512_add_ps
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vset1 _mm512_set1_ps
#define vcvt _mm512_cvtepi32_ps
#define vcast _mm512_castsi512_ps
#define vcvtph(h) _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h))
#define vperm(v, i) _mm512_permutexvar_ps(i, v)
#define vhsum _mm512_reduce_add_ps
#define iand _mm512_and_si512
#define isrli _mm512_srli_epi32
#define islli _mm512_slli_epi32
#define iset1 _mm512_set1_epi32
#define iadd _mm512_add_epi32
#define isub _mm512_sub_epi32
#define iminu _mm512_min_epu32
#define ixor _mm512_xor_si512
#define vcasti _mm512_castps_si512
#define iloadu(p) _mm512_loadu_si512(p)
#define LANES lanes_512
#define LOAD16(p) _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p)))
#define LOAD8(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p)))
#include "qmat_simd.h"

typedef void (*Few)(const Job *, const float *, const float *, float *, long, long, long);
typedef void (*Row)(float *, const lm_mat *, long);
typedef void (*Permute)(float *, const float *, long, long, int, int, int);

static const struct {
	Few few;
	Row row;
	Permute permute;      /* x in the kernels' order, or 0: as it is */
} paths[3] = {
	[LM_ISA_PORTABLE] = {few_c, row_any_c, NULL},
	[LM_ISA_AVX2] = {few_avx2, row_avx2, permute_avx2},
	[LM_ISA_AVX512] = {few_512, row_512, permute_512},
};

static void few(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	long ng = j->W.cols / j->W.group;
	for (long t = 0; t < j->n; t += TOK) {
		long nt = j->n - t < TOK ? j->n - t : TOK;
		paths[lm_isa()].few(j, j->x + t * j->W.cols, j->sx + t * ng,
		                    j->y + t * j->W.rows, nt, r0, r1);
	}
}

/* ---- many tokens ---- */

static void many(void *ctx, long r0, long r1)
{
	const Job *j = ctx;
	const lm_mat *W = &j->W;
	long cols = W->cols;
	for (long p0 = r0; p0 < r1; p0 += PANEL) {
		long p = r1 - p0 < PANEL ? r1 - p0 : PANEL;
		float *w = lm_scratch((size_t)p * cols);
		for (long r = 0; r < p; r++)
			paths[lm_isa()].row(w + r * cols, W, p0 + r);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, p, cols, 1.0f,
		            j->x, cols, w, cols, 0.0f, j->y + p0, W->rows);
	}
}

void lm_qmatmul(float *y, const float *x, long n, lm_mat W)
{
	if (W.cols % W.group || W.cols % 16)
		lm_bug("quantized matrix: %ld inputs in groups of %d", W.cols, W.group);
	Job j = {y, x, n, W, NULL};
	if (n <= FEW && W.mode == LM_AFFINE) {
		static float *sx;
		static long cap;
		long ng = W.cols / W.group;
		if (n * ng > cap) {
			free(sx);
			cap = n * ng;
			sx = lm_alloc_aligned(cap * sizeof(float));
		}
		for (long t = 0; t < n; t++)
			for (long g = 0; g < ng; g++) {
				/* four chains: the sum in double, at vector speed */
				const float *xg = x + t * W.cols + g * W.group;
				double s[4] = {0};
				for (long c = 0; c < W.group; c += 4)
					for (int k = 0; k < 4; k++)
						s[k] += xg[c + k];
				sx[t * ng + g] = (float)((s[0] + s[1]) + (s[2] + s[3]));
			}
		j.sx = sx;
	}
	Permute permute = paths[lm_isa()].permute;
	if (permute) {
		static float *xp;
		static long cap;
		if (n * W.cols > cap) {
			free(xp);
			cap = n * W.cols;
			xp = lm_alloc_aligned(cap * sizeof(float));
		}
		permute(xp, x, n, W.cols, W.bits, W.mode, n <= FEW);
		j.x = xp;
	}
	lm_parallel(W.rows, 16, n <= FEW ? few : many, &j);
}
