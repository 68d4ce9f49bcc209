/* matmul_512.c: the streaming kernels with AVX-512 (see matmul.c).
 *
 * 16 floats a vector, masked loads for the tails.  Kept as they were
 * measured on Zen 4; the AVX2 kernels follow the same design. */
#include "matmul.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

/* The address of element i of W's storage, for prefetching. */
static inline const char *at(const lm_mat *W, size_t i)
{
	return (const char *)W->data + i * lm_esize(W->dtype);
}

/* 16 weights from p + i as float32; m masks a short tail. */
AVX512 static inline __m512 load16(const void *p, int dtype, size_t i, __mmask16 m)
{
	if (dtype == LM_F32)
		return _mm512_maskz_loadu_ps(m, (const float *)p + i);
	__m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i);
	if (dtype == LM_BF16)
		return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
	return _mm512_cvtph_ps(h);
}

/* BF16, one token, four rows at a time.  A 64-byte load holds 32 bf16
 * weights; as 32-bit lanes, lane k holds weight 2k in its low half and
 * weight 2k + 1 in its high half, so a shift and a mask turn it into two
 * vectors of floats (the even and the odd weights) without shuffling.  x
 * was laid out the same way once for the call (xe: [16 even | 16 odd] per
 * 32 columns), so each pair of vectors meets its inputs. */
AVX512 static void rows1_bf16_512(const lm_mat *W, const float *x2, const float *x,
                                  float *y, long r0, long r1)
{
	long cols = W->cols, full = cols & ~31L;
	const uint16_t *w = W->data;
	const __m512i hi = _mm512_set1_epi32((int)0xffff0000);
	long r = r0;
	for (; r + 4 <= r1; r += 4) {
		const uint16_t *p[4] = {w + r * W->ld, w + (r + 1) * W->ld,
		                        w + (r + 2) * W->ld, w + (r + 3) * W->ld};
		__m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(),
		               _mm512_setzero_ps(), _mm512_setzero_ps()};
		for (long c = 0; c < full; c += 32) {
			__m512 xe = _mm512_loadu_ps(x2 + c), xo = _mm512_loadu_ps(x2 + c + 16);
			for (int k = 0; k < 4; k++) {
				_mm_prefetch((const char *)(p[k] + c) + PREFETCH, _MM_HINT_T0);
				__m512i v = _mm512_loadu_si512(p[k] + c);
				a[k] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, a[k]);
				a[k] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), xo, a[k]);
			}
		}
		for (int k = 0; k < 4; k++) {
			float t = _mm512_reduce_add_ps(a[k]);
			for (long c = full; c < cols; c++)
				t += lm_bf16_to_f32(w[(size_t)(r + k) * W->ld + c]) * x[c];
			y[r + k] = t;
		}
	}
	/* the rows left over, each summed in the same order as above: a row's
	 * bits must not depend on where a thread's range began */
	for (; r < r1; r++) {
		const uint16_t *q = w + (size_t)r * W->ld;
		__m512 a = _mm512_setzero_ps();
		for (long c = 0; c < full; c += 32) {
			__m512i v = _mm512_loadu_si512(q + c);
			a = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)),
			                    _mm512_loadu_ps(x2 + c), a);
			a = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)),
			                    _mm512_loadu_ps(x2 + c + 16), a);
		}
		float t = _mm512_reduce_add_ps(a);
		for (long c = full; c < cols; c++)
			t += lm_bf16_to_f32(q[c]) * x[c];
		y[r] = t;
	}
}

/* One token, four rows at a time: four independent sums keep the FMA
 * pipeline busy and four streams keep memory busy. */
