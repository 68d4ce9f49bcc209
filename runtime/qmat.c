/* qmat.c: products with weights in MLX's affine group format (LM_Q).
 *
 * What is stored (lmcc.h): per row, `bits`-bit unsigned integers q packed
 * LSB-first into 32-bit words, and per group of `group` inputs one scale s
 * and one bias b, so that w = s * q + b.  A group starts on a word
 * boundary (group * bits is a multiple of 32), and 32 inputs always fill
 * exactly `bits` words: the kernels read a row 32 inputs at a time.
 *
 * How a product reads it, without ever making a float copy of the matrix:
 *   - few tokens (decoding): the row is read once, packed.  Within a group
 *       sum_c w_c x_c = s * (q . x_g) + b * sum(x_g),
 *     and sum(x_g) is the same for every row, so it is computed once per
 *     call; a row costs one integer-times-float dot product per group plus
 *     two multiply-adds, and the bytes read are the packed words, the
 *     scales and the biases: the bandwidth bound.
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

/* ---- one row to float32 ---- */

/* Columns c0.. of row r (c0 a multiple of 32). */
INLINE void row_c(float *dst, const lm_mat *W, long r, int bits, long c0)
{
	const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld + c0 / 32 * bits;
	size_t g0 = (size_t)r * W->sld;
	for (long c = c0; c < W->cols; c += 32, w += bits) {
		float s = lm_load_f32(W->scales, W->sdtype, g0 + c / W->group);
		float b = lm_load_f32(W->biases, W->sdtype, g0 + c / W->group);
		float q[32];
		unpack32(q, w, bits);
		/* two roundings, as MLX's dequantize: s * q, then + b */
		for (int i = 0; i < 32; i++) {
			float p = s * q[i];
			dst[c + i] = p + b;
		}
	}
}

static void row_any_c(float *dst, const lm_mat *W, long r)
{
	switch (W->bits) {
	case 2: row_c(dst, W, r, 2, 0); break;
	case 3: row_c(dst, W, r, 3, 0); break;
	case 4: row_c(dst, W, r, 4, 0); break;
	case 5: row_c(dst, W, r, 5, 0); break;
	case 6: row_c(dst, W, r, 6, 0); break;
	case 8: row_c(dst, W, r, 8, 0); break;
	default: lm_bug("quantized matrix with %d bits", W->bits);
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
                   long nt, long r0, long r1, int bits)
{
	const lm_mat *W = &j->W;
	long cols = W->cols, ng = cols / W->group;
	for (long r = r0; r < r1; r++) {
		const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld;
		size_t g0 = (size_t)r * W->sld;
		float acc[TOK] = {0};
		for (long g = 0; g < ng; g++) {
			float d[TOK][8] = {{0}};
			for (long c = g * W->group; c < (g + 1) * W->group; c += 32, w += bits) {
				float q[32];
				unpack32(q, w, bits);
				for (long t = 0; t < nt; t++)
					for (int i = 0; i < 32; i += 8)
						for (int l = 0; l < 8; l++)
							d[t][l] += q[i + l] * x[t * cols + c + i + l];
			}
			float s = lm_load_f32(W->scales, W->sdtype, g0 + g);
			float b = lm_load_f32(W->biases, W->sdtype, g0 + g);
			for (long t = 0; t < nt; t++) {
				float dot = ((d[t][0] + d[t][1]) + (d[t][2] + d[t][3]))
				          + ((d[t][4] + d[t][5]) + (d[t][6] + d[t][7]));
				acc[t] += s * dot + b * sx[t * ng + g];
			}
		}
		for (long t = 0; t < nt; t++)
			y[t * W->rows + r] = acc[t];
	}
}

static void few_c(const Job *j, const float *x, const float *sx, float *y,
                  long nt, long r0, long r1)
{
	switch (j->W.bits) {
	case 2: rows_c(j, x, sx, y, nt, r0, r1, 2); break;
	case 3: rows_c(j, x, sx, y, nt, r0, r1, 3); break;
	case 4: rows_c(j, x, sx, y, nt, r0, r1, 4); break;
	case 5: rows_c(j, x, sx, y, nt, r0, r1, 5); break;
	case 6: rows_c(j, x, sx, y, nt, r0, r1, 6); break;
	case 8: rows_c(j, x, sx, y, nt, r0, r1, 8); break;
	default: lm_bug("quantized matrix with %d bits", j->W.bits);
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

/* The power of two element k's input is scaled by (see above). */
static inline float elem_scale(int k, int bits)
{
	if (32 % bits == 0 && k == lane_elems(bits) - 1)
		return 1;
	return 1.0f / (float)(1u << (bits * k));
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
#define iloadu(p) _mm256_loadu_si256((const __m256i *)(p))
#define LANES lanes_avx2
#define LOAD16(p) _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p)))
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
#undef iloadu
#undef LANES
#undef LOAD16

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
#define iloadu(p) _mm512_loadu_si512(p)
#define LANES lanes_512
#define LOAD16(p) _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p)))
#include "qmat_simd.h"

typedef void (*Few)(const Job *, const float *, const float *, float *, long, long, long);
typedef void (*Row)(float *, const lm_mat *, long);
typedef void (*Permute)(float *, const float *, long, long, int, int);

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
	if (W.cols % W.group || W.group % 32)
		lm_bug("quantized matrix: %ld inputs in groups of %d", W.cols, W.group);
	Job j = {y, x, n, W, NULL};
	if (n <= FEW) {
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
		permute(xp, x, n, W.cols, W.bits, n <= FEW);
		j.x = xp;
	}
	lm_parallel(W.rows, 16, n <= FEW ? few : many, &j);
}
