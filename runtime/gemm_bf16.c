/* gemm_bf16.c: --fast's prefill product for float weights on the cores'
 * BF16 dot-product instructions, as llama.cpp multiplies BF16: x rounded
 * to bf16 (nearest even) once per call, W's BF16 as stored (F32 and F16
 * rounded to bf16 as they are packed: a change of the weights, which the
 * --fast note says), products of bf16 pairs summed in float32.
 *
 * Both kernels read one panel layout: NR outputs and the inputs of a block
 * as pairs, [KC / 2][NR][2] bf16, i.e. a 32-bit word per output and pair.
 *   - vdpbf16ps (AVX512_BF16): a vector is one pair of 16 outputs, and a
 *     token's pair broadcast to it adds both products to each output's
 *     float32 lane; MR tokens x NR outputs stay in 24 registers.
 *   - AMX: a B tile is 16 pairs x 16 outputs of the same panel (rows NR
 *     words apart), an A tile 16 tokens x 32 inputs of x as it is
 *     (row-major bf16), a C tile 16 x 16 sums; 2 x 2 C tiles make 32 tokens
 *     x NR outputs, four tile products per 32 inputs.
 * Each thread packs a panel per block of KC inputs (16 KB: L1) and runs
 * every token of the block of MC through it (x's block, MC x KC bf16,
 * 256 KB: L2), so the packing is 1/MC of the products.  A panel's outputs
 * are summed over each block of inputs in a fixed order and block after
 * block, so the bits depend on the shape alone, not on the threads. */
#include "gemm.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#define AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c,amx-tile,amx-bf16")))
#define INLINE static inline __attribute__((always_inline))

enum {
	NR = 32,      /* outputs a panel */
	KC = 256,     /* inputs a block: a multiple of AMX's 32 (256 beat 512 and 1024) */
	MC = 512,     /* tokens a block (beat 256 and 1024: measured, 4096 x 4096) */
	MR = 12,      /* tokens of a vdpbf16ps tile */
	MT = 32,      /* tokens of an AMX step: two A tiles */
	AHEAD = 64,   /* inputs ahead that AMX's A rows are asked into L1 */
	YBYTES = 512 << 10,   /* of y, added to by every block of inputs (L2: 2 MB) */
};

int lm_gemm_bf16_vec;

static long min(long a, long b)
{
	return a < b ? a : b;
}

static int use_amx(void)
{
	return lm_cpu_has("amx") && !lm_gemm_bf16_vec;
}

/* vdpbf16ps only where it outruns the exact float32 product (isa.c's
 * "bf16_dot_fast"): elsewhere --fast would give up exactness for nothing.
 * lm_gemm_bf16_vec runs it on any CPU that has it, for the tests. */
const char *lm_gemm_bf16_kernel(void)
{
	if (lm_isa() != LM_ISA_AVX512 || !lm_cpu_has("avx512_bf16"))
		return 0;
	if (use_amx())
		return "amx";
	return lm_cpu_has("bf16_dot_fast") || lm_gemm_bf16_vec ? "avx512_bf16" : 0;
}

/* Affine quantized weights too, on AMX: dequantized a panel at a time
 * and rounded to bf16, their products ran 2 to 3 times faster than the
 * int8 ones (gemm_q8.c, AVX2's byte products) on an Intel Xeon.  On
 * vdpbf16ps only where it outruns float32 FMAs (AMD's Zen 4 and 5): on
 * Zen 5 it issues two 512-bit products a cycle, and plamo2's 8-bit
 * --fast prefill ran at 22 tokens/s on the int8 product beside 127 for
 * its BF16 checkpoint.  Elsewhere they take the int8 product. */
static int quant_fits(const lm_mat *W)
{
	return W->dtype == LM_Q && W->mode == LM_AFFINE && !W->tr && W->cols % 32 == 0
	       && W->group % 32 == 0 && lm_fast_quant_bf16();
}

