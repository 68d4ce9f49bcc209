/* gemm_q8.c: --fast's prefill product for 8-bit and 4-bit affine weights
 * (MLX's format, lmcc.h): the activations rounded to int8, the products
 * summed in integers, as llama.cpp multiplies Q8_0 by Q8_0 or Q4_0.
 *
 * Each token's inputs are rounded per group of the weight: x ~ d * v,
 * d = max|x| / 127, v an integer in [-127, 127].  With u the integer
 * the kernel multiplies (4 bits: the code q; 8 bits: k = q - 128, so
 * that |k| * |v| fits vpmaddubsw's 16-bit pairs) and w = s * u + b',
 *   sum_c w_c x_c = s * d * (u . v) + b' * sum(x).
 * Rounding x moves each input by at most d / 2, and the error is then
 * s * sum_c u_c e_c: twice as large with the uncentred q as with
 * k = q - 8, so for 4 bits the bias term is written for the centred
 * codes, s * d * (q . v) + b * sum(x) + 8 * s * (sum(x) - d * sum(v)),
 * which is the centred product exactly.  The bias terms, per group
 * b * c0 + s * c1 with c = [sum(x) | 8 (or 128) * (sum(x) - ...)] a
 * token's, are two multiply-adds per group and token for 8 rows at once,
 * beside the integer dot products, which are AVX2's:
 *   - the weights of 8 rows are packed [inputs / 4][8 rows][4 bytes], so
 *     that a vector holds 4 inputs of each of 8 rows and one vpmaddubsw
 *     by the token's 4 bytes broadcast makes 32 products summed in pairs
 *     per row (16-bit lanes), vpmaddwd by ones the sums of 4 in 32 bits:
 *     the sums stay per row, so a group costs the scaling once per 8
 *     rows and token, not once per row and token;
 *   - 4 bits: q <= 15, |v| <= 127, so eight 16-bit pair sums (32 inputs)
 *     can be added before widening;
 *   - 8 bits: vpmaddubsw of |k| by v with k's sign (vpsignb), widened
 *     every step.
 * Each block of rows is packed once, its scales and biases widened to
 * float with it, and multiplied by every token, TB at a time, so the
 * packing costs 1/n of the products. */

#include "gemm.h"
#include "gemm_avx2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lm_fast;

enum {
	TB = 4,        /* tokens a pass over a block of rows multiplies */
	RB = 8,        /* rows a block: a vector's 32-bit lanes */
};

typedef struct {
	float *y;
	long n;
	const lm_mat *W;
	const int8_t *xq;  /* [n][cols]: v */
	const float *dx;   /* [n][ng]: d of each token's group */
	const float *c;    /* [n][2][ng]: the bias terms' inputs (round_x) */
} Job;

/* 32 codes from p, as bytes in order: u (4 bits) or k = q - 128 (8). */
AVX2 INLINE __m256i codes32(const uint8_t *p, const int bits)
{
	if (bits == 8)
		return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), _mm256_set1_epi8(-128));
	__m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(0x0f);
	__m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
	return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
}

/* Rows [r, r + rb) into the block's layout: u as [cols / 4][RB][4] bytes
 * in pk (8 bits: |k| in pk, k after it), the scales as [ng][RB] in sp
 * and the biases after them; rows past rb are zero.  Each 32 inputs of the 8 rows are an 8 x 8
 * block of 4-byte runs, transposed in registers. */
AVX2 INLINE void pack(int8_t *pk, float *sp, const Job *J, long r, long rb, const int bits)
{
	const lm_mat *W = J->W;
	long cols = W->cols, ng = cols / W->group;
	const uint8_t *q[RB];
	for (long i = 0; i < RB; i++)
		q[i] = (const uint8_t *)((const uint32_t *)W->data + (r + (i < rb ? i : 0)) * W->ld);
	for (long c = 0; c < cols; c += 32) {
		__m256 v[RB];
#pragma GCC unroll 8
		for (int i = 0; i < RB; i++)
			v[i] = i < rb ? _mm256_castsi256_ps(codes32(q[i] + c * bits / 8, bits))
			              : _mm256_setzero_ps();
		transpose8(v);
#pragma GCC unroll 8
		for (int j = 0; j < 8; j++) {
			__m256i u = _mm256_castps_si256(v[j]);
			int8_t *at = pk + (c / 4 + j) * RB * 4;
			if (bits == 4) {
				_mm256_store_si256((__m256i *)at, u);
			} else {
				_mm256_store_si256((__m256i *)at, _mm256_abs_epi8(u));
				_mm256_store_si256((__m256i *)(at + cols * RB), u);
			}
		}
	}
	for (long i = 0; i < RB; i++)
		for (long g = 0; g < ng; g++) {
			size_t at = (size_t)(r + i) * W->sld + g;
			sp[g * RB + i] = i < rb ? lm_load_f32(W->scales, W->sdtype, at) : 0;
			sp[(ng + g) * RB + i] = i < rb ? lm_load_f32(W->biases, W->sdtype, at) : 0;
		}
}

