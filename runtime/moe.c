/* moe.c: mixture of experts: choosing experts (lm_route) and applying
 * them (lm_moe).  The rules are documented with lm_router in lmcc.h. */
#include "matmul.h"
#include "vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float sigmoid(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* The k largest of v[0, n) by value (first index on ties), in order. */
static void top_k(const float *v, long n, long k, int *out)
{
	for (long j = 0; j < k; j++) {
		long best = -1;
		for (long i = 0; i < n; i++) {
			int taken = 0;
			for (long q = 0; q < j && !taken; q++)
				taken = out[q] == i;
			if (!taken && (best < 0 || v[i] > v[best]))
				best = i;
		}
		out[j] = (int)best;
	}
}

static void route_grouped(const float *logits, const lm_router *r,
                          const float *bias, int *idx, float *w)
{
	long E = r->experts, per = E / r->groups;
	float s[4096], sel[4096];      /* experts <= 4096: checked by the compiler */
	if (r->softmax) {
		float mx = logits[0];
		for (long e = 1; e < E; e++)
			mx = logits[e] > mx ? logits[e] : mx;
		double sum = 0;
		for (long e = 0; e < E; e++)
			sum += s[e] = expf(logits[e] - mx);
		for (long e = 0; e < E; e++)
			s[e] = (float)(s[e] / sum);
	} else {
		for (long e = 0; e < E; e++)
			s[e] = sigmoid(logits[e]);
	}
	for (long e = 0; e < E; e++)
		sel[e] = s[e] + (bias ? bias[e] : 0);
	if (r->groups > 1) {
		/* score each group by its two best, drop the lowest groups */
		float gs[4096];
		int two[2], order[4096];
		for (long g = 0; g < r->groups; g++) {
			top_k(sel + g * per, per, per < 2 ? per : 2, two);
			gs[g] = sel[g * per + two[0]] + (per > 1 ? sel[g * per + two[1]] : 0);
		}
		top_k(gs, r->groups, r->groups, order);     /* best first */
		for (long j = r->topk_group; j < r->groups; j++)
			for (long e = 0; e < per; e++)
				sel[order[j] * per + e] = 0;
	}
	top_k(sel, E, r->top_k, idx);
	double sum = 0;
	for (long k = 0; k < r->top_k; k++)
		sum += w[k] = s[idx[k]];
	for (long k = 0; k < r->top_k; k++) {
		if (r->renorm && r->top_k > 1)
			w[k] = (float)(w[k] / (sum + 1e-20));
		w[k] *= r->scaling;
	}
}

void lm_route(const float *logits, long n, const lm_router *r,
              const float *bias, int *idx, float *w)
{
	for (long t = 0; t < n; t++) {
		const float *l = logits + t * r->experts;
		int *it = idx + t * r->top_k;
		float *wt = w + t * r->top_k;
		if (r->rule == LM_ROUTE_TOP1_SIGMOID_IN) {
			top_k(l, r->experts, 1, it);
			wt[0] = sigmoid(l[it[0]]);
		} else {
			route_grouped(l, r, bias, it, wt);
		}
	}
}

/* One token: its experts' gate and up products in one job of the pool,
 * their down products in another, each row summed as lm_matmul sums it
 * and the experts added to y in the order of their index, as below. */
static void moe1(float *y, const float *x, long dim, const lm_mat *gate,
                 const lm_mat *up, const lm_mat *down, const int *idx,
                 const float *w, long top_k, int scale_input)
{
	static float *buf, **py;
	static const float **px;
	static lm_mat *pw;
	static int *order;
	static long cbuf, cap;
	const lm_vec_fns *v = lm_vec();
	if (2 * top_k > cap) {
		cap = 2 * top_k;
		py = lm_realloc(py, cap * sizeof *py);
		px = lm_realloc(px, cap * sizeof *px);
		pw = lm_realloc(pw, cap * sizeof *pw);
		order = lm_realloc(order, cap * sizeof *order);
	}
	for (long k = 0; k < top_k; k++) {   /* slots by expert index */
		long q = k;
		for (; q > 0 && idx[order[q - 1]] > idx[k]; q--)
			order[q] = order[q - 1];
		order[q] = (int)k;
	}
	long need = 0;
	for (long k = 0; k < top_k; k++)
		need += 2 * dim + 2 * gate[idx[k]].rows;
	float *X = lm_grow(&buf, &cbuf, need), *O = X + top_k * dim, *H = O + top_k * dim;
	for (long q = 0; q < top_k; q++) {
		long k = order[q], e = idx[k], inter = gate[e].rows;
		const float *xk = x;
		if (scale_input) {
			v->scale(X + q * dim, x, w[k], NULL, dim);
			xk = X + q * dim;
		}
		px[2 * q] = px[2 * q + 1] = xk;
		py[2 * q] = H;
		py[2 * q + 1] = H + inter;
		pw[2 * q] = gate[e];
		pw[2 * q + 1] = up[e];
		H += 2 * inter;
	}
	lm_matmul_each(2 * top_k, py, px, pw);
	for (long q = 0; q < top_k; q++) {
		long e = idx[order[q]];
		lm_swiglu(py[2 * q], py[2 * q], py[2 * q + 1], gate[e].rows);
		px[q] = py[2 * q];
		py[q] = O + q * dim;
		pw[q] = down[e];
	}
	lm_matmul_each(top_k, py, px, pw);
	memset(y, 0, dim * sizeof(float));
	for (long q = 0; q < top_k; q++)
		v->axpy(y, scale_input ? 1.0f : w[order[q]], O + q * dim, dim);
}

void lm_moe(float *y, const float *x, long n, long dim, const lm_mat *gate,
            const lm_mat *up, const lm_mat *down, const int *idx,
            const float *w, long top_k, int scale_input)
{
	if (n == 1) {
		moe1(y, x, dim, gate, up, down, idx, w, top_k, scale_input);
		return;
	}
	static float *xs, *g, *u, *o;
	static long cx, cg, cu, co;
	static long *rows;
	static long crows;
	const lm_vec_fns *v = lm_vec();
	if (n * top_k > crows) {
		free(rows);
		crows = n * top_k;
		rows = lm_alloc(crows * sizeof(long));
	}
	memset(y, 0, n * dim * sizeof(float));
	long E = 0;
	for (long i = 0; i < n * top_k; i++)
		E = idx[i] + 1 > E ? idx[i] + 1 : E;
	for (long e = 0; e < E; e++) {
		/* the (token, slot) pairs routed to expert e */
		long m = 0;
		for (long i = 0; i < n * top_k; i++)
			if (idx[i] == e)
				rows[m++] = i;
		if (!m)
			continue;
		long inter = gate[e].rows;
		float *X = lm_grow(&xs, &cx, m * dim);
		for (long r = 0; r < m; r++)
			v->scale(X + r * dim, x + (rows[r] / top_k) * dim,
			         scale_input ? w[rows[r]] : 1.0f, NULL, dim);
		float *G = lm_grow(&g, &cg, m * inter), *U = lm_grow(&u, &cu, m * inter);
		float *O = lm_grow(&o, &co, m * dim);
		lm_matmul(G, X, m, gate[e]);
		lm_matmul(U, X, m, up[e]);
		lm_swiglu(G, G, U, m * inter);
		lm_matmul(O, G, m, down[e]);
		for (long r = 0; r < m; r++)
			v->axpy(y + (rows[r] / top_k) * dim, scale_input ? 1.0f : w[rows[r]],
			        O + r * dim, dim);
	}
}