AVX512 static void rows1_512(const lm_mat *W, const float *x, float *y, long r0, long r1)
{
	long cols = W->cols, full = cols & ~15L;
	__mmask16 tail = (__mmask16)((1u << (cols & 15)) - 1);
	long r = r0;
	for (; r + 4 <= r1; r += 4) {
		size_t b0 = (size_t)r * W->ld, b1 = b0 + W->ld, b2 = b1 + W->ld, b3 = b2 + W->ld;
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		long c = 0;
		for (; c < full; c += 16) {
			__m512 xv = _mm512_loadu_ps(x + c);
			if (!(c & 31)) {
				_mm_prefetch(at(W, b0 + c) + PREFETCH, _MM_HINT_T0);
				_mm_prefetch(at(W, b1 + c) + PREFETCH, _MM_HINT_T0);
				_mm_prefetch(at(W, b2 + c) + PREFETCH, _MM_HINT_T0);
				_mm_prefetch(at(W, b3 + c) + PREFETCH, _MM_HINT_T0);
			}
			a0 = _mm512_fmadd_ps(load16(W->data, W->dtype, b0 + c, 0xffff), xv, a0);
			a1 = _mm512_fmadd_ps(load16(W->data, W->dtype, b1 + c, 0xffff), xv, a1);
			a2 = _mm512_fmadd_ps(load16(W->data, W->dtype, b2 + c, 0xffff), xv, a2);
			a3 = _mm512_fmadd_ps(load16(W->data, W->dtype, b3 + c, 0xffff), xv, a3);
		}
		if (c < cols) {
			__m512 xv = _mm512_maskz_loadu_ps(tail, x + c);
			a0 = _mm512_fmadd_ps(load16(W->data, W->dtype, b0 + c, tail), xv, a0);
			a1 = _mm512_fmadd_ps(load16(W->data, W->dtype, b1 + c, tail), xv, a1);
			a2 = _mm512_fmadd_ps(load16(W->data, W->dtype, b2 + c, tail), xv, a2);
			a3 = _mm512_fmadd_ps(load16(W->data, W->dtype, b3 + c, tail), xv, a3);
		}
		y[r] = _mm512_reduce_add_ps(a0);
		y[r + 1] = _mm512_reduce_add_ps(a1);
		y[r + 2] = _mm512_reduce_add_ps(a2);
		y[r + 3] = _mm512_reduce_add_ps(a3);
	}
	for (; r < r1; r++) {
		size_t b0 = (size_t)r * W->ld;
		__m512 a0 = _mm512_setzero_ps();
		for (long c = 0; c < cols; c += 16) {
			__mmask16 m = c < full ? 0xffff : tail;
			a0 = _mm512_fmadd_ps(load16(W->data, W->dtype, b0 + c, m),
			                     _mm512_maskz_loadu_ps(m, x + c), a0);
		}
		y[r] = _mm512_reduce_add_ps(a0);
	}
}

/* Up to four tokens, one row at a time: the tokens are the independent
 * sums. */
AVX512 static void rows_512(const lm_mat *W, long n, const float *x, const float *x2,
                            float *y, long r0, long r1)
{
	if (n == 1 && x2) {
		rows1_bf16_512(W, x2, x, y, r0, r1);
		return;
	}
	if (n == 1) {
		rows1_512(W, x, y, r0, r1);
		return;
	}
	long cols = W->cols, full = cols & ~15L;
	__mmask16 tail = (__mmask16)((1u << (cols & 15)) - 1);
	for (long r = r0; r < r1; r++) {
		size_t base = (size_t)r * W->ld;
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
		for (long c = 0; c < cols; c += 16) {
			__mmask16 m = c < full ? 0xffff : tail;
			__m512 w = load16(W->data, W->dtype, base + c, m);
			a0 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + c), a0);
			a1 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + cols + c), a1);
			if (n > 2)
				a2 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + 2 * cols + c), a2);
			if (n > 3)
				a3 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + 3 * cols + c), a3);
		}
		y[r] = _mm512_reduce_add_ps(a0);
		y[W->rows + r] = _mm512_reduce_add_ps(a1);
		if (n > 2)
			y[2 * W->rows + r] = _mm512_reduce_add_ps(a2);
		if (n > 3)
			y[3 * W->rows + r] = _mm512_reduce_add_ps(a3);
	}
}