int lm_fast_quant_bf16(void)
{
	return use_amx() || (lm_gemm_bf16_kernel() && lm_cpu_has("bf16_dot_fast"));
}

int lm_gemm_bf16_fits(long n, const lm_mat *W)
{
	return lm_fast && n > FEW && !W->lora && lm_gemm_bf16_kernel()
	       && (W->dtype == LM_BF16 || W->dtype == LM_F32 || W->dtype == LM_F16
	           || quant_fits(W));
}

typedef struct {
	float *y;
	const float *x;
	long n;               /* tokens of this block */
	const lm_mat *W;
	uint16_t *xb;         /* x as bf16, [planes][npad][ldx], zeros past n and cols */
	long ldx, npad;
	int amx;
	int planes;           /* 1: x rounded (--fast); 3: x as hi + mid + lo (exact) */
} Job;

/* ---- x and W into bf16 ---- */

/* v less h, v rounded to bf16: exact (v has 24 significant bits, h the
 * first 8 of them), 0 where h is not finite. */
BF16 INLINE __m512 rest(__m512 v, __m256i h)
{
	__m512 back = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
	__m512 abs = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(back),
	                                                  _mm512_set1_epi32(0x7fffffff)));
	__mmask16 finite = _mm512_cmp_ps_mask(abs, _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
	return _mm512_maskz_sub_ps(finite, v, back);
}

/* Tokens [t0, t1) of x into J->planes planes of bf16: one, x rounded
 * (--fast); or three, hi = bf16(x), mid = bf16(x - hi), lo = bf16(x - hi
 * - mid), whose sum is x to its last bit (the exact product's parts,
 * lm_gemm_bf16x3): x - hi has at most 16 significant bits, x - hi - mid
 * at most 8, each difference exact in float32. */
BF16 static void round_x(void *ctx, long t0, long t1)
{
	const Job *J = ctx;
	long cols = J->W->cols, plane = J->npad * J->ldx;
	for (long t = t0; t < t1; t++) {
		uint16_t *o = J->xb + t * J->ldx;
		const float *x = J->x + t * cols;
		for (long c = 0; c < J->ldx; c += 16) {
			long k = t < J->n ? cols - c : 0;
			__m512 v = _mm512_maskz_loadu_ps(k >= 16 ? 0xffff : k > 0 ? (1u << k) - 1 : 0, x + c);
			for (int p = 0; p < J->planes; p++) {
				__m256i h = (__m256i)_mm512_cvtneps_pbh(v);     /* nearest even */
				_mm256_storeu_si256((__m256i *)(o + p * plane + c), h);
				if (p + 1 < J->planes)
					v = rest(v, h);
			}
		}
	}
}

/* W's element (r, c) as bf16: 0 outside the matrix. */
static uint16_t w_bf16(const lm_mat *W, long r, long c)
{
	if (r >= W->rows || c >= W->cols)
		return 0;
	size_t i = W->tr ? (size_t)c * W->ld + r : (size_t)r * W->ld + c;
	if (W->dtype == LM_BF16)
		return ((const uint16_t *)W->data)[i];
	return lm_f32_to_bf16(lm_load_f32(W->data, W->dtype, i));
}

/* 16 consecutive elements at p of a float dtype, as bf16. */
BF16 INLINE __m256i bf16x16(const void *p, size_t i, int dtype)
{
	if (dtype == LM_BF16)
		return _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
	__m512 v = dtype == LM_F32
	         ? _mm512_loadu_ps((const float *)p + i)
	         : _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
	return (__m256i)_mm512_cvtneps_pbh(v);
}

/* o[i + e] from the even 128-bit lanes of v[i + e] and v[j + e], o[j + e]
 * from their odd ones, for e < 4. */