/* y[t0 + t][r + i] = sum over the inputs, for t < tb, i < rb. */
AVX2 INLINE void block_tokens(const Job *J, const int8_t *pk, const float *sp, long r,
                              long rb, long t0, const int tb, const int bits)
{
	const lm_mat *W = J->W;
	long cols = W->cols, G = W->group, ng = cols / G, rows = W->rows;
	const __m256i ones = _mm256_set1_epi16(1);
	__m256 acc[TB];
#pragma GCC unroll 4
	for (int t = 0; t < tb; t++)
		acc[t] = _mm256_setzero_ps();
	const int8_t *x = J->xq + t0 * cols;
	for (long g = 0; g < ng; g++) {
		__m256i s32[TB];
#pragma GCC unroll 4
		for (int t = 0; t < tb; t++)
			s32[t] = _mm256_setzero_si256();
		for (long c = g * G; c < (g + 1) * G; c += 32) {
			if (bits == 4) {
				__m256i s16[TB];
#pragma GCC unroll 4
				for (int t = 0; t < tb; t++)
					s16[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
				for (long k = c; k < c + 32; k += 4) {
					__m256i u = _mm256_load_si256((const __m256i *)(pk + k * RB));
#pragma GCC unroll 4
					for (int t = 0; t < tb; t++) {
						int32_t v4;
						memcpy(&v4, x + t * cols + k, 4);
						s16[t] = _mm256_add_epi16(s16[t],
						         _mm256_maddubs_epi16(u, _mm256_set1_epi32(v4)));
					}
				}
#pragma GCC unroll 4
				for (int t = 0; t < tb; t++)
					s32[t] = _mm256_add_epi32(s32[t], _mm256_madd_epi16(s16[t], ones));
			} else {
#pragma GCC unroll 8
				for (long k = c; k < c + 32; k += 4) {
					__m256i a = _mm256_load_si256((const __m256i *)(pk + k * RB));
					__m256i kk = _mm256_load_si256((const __m256i *)(pk + cols * RB + k * RB));
#pragma GCC unroll 4
					for (int t = 0; t < tb; t++) {
						int32_t v4;
						memcpy(&v4, x + t * cols + k, 4);
						__m256i p = _mm256_maddubs_epi16(a,
						            _mm256_sign_epi8(_mm256_set1_epi32(v4), kk));
						s32[t] = _mm256_add_epi32(s32[t], _mm256_madd_epi16(p, ones));
					}
				}
			}
		}
		__m256 sg = _mm256_load_ps(sp + g * RB);
#pragma GCC unroll 4
		for (int t = 0; t < tb; t++)
			acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[t]),
			                         _mm256_mul_ps(sg, _mm256_broadcast_ss(J->dx + (t0 + t) * ng + g)),
			                         acc[t]);
	}
	/* the bias terms, in a loop of their own: beside the sums above they
	 * would spill (measured, Zen 3) */
	for (long g = 0; g < ng; g++) {
		__m256 sg = _mm256_load_ps(sp + g * RB), bg = _mm256_load_ps(sp + (ng + g) * RB);
#pragma GCC unroll 4
		for (int t = 0; t < tb; t++) {
			const float *c = J->c + (t0 + t) * 2 * ng + g;
			acc[t] = _mm256_fmadd_ps(bg, _mm256_broadcast_ss(c), acc[t]);
			acc[t] = _mm256_fmadd_ps(sg, _mm256_broadcast_ss(c + ng), acc[t]);
		}
	}
#pragma GCC unroll 4
	for (int t = 0; t < tb; t++) {
		float *yt = J->y + (t0 + t) * rows + r;
		if (rb == RB) {
			_mm256_storeu_ps(yt, acc[t]);
			continue;
		}
		float a[RB];
		_mm256_storeu_ps(a, acc[t]);
		for (long i = 0; i < rb; i++)
			yt[i] = a[i];
	}
}

AVX2 INLINE void rows_bits(const Job *J, long r0, long r1, const int bits)
{
	long cols = J->W->cols, n = J->n, ng = cols / J->W->group;
	/* scales and biases, then 2 * cols bytes a row */
	float *sp = lm_scratch((size_t)RB * (cols / 2 + 2 * ng));
	int8_t *pk = (int8_t *)(sp + 2 * RB * ng);
	for (long r = r0; r < r1; r += RB) {
		long rb = r1 - r < RB ? r1 - r : RB;
		pack(pk, sp, J, r, rb, bits);
		for (long t = 0; t < n; t += TB)
			switch (n - t < TB ? n - t : TB) {
			case 4: block_tokens(J, pk, sp, r, rb, t, 4, bits); break;
			case 3: block_tokens(J, pk, sp, r, rb, t, 3, bits); break;
			case 2: block_tokens(J, pk, sp, r, rb, t, 2, bits); break;
			default: block_tokens(J, pk, sp, r, rb, t, 1, bits); break;
			}
	}
}