/* One token, W stored [in, out]: y[r] = sum_c x[c] W[c, r].  256 outputs
 * at a time stay in sixteen registers while every input row passes; each
 * row contributes a 512-byte run, long enough to stream from memory. */
AVX512 static void cols1_512(const lm_mat *W, const float *x, float *y, long r0, long r1)
{
	for (long b = r0; b < r1; b += 256) {
		long e = b + 256 < r1 ? b + 256 : r1;
		__m512 acc[16];
		__mmask16 m[16];
		int nk = 0;
		for (int k = 0; k < 16; k++) {
			long left = e - (b + 16 * k);
			m[k] = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
			acc[k] = _mm512_setzero_ps();
			nk += m[k] != 0;
		}
		if (nk == 16) {
			size_t run = 256 * lm_esize(W->dtype);   /* bytes per row */
			for (long c = 0; c < W->cols; c++) {
				size_t base = (size_t)c * W->ld + b;
				__m512 xv = _mm512_set1_ps(x[c]);
				if (c + 4 < W->cols)
					for (size_t o = 0; o < run; o += 64)
						_mm_prefetch(at(W, base + 4 * W->ld) + o, _MM_HINT_T0);
				for (int k = 0; k < 16; k++)
					acc[k] = _mm512_fmadd_ps(load16(W->data, W->dtype, base + 16 * k, 0xffff),
					                         xv, acc[k]);
			}
		} else {
			for (long c = 0; c < W->cols; c++) {
				size_t base = (size_t)c * W->ld + b;
				__m512 xv = _mm512_set1_ps(x[c]);
				for (int k = 0; k < nk; k++)
					acc[k] = _mm512_fmadd_ps(load16(W->data, W->dtype, base + 16 * k, m[k]),
					                         xv, acc[k]);
			}
		}
		for (int k = 0; k < nk; k++)
			_mm512_mask_storeu_ps(y + b + 16 * k, m[k], acc[k]);
	}
}

AVX512 static void cols_512(const lm_mat *W, long n, const float *x, const float *x2,
                            float *y, long r0, long r1)
{
	if (n == 1) {
		cols1_512(W, x, y, r0, r1);
		return;
	}
	/* 64 outputs at a time stay in registers while every input passes */
	for (long b = r0; b < r1; b += 64) {
		long e = b + 64 < r1 ? b + 64 : r1;
		__m512 acc[GROUP][4];
		__mmask16 m[4];
		for (int k = 0; k < 4; k++) {
			long left = e - (b + 16 * k);
			m[k] = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
			for (int t = 0; t < GROUP; t++)
				acc[t][k] = _mm512_setzero_ps();
		}
		for (long c = 0; c < W->cols; c++) {
			size_t base = (size_t)c * W->ld + b;
			for (int k = 0; k < 4; k++) {
				if (!m[k])
					break;
				__m512 w = load16(W->data, W->dtype, base + 16 * k, m[k]);
				for (long t = 0; t < n; t++)
					acc[t][k] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[t * W->cols + c]), acc[t][k]);
			}
		}
		for (long t = 0; t < n; t++)
			for (int k = 0; k < 4 && m[k]; k++)
				_mm512_mask_storeu_ps(y + t * W->rows + b + 16 * k, m[k], acc[t][k]);
	}
}

AVX512 static void widen_run_512(float *dst, const void *p, int dtype, size_t i, long n)
{
	for (long k = 0; k < n; k += 16) {
		__mmask16 m = n - k >= 16 ? 0xffff : (__mmask16)((1u << (n - k)) - 1);
		_mm512_mask_storeu_ps(dst + k, m, load16(p, dtype, i + k, m));
	}
}

const lm_stream lm_stream_512 = {rows_512, cols_512, widen_run_512, 32};