BF16 INLINE void lanes(__m512i *o, const __m512i *v, int i, int j)
{
#pragma GCC unroll 4
	for (int e = 0; e < 4; e++) {
		o[i + e] = _mm512_shuffle_i32x4(v[i + e], v[j + e], 0x88);
		o[j + e] = _mm512_shuffle_i32x4(v[i + e], v[j + e], 0xdd);
	}
}

/* The 16 x 16 words of r transposed: r[c] becomes column c. */
BF16 INLINE void transpose16(__m512i r[16])
{
	__m512i t[16];
#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
	}
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) {
		r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
		r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
		r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
		r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
	}
	/* r[4i + e], 128-bit lane L: rows 4i..4i+3 of column 4L + e */
	lanes(t, r, 0, 4);
	lanes(t, r, 8, 12);
	lanes(r, t, 0, 8);
	lanes(r, t, 4, 12);
}

BF16 static void pack_q(uint32_t *dst, const lm_mat *W, long r0, long nr, long c0, long kc);

/* W's outputs [r0, r0 + nr) and inputs [c0, c0 + kc) into the panel
 * [kcp / 2][NR] words (kcp: kc rounded up to 32), zeros past nr and kc. */
BF16 static void pack(uint32_t *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	if (W->dtype == LM_Q) {
		pack_q(dst, W, r0, nr, c0, kc);
		return;
	}
	long kcp = (kc + 31) / 32 * 32;
	const void *p = W->data;
	size_t ld = W->ld;
	if (nr == NR && kc == kcp && !W->tr) {
		for (long h = 0; h < NR; h += 16)
			for (long k = 0; k < kc; k += 32) {
				__m512i v[16];
#pragma GCC unroll 16
				for (int i = 0; i < 16; i++) {
					size_t at = (size_t)(r0 + h + i) * ld + c0 + k;
					v[i] = _mm512_inserti64x4(_mm512_castsi256_si512(bf16x16(p, at, W->dtype)),
					                          bf16x16(p, at + 16, W->dtype), 1);
				}
				transpose16(v);
#pragma GCC unroll 16
				for (int i = 0; i < 16; i++)
					_mm512_store_si512(dst + (k / 2 + i) * NR + h, v[i]);
			}
		return;
	}
	if (nr == NR && kc == kcp) {     /* [in, out]: a pair is two rows' runs */
		for (long k = 0; k < kc; k += 2)
			for (long h = 0; h < NR; h += 16) {
				size_t at = (size_t)(c0 + k) * ld + r0 + h;
				__m512i lo = _mm512_cvtepu16_epi32(bf16x16(p, at, W->dtype));
				__m512i hi = _mm512_cvtepu16_epi32(bf16x16(p, at + ld, W->dtype));
				_mm512_store_si512(dst + k / 2 * NR + h, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
			}
		return;
	}
	for (long k = 0; k < kcp; k += 2)     /* a part panel: the edges of W */
		for (long j = 0; j < NR; j++) {
			long r = j < nr ? r0 + j : W->rows, c = k < kc ? c0 + k : W->cols;
			dst[k / 2 * NR + j] = w_bf16(W, r, c) | (uint32_t)w_bf16(W, r, k + 1 < kc ? c + 1 : W->cols) << 16;
		}
}

/* A quantized W's panel: its rows' inputs [c0, c0 + kc) dequantized in
 * one call by the AVX-512 prefill kernels' reader (one call a row spent
 * a fifth of its time deriving the format's places again), rounded to
 * bf16, then packed as a BF16 [out, in] panel.  The reader leaves inputs
 * in its chunks' order, so x was put in that order too (lm_gemm_bf16);
 * MLX's own order (lm_qrow) made the dequantizing 1.7 times slower end
 * to end. */
BF16 static void pack_q(uint32_t *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	static __thread float *f;
	static __thread uint16_t *h;
	if (!f) {
		f = lm_alloc_aligned(NR * KC * sizeof *f);
		h = lm_alloc_aligned(NR * KC * sizeof *h);
	}
	lm_qseg_chunked(f, W, r0, nr, c0, kc);
	for (long i = 0; i < nr * kc; i += 32)
		_mm512_store_si512(h + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_load_ps(f + i + 16),
		                                                       _mm512_load_ps(f + i)));
	lm_mat B = {.data = h, .dtype = LM_BF16, .rows = nr, .cols = kc, .ld = kc};
	pack(dst, &B, 0, nr, 0, kc);
}

