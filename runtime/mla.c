/* mla.c: the steps of latent attention that lm_attend does not do.
 *
 * Latent attention keeps per head a small matrix that maps between a
 * head's own space and the shared latent (kv_b_proj split per head).  Each
 * head has its own, so the product is one lm_matmul per head over the
 * call's tokens, whose inputs and outputs sit inside wider rows. */
#include "rt.h"
#include "matmul.h"

#include <stdlib.h>
#include <string.h>

void lm_matmul_heads(float *y, long ypitch, const float *x, long xpitch,
                     long n, long heads, const lm_mat *W)
{
	static float *xs, *ys;
	static long cx, cy;
	if (n == 1) {
		/* one token: each head's row is contiguous already, and the
		 * heads' small products share one job of the pool, not one each */
		static float **yh;
		static const float **xh;
		static long ch;
		if (heads > ch) {
			ch = heads;
			yh = lm_realloc(yh, ch * sizeof *yh);
			xh = lm_realloc(xh, ch * sizeof *xh);
		}
		for (long h = 0; h < heads; h++) {
			yh[h] = y + h * ypitch;
			xh[h] = x + h * xpitch;
		}
		lm_matmul_each(heads, yh, xh, W);
		return;
	}
	for (long h = 0; h < heads; h++) {
		long in = W[h].cols, out = W[h].rows;
		/* gather head h of every token, multiply, scatter back */
		float *X = lm_grow(&xs, &cx, n * in), *Y = lm_grow(&ys, &cy, n * out);
		lm_copy_cols(X, in, x + h * xpitch, heads * xpitch, n, in);
		lm_matmul(Y, X, n, W[h]);
		lm_copy_cols(y + h * ypitch, heads * ypitch, Y, out, n, out);
	}
}

void lm_copy_cols(float *dst, long dpitch, const float *src, long spitch,
                  long rows, long cols)
{
	for (long r = 0; r < rows; r++)
		memcpy(dst + r * dpitch, src + r * spitch, cols * sizeof(float));
}

/* ---- prefill with the keys and values expanded ----
 *
 * The same scores and values as attending in the latent space, taken the
 * other way round: each head's keys and values are lifted out of the
 * latents, and the queries stay as they are.  Which way costs less is
 * the template's choice (templates/mla.c counts both).  One head at a
 * time, so the expanded keys and values take (tokens) x (one head's key
 * and value) floats, not every head's: the latent cache stays the only
 * thing kept. */

/* Head h's key up-projection, latent to nope: uk[h] transposed.  A float
 * matrix's transpose is a view of its data.  A quantized one (always
 * [out, in]) is widened to float32 in *buf, [lora, nope], a row at a time:
 * nope x lora numbers, where the product it serves takes tokens x nope x
 * lora.  No adapter reaches uk: mlx-lm's LoRA wraps Linear layers, and
 * uk is a MultiLinear (compiler/adapter.c). */
static lm_mat key_up(const lm_mat *uk, float **buf, long *cap)
{
	lm_mat t = *uk;
	long nope = uk->cols, lora = uk->rows;
	if (uk->lora)
		lm_bug("lm_mla_expanded: an adapter on a key up-projection");
	t.rows = nope;
	t.cols = lora;
	t.tr = !uk->tr;
	if (uk->dtype != LM_Q)
		return t;
	float *T = lm_grow(buf, cap, nope * lora);
	for (long l = 0; l < lora; l++)
		lm_qrow(T + l * nope, uk, l);
	return (lm_mat){.data = T, .dtype = LM_F32, .tr = 1, .rows = nope, .cols = lora, .ld = nope};
}

void lm_mla_expanded(float *out, const float *q, const float *kv, long n, long pos,
                     lm_kv *c, const lm_mla_dims *d, const lm_mat *uk, const lm_mat *uv)
{
	static float *bc, *bkn, *bk, *bkq, *bv, *bvq, *bq, *bo, *bu;
	static long cc, ckn, ck, ckq, cv, cvq, cq, co, cu, cp;
	static long *kpos;
	long lora = d->lora, nope = d->nope, rope = d->rope, vd = d->vd, H = d->heads;
	long kvd = lora + rope, qhd = nope + rope;
	long P = c->len < c->cap ? c->len : c->cap, T = P + n;
	if (c->kind != LM_KV_LATENT || c->kdim != kvd || P > pos || pos + n > c->cap)
		lm_bug("lm_mla_expanded: cache of %ld floats a row, %ld of %ld rows, at position %ld",
		       c->kdim, P, c->cap, pos);
	/* every key's latent; the cached keys (slots 0..P) and room for the
	 * call's, which lm_attend appends to this per-head copy of the cache */
	float *C = lm_grow(&bc, &cc, T * lora), *Kn = lm_grow(&bkn, &ckn, T * nope);
	float *K = lm_grow(&bk, &ck, (pos + n) * qhd), *Kq = lm_grow(&bkq, &ckq, n * qhd);
	float *V = lm_grow(&bv, &cv, (pos + n) * vd), *Vq = lm_grow(&bvq, &cvq, n * vd);
	float *Q = lm_grow(&bq, &cq, n * qhd), *O = lm_grow(&bo, &co, n * vd);
	if (pos + n > cp) {
		cp = pos + n;
		kpos = lm_realloc(kpos, cp * sizeof *kpos);
	}
	memcpy(kpos, c->pos, P * sizeof *kpos);
	lm_copy_cols(C, lora, c->k, kvd, P, lora);
	lm_copy_cols(C + P * lora, lora, kv, kvd, n, lora);
	/* k_pe is every head's: it goes into the key rows once */
	lm_copy_cols(K + nope, qhd, c->k + lora, kvd, P, rope);
	lm_copy_cols(Kq + nope, qhd, kv + lora, kvd, n, rope);
	for (long h = 0; h < H; h++) {
		lm_kv e = {.k = K, .v = V, .pos = kpos, .cap = pos + n, .kdim = qhd, .vdim = vd,
		           .len = P, .kind = LM_KV_FULL};
		lm_matmul(Kn, C, T, key_up(&uk[h], &bu, &cu));
		lm_copy_cols(K, qhd, Kn, nope, P, nope);
		lm_copy_cols(Kq, qhd, Kn + P * nope, nope, n, nope);
		if (P)
			lm_matmul(V, C, P, uv[h]);
		lm_matmul(Vq, C + P * lora, n, uv[h]);
		lm_copy_cols(Q, qhd, q + h * qhd, H * qhd, n, qhd);
		lm_attend(O, Q, n, pos, &e, Kq, Vq, 1, 1, qhd, vd, d->scale,
		          (lm_mask){.window = 0, .chunk = 0});
		lm_copy_cols(out + h * vd, H * vd, O, vd, n, vd);
	}
	lm_kv_append(c, kv, kv, n, pos);
}