AVX2 static void share(void *ctx, long r0, long r1)
{
	const Job *J = ctx;
	if (J->W->bits == 4)
		rows_bits(J, r0, r1, 4);
	else
		rows_bits(J, r0, r1, 8);
}

/* Each token's groups rounded: v into xq, d into dx; into c the bias
 * terms' inputs [sum(x) | mid * (sum(x) - d * sum(v))] (4 bits) or
 * [sum(x) | mid * sum(x)] (8 bits, whose k is centred already). */
static void round_x(int8_t *xq, float *dx, float *c, const float *x, long n, long cols,
                    long G, int bits)
{
	long ng = cols / G;
	float mid = bits == 4 ? 8 : 128;
	for (long t = 0; t < n; t++)
		for (long g = 0; g < ng; g++) {
			const float *xg = x + t * cols + g * G;
			float amax = 0;
			double sum = 0;
			long sv = 0;
			for (long i = 0; i < G; i++) {
				amax = fabsf(xg[i]) > amax ? fabsf(xg[i]) : amax;
				sum += xg[i];
			}
			float inv = amax > 0 ? 127.0f / amax : 0, d = amax / 127.0f;
			for (long i = 0; i < G; i++) {
				int v = (int)nearbyintf(xg[i] * inv);
				xq[t * cols + g * G + i] = (int8_t)v;
				sv += v;
			}
			dx[t * ng + g] = d;
			c[t * 2 * ng + g] = (float)sum;
			c[t * 2 * ng + ng + g] = (float)(mid * (bits == 4 ? sum - (double)d * sv : sum));
		}
}

double lm_int8_rate(int bits)
{
	long n = 128, m = 4096, k = 4096, G = 64;
	lm_mat W = {.dtype = LM_Q, .rows = m, .cols = k, .ld = k * bits / 32, .bits = bits,
	            .group = G, .sdtype = LM_BF16, .sld = k / G};
	int was = lm_fast;
	lm_fast = 1;
	if (!lm_gemm_q8_fits(n, &W)) {
		lm_fast = was;
		return 0;
	}
	uint32_t *q = lm_alloc_aligned(m * W.ld * 4);
	uint16_t *s = lm_alloc_aligned(m * W.sld * 2);
	for (long i = 0; i < m * W.sld; i++)
		s[i] = lm_f32_to_bf16(0.01f);
	W.data = q;
	W.scales = W.biases = s;
	double best = lm_best_rate(lm_gemm_q8, &W, n);
	lm_fast = was;
	free(q);
	free(s);
	return best;
}

const char *lm_fast_note(void)
{
	/* one clause, no ';': tests/suite_fast.sh reads the note up to the next */
	const char *k = lm_gemm_bf16_kernel();
	if (k && !strcmp(k, "amx"))
		return "; --fast: bf16 products (amx) for float weights (F32 and F16 ones "
		       "rounded to bf16) and for affine quantized ones (dequantized to bf16)";
	if (k && lm_fast_quant_bf16())
		return "; --fast: bf16 products (avx512_bf16) for float weights (F32 and F16 ones "
		       "rounded to bf16) and for affine quantized ones (dequantized to bf16)";
	if (k)
		return "; --fast: int8 products for 8- and 4-bit weights, bf16 products "
		       "(avx512_bf16) for float weights (F32 and F16 ones rounded to bf16)";
	return lm_isa() >= LM_ISA_AVX2 ? "; --fast: int8 products for 8- and 4-bit weights, "
	                                 "float weights exact"
	                               : "; --fast: nothing faster on the portable path";
}

int lm_gemm_q8_fits(long n, const lm_mat *W)
{
	return lm_fast && n > FEW && W->dtype == LM_Q && W->mode == LM_AFFINE && !W->tr
	       && (W->bits == 4 || W->bits == 8) && W->group % 32 == 0 && W->group <= 128
	       && W->cols % W->group == 0 && lm_isa() >= LM_ISA_AVX2;
}

void lm_gemm_q8(float *y, const float *x, long n, const lm_mat *W)
{
	static __thread float *bx;    /* each caller's own */
	static __thread long cx;
	long cols = W->cols, G = W->group, ng = cols / G;
	/* v (a byte an input), d and the bias terms' inputs in one buffer */
	float *dx = lm_grow(&bx, &cx, n * cols / 4 + 3 * n * ng), *c = dx + n * ng;
	int8_t *xq = (int8_t *)(c + 2 * n * ng);
	round_x(xq, dx, c, x, n, cols, G, W->bits);
	Job j = {y, n, W, xq, dx, c};
	lm_parallel(W->rows, RB, share, &j);
}