/* ---- vdpbf16ps ---- */

/* Tokens [0, m) (m <= MR) of x's words at a (lda words a token) times
 * np pairs of the panel b, into c (ldc floats a token), its first nr
 * outputs; add: c += the sums. */
BF16 INLINE void vec_tile(long np, const uint32_t *a, long lda, const uint32_t *b, float *c,
                          long ldc, int add, long nr, const int m)
{
	__m512 acc[MR][2];
#pragma GCC unroll 12
	for (int i = 0; i < m; i++)
		acc[i][0] = acc[i][1] = _mm512_setzero_ps();
	for (long p = 0; p < np; p++, b += NR) {
		__m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);
#pragma GCC unroll 12
		for (int i = 0; i < m; i++) {
			__m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i * lda + p]);
			acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
			acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
		}
	}
	__mmask16 m0 = nr >= 16 ? 0xffff : (1u << nr) - 1;
	__mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0;
#pragma GCC unroll 12
	for (int i = 0; i < m; i++) {
		float *ci = c + i * ldc;
		if (add) {
			acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
			acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
		}
		_mm512_mask_storeu_ps(ci, m0, acc[i][0]);
		_mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
	}
}

/* Tokens t.. t + MR - 1 (those that exist) times the panel b. */
BF16 static void vec_tokens(const Job *J, const uint32_t *b, long jc, long nr, long pc, long kc,
                            long t)
{
	long lda = J->ldx / 2, np = (kc + 1) / 2, ldy = J->W->rows;
	const uint32_t *at = (const uint32_t *)J->xb + pc / 2 + t * lda;
	float *c = J->y + t * ldy + jc;
	switch (min(MR, J->n - t)) {
	case 12: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 12); break;
	case 11: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 11); break;
	case 10: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 10); break;
	case 9: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 9); break;
	case 8: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 8); break;
	case 7: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 7); break;
	case 6: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 6); break;
	case 5: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 5); break;
	case 4: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 4); break;
	case 3: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 3); break;
	case 2: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 2); break;
	default: vec_tile(np, at, lda, b, c, ldy, pc > 0, nr, 1); break;
	}
}

/* ---- AMX ---- */

typedef struct {
	uint8_t palette, start_row, reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
} __attribute__((aligned(64))) Tilecfg;

/* Tiles 0-3: C (tokens 0-15 | 16-31) x (outputs 0-15 | 16-31); 4, 5: A;
 * 6, 7: B.  All 16 rows of 64 bytes. */
AMX static void amx_config(void)
{
	Tilecfg cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.palette = 1;
	for (int i = 0; i < 8; i++) {
		cfg.colsb[i] = 64;
		cfg.rows[i] = 16;
	}
	/* not _tile_loadconfig: gcc 12 drops the stores to cfg before its builtin */
	__asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}

/* Tokens t.. t + 31 (zero rows past n) times the panel b over kcp inputs
 * (a multiple of 32), added to the partial sums at part (4 tiles, 4 KB,
 * from the blocks of inputs before pc; none before the first), which
 * the last block writes to y's outputs jc.. jc + nr - 1 of the tokens
 * that exist.  The partial sums stay out of y: a tile's rows in y are
 * 4 * rows bytes apart, 16 KB at 4096 outputs, which put them all in one
 * cache set and made the round trips between blocks a third of the time. */
AMX static void amx_step(const Job *J, const uint32_t *b, float *part, long jc, long nr, long pc,
                         long kcp, long t)
{
	long ldy = J->W->rows, m = min(MT, J->n - t);
	const uint16_t *a = J->xb + t * J->ldx + pc;
	long lda = J->ldx * 2;     /* bytes */
	if (pc == 0) {
		_tile_zero(0);
		_tile_zero(1);
		_tile_zero(2);
		_tile_zero(3);
	} else {
		_tile_loadd(0, part, 64);
		_tile_loadd(1, part + 256, 64);
		_tile_loadd(2, part + 512, 64);
		_tile_loadd(3, part + 768, 64);
	}
	long plane = J->npad * J->ldx;
	for (long k = 0; k < kcp; k += 32) {
		_tile_loadd(6, b + k / 2 * NR, NR * 4);
		_tile_loadd(7, b + k / 2 * NR + 16, NR * 4);
		for (int p = 0; p < J->planes; p++) {     /* x's parts, largest first */
			const uint16_t *ap = a + p * plane;
			if (k + AHEAD < kcp)
#pragma GCC unroll 32
				for (int i = 0; i < MT; i++)
					_mm_prefetch((const char *)(ap + i * J->ldx + k + AHEAD), _MM_HINT_T0);
			_tile_loadd(4, ap + k, lda);
			_tile_loadd(5, ap + 16 * J->ldx + k, lda);
			_tile_dpbf16ps(0, 4, 6);
			_tile_dpbf16ps(1, 4, 7);
			_tile_dpbf16ps(2, 5, 6);
			_tile_dpbf16ps(3, 5, 7);
		}
	}
	float *c = J->y + t * ldy + jc;
	if (pc + kcp < J->W->cols) {
		_tile_stored(0, part, 64);
		_tile_stored(1, part + 256, 64);
		_tile_stored(2, part + 512, 64);
		_tile_stored(3, part + 768, 64);
	} else if (m == MT && nr == NR) {
		_tile_stored(0, c, ldy * 4);
		_tile_stored(1, c + 16, ldy * 4);
		_tile_stored(2, c + 16 * ldy, ldy * 4);
		_tile_stored(3, c + 16 * ldy + 16, ldy * 4);
	} else {
		float buf[MT * NR] __attribute__((aligned(64)));
		_tile_stored(0, buf, NR * 4);
		_tile_stored(1, buf + 16, NR * 4);
		_tile_stored(2, buf + 16 * NR, NR * 4);
		_tile_stored(3, buf + 16 * NR + 16, NR * 4);
		for (long i = 0; i < m; i++)
			memcpy(c + i * ldy, buf + i * NR, nr * sizeof(float));
	}
}

AMX static void amx_release(void)
{
	_tile_release();
}

/* ---- the blocking ---- */

/* Outputs [r0, r1): one thread's share, NY outputs at a time (NY such
 * that the part of y they make, which every block of inputs adds to,
 * stays in L2: 512 tokens through 4096 outputs write 8 MB of y, and
 * going back to it from L3 for each block of inputs took more time than
 * the products), and within those a panel at a time. */
static void share(void *ctx, long r0, long r1)
{
	const Job *J = ctx;
	long cols = J->W->cols, step = J->amx ? MT : MR, parts = (J->n + step - 1) / step;
	long ny = YBYTES / (J->npad * (long)sizeof(float)) / NR * NR;
	ny = ny < NR ? NR : ny;
	/* the panel, then the AMX kernel's partial sums of ny outputs: 4 KB
	 * for each 32 tokens and panel */
	uint32_t *b = (uint32_t *)lm_scratch((size_t)KC / 2 * NR + (J->amx ? J->npad * ny : 0));
	float *parts_at = (float *)(b + KC / 2 * NR);
	if (J->amx)
		amx_config();
	for (long j0 = r0; j0 < r1; j0 += ny) {
		long j1 = min(r1, j0 + ny);
		for (long pc = 0; pc < cols; pc += KC) {
			long kc = min(KC, cols - pc), kcp = (kc + 31) / 32 * 32;
			for (long jc = j0; jc < j1; jc += NR) {
				long nr = min(NR, j1 - jc);
				pack(b, J->W, jc, nr, pc, kc);
				/* the panel after this one */
				long nj = jc + NR < j1 ? jc + NR : pc + KC < cols ? j0 : j1;
				long nc = jc + NR < j1 ? pc : pc + KC < cols ? pc + KC : 0;
				long nnr = min(NR, (nj < j1 ? j1 : r1) - nj), nkc = min(KC, cols - nc);
				for (long t = 0; t < J->n; t += step) {
					if (nnr > 0 && nj < r1)
						lm_gemm_prefetch(J->W, nj, nnr, nc, nkc, t / step, parts);
					if (J->amx)
						amx_step(J, b, parts_at + ((jc - j0) / NR * J->npad / MT + t / MT) * MT * NR,
						         jc, nr, pc, kcp, t);
					else
						vec_tokens(J, b, jc, nr, pc, kc, t);
				}
			}
		}
	}
	if (J->amx)
		amx_release();
}

static void product(float *y, const float *x, long n, const lm_mat *W, int planes)
{
	static __thread float *bx;    /* each caller's own */
	static __thread long cx;
	/* 64 bytes past the inputs a token, so that a tile's 16 rows (or
	 * vdpbf16ps's 12) fall in different cache sets: at 8 KB apart
	 * (4096 inputs) they shared one, and the A tiles' loads took most of
	 * the time (perf, 4096 x 4096) */
	long ldx = (W->cols + 31) / 32 * 32 + 32, m0 = min(MC, n), npad = (m0 + MT - 1) / MT * MT;
	uint16_t *xb = (uint16_t *)lm_grow(&bx, &cx, (planes * npad * ldx + 31) / 2);
	int amx = use_amx();
	if (W->dtype == LM_Q) {
		static __thread float *px;
		static __thread long cp;
		lm_qpermute(lm_grow(&px, &cp, n * W->cols), x, n, W);
		x = px;
	}
	for (long t0 = 0; t0 < n; t0 += MC) {
		long m = min(MC, n - t0);
		Job j = {y + t0 * W->rows, x + t0 * W->cols, m, W, xb, ldx, (m + MT - 1) / MT * MT, amx,
		         planes};
		lm_parallel(j.npad, MT, round_x, &j);
		lm_parallel(W->rows, NR, share, &j);
	}
}

void lm_gemm_bf16(float *y, const float *x, long n, const lm_mat *W)
{
	product(y, x, n, W, 1);
}

/* ---- the exact product on AMX ----
 *
 * A BF16 weight times x split into three bf16 parts whose sum is x
 * (round_x): each part's products are exact in float32 (8 significant
 * bits times 8), and the tiles sum them in float32 as the FMA kernels
 * sum theirs, so the product is as exact as theirs (DESIGN.md's sense:
 * activations are not rounded), three tile products a step where --fast
 * has one.  The parts of an x below about 2^-110 lose bits to the tiles'
 * flushing of subnormals, an error under 2^-133 of the weight.
 *
 * Against the FMA kernels (Intel Xeon family 6 model 207, AMX, 2
 * threads, BF16, best of 5, Kimi-Linear's experts' 1024x2304 and
 * 2304x1024, 2048x2048 and 6656x2048) it ran 0.87 to 1.11 times as fast
 * at 9 and 12 tokens, 0.97 to 1.17 at 16, 1.25 to 1.73 at 24 to 48 and
 * 1.47 to 2.16 from 64 on, up to 590 GFLOP/s where the cores' f32 FMA
 * peak is about 350; whole prefill: plamo2 1.4 to 2.0 times as fast,
 * kimi_linear 1.3 to 1.8, llama4 1.45 to 2.0 (128 and 512 tokens, the two
 * alternating). */
enum { X3_FROM = 16 };    /* tokens */

int lm_gemm_bf16x3_ran;

int lm_gemm_bf16x3_fits(long n, const lm_mat *W)
{
	return n >= X3_FROM && W->dtype == LM_BF16 && lm_gemm_mode() == LM_GEMM_CHOOSE
	       && lm_gemm_bf16_kernel() && use_amx();
}

void lm_gemm_bf16x3(float *y, const float *x, long n, const lm_mat *W)
{
	lm_gemm_bf16x3_ran = 1;
	product(y, x, n, W, 3);
}

/* ---- rates ---- */

static void bf16_prod(float *y, const float *x, long n, const lm_mat *W)
{
	lm_gemm_bf16(y, x, n, W);
}

double lm_bf16_rate(void)
{
	if (!lm_gemm_bf16_kernel())
		return 0;
	lm_mat W = {.dtype = LM_BF16, .rows = 4096, .cols = 4096, .ld = 4096};
	W.data = lm_alloc_aligned((size_t)W.rows * W.cols * 2);
	double best = lm_best_rate(bf16_prod, &W, 128);
	free((void *)W.data);
	return best;
}

enum { PEAK_REPS = 1 << 16 };

/* PEAK_REPS x 24 independent vdpbf16ps: 64 flops each. */
BF16 static void vec_peak(void *ctx, long lo, long hi)
{
	for (long s = lo; s < hi; s++) {
		__m512 acc[24];
		for (int i = 0; i < 24; i++)
			acc[i] = _mm512_setzero_ps();
		__m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = a;
		for (long r = 0; r < PEAK_REPS; r++) {
#pragma GCC unroll 24
			for (int i = 0; i < 24; i++)
				acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
			__asm__ volatile("" : "+v"(a));
		}
		__m512 sum = acc[0];
		for (int i = 1; i < 24; i++)
			sum = _mm512_add_ps(sum, acc[i]);
		((float *)ctx)[s] = _mm512_reduce_add_ps(sum);
	}
}

/* PEAK_REPS x 4 tile products: 16 x 16 x 32 x 2 flops each. */
AMX static void amx_peak(void *ctx, long lo, long hi)
{
	float buf[16 * 16] __attribute__((aligned(64)));
	uint16_t ab[16 * 32] __attribute__((aligned(64)));
	for (int i = 0; i < 16 * 32; i++)
		ab[i] = 0x3f80;
	amx_config();
	for (long s = lo; s < hi; s++) {
		_tile_zero(0);
		_tile_zero(1);
		_tile_zero(2);
		_tile_zero(3);
		_tile_loadd(4, ab, 64);
		_tile_loadd(5, ab, 64);
		_tile_loadd(6, ab, 64);
		_tile_loadd(7, ab, 64);
		for (long r = 0; r < PEAK_REPS / 4; r++) {
			_tile_dpbf16ps(0, 4, 6);
			_tile_dpbf16ps(1, 4, 7);
			_tile_dpbf16ps(2, 5, 6);
			_tile_dpbf16ps(3, 5, 7);
		}
		_tile_stored(0, buf, 64);
		((float *)ctx)[s] = buf[0];
	}
	amx_release();
}

double lm_bf16_peak(void)
{
	if (!lm_gemm_bf16_kernel())
		return 0;
	int amx = use_amx(), th = min(lm_pool_size(), 64);
	float sink[64];
	double best = 0;
	for (int rep = 0; rep < 3; rep++) {
		double t = lm_now();
		lm_parallel(th, 1, amx ? amx_peak : vec_peak, sink);
		double flops = amx ? th * (double)PEAK_REPS * 16 * 16 * 32 * 2
		                   : th * (double)PEAK_REPS * 24 * 64;
		double gf = flops / (lm_now() - t) / 1e9;
		best = gf > best ? gf : best;
	}
	return best;
}
