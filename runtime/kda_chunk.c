/* kda_chunk.c: the gated delta rule of delta.c (Kimi's KDA: a decay per
 * key channel) in its chunked form: the same sums, L tokens at a time as
 * matrix products, the state carried from chunk to chunk.
 *
 * Per head, with S0 the [dv, dk] state entering a chunk, g_t the token's
 * decays, k, q, v, beta as in delta.c, and d(i, t) = g_{i+1} ... g_t (the
 * channels' decay from token i to token t, 1 for i = t), the recurrence
 *   S_t = S_{t-1} diag(g_t) + u_t k_t^T,
 *   u_t = beta_t (v_t - S_{t-1} diag(g_t) k_t)        (the delta written)
 * unrolls within the chunk to
 *   u_t + beta_t sum_{i<t} (k_t . d(i,t) k_i) u_i = beta_t (v_t - S0 (d(-1,t) k_t))
 *   o_t = S0 (d(-1,t) q_t) + sum_{i<=t} (q_t . d(i,t) k_i) u_i
 *   S_L = S0 diag(d(-1,L-1)) + sum_i u_i (d(i,L-1) k_i)^T
 * so a chunk is one product with S0 for the keys and queries, the
 * [L, L] matrices A (keys against keys) and P (queries against keys),
 * a unit lower triangular solve for U, P U, and one [dv, L] x [L, dk]
 * product for the state.
 *
 * The decays are never divided: every factor is a product of g over a
 * stretch of tokens, at most 1, so strong decay underflows to 0 as the
 * recurrence's own products do and nothing overflows.  A and P between a
 * block of B tokens and the tokens before it factor through the token r
 * just before the block, d(i,t) = d(r,t) d(i,r), into one product per
 * block; within a block each pair's decay is carried along the block. */
#include "vec.h"

#include <string.h>

enum { B = 16 };    /* the block of tokens whose pairs are summed one by one */

/* U = (I + A)^-1 U, A strictly lower triangular [n, n] (rows lda apart),
 * U [n, dv]: forward substitution, each row less the rows before it. */
static void solve(const float *A, long lda, float *U, long n, long dv)
{
	for (long t = 1; t < n; t++) {
		float *u = U + t * dv;
		for (long i = 0; i < t; i++) {
			float a = A[t * lda + i];
			const float *ui = U + i * dv;
			for (long x = 0; x < dv; x++)
				u[x] -= a * ui[x];
		}
	}
}

typedef struct {
	float *out, *state;
	const float *q, *k, *v, *g, *beta;
	long n, heads, dk, dv, L;
} Kda;

/* The elementwise loops, LANES at a time for gcc's vectoriser (as in
 * vec_c.c): z[i] = x[i] y[i] (z may be x) */
enum { LANES = 8 };
#define LOOP _Pragma("GCC unroll 8") for (int l = 0; l < LANES; l++)

static void mul(float *z, const float *x, const float *restrict y, long n)
{
	long i = 0;
	for (; i + LANES <= n; i += LANES) {
		float t[LANES];
		LOOP t[l] = x[i + l] * y[i + l];
		LOOP z[i + l] = t[l];
	}
	for (; i < n; i++)
		z[i] = x[i] * y[i];
}

/* u[i] = b (v[i] - u[i]): the delta a token would write, given what the
 * carried state recalls (u) */
static void delta_of(float *restrict u, const float *restrict v, float b, long n)
{
	long i = 0;
	for (; i + LANES <= n; i += LANES)
		LOOP u[i + l] = b * (v[i + l] - u[i + l]);
	for (; i < n; i++)
		u[i] = b * (v[i] - u[i]);
}

/* w[i] *= g[i], then *a = sum k[i] w[i] and *p = sum q[i] w[i]: one pair
 * of tokens' decayed key against the later token's key and query */
static void decay2(float *restrict w, const float *restrict g, const float *restrict k,
                   const float *restrict q, long n, float *a, float *p)
{
	float sa[LANES] = {0}, sp[LANES] = {0};
	long i = 0;
	for (; i + LANES <= n; i += LANES)
		LOOP {
			w[i + l] *= g[i + l];
			sa[l] += k[i + l] * w[i + l];
			sp[l] += q[i + l] * w[i + l];
		}
	float ta = 0, tp = 0;
	for (int l = 0; l < LANES; l++) {
		ta += sa[l];
		tp += sp[l];
	}
	for (; i < n; i++) {
		w[i] *= g[i];
		ta += k[i] * w[i];
		tp += q[i] * w[i];
	}
	*a = ta;
	*p = tp;
}

static void kda_heads(void *ctx, long h0, long h1)
{
	const Kda *c = ctx;
	long H = c->heads, dk = c->dk, dv = c->dv, L = c->L;
	float (*dot)(const float *, const float *, long) = lm_vec()->dot;
	float *KQ = lm_scratch(2 * L * dk + 2 * L * dv + 2 * L * L + 2 * L * dk + B * 2 * dk + 2 * dk);
	float *R = KQ + 2 * L * dk;      /* [2nl, dv]: keys, then queries, times S0^T */
	float *A = R + 2 * L * dv, *P = A + L * L;          /* [L, L] */
	float *Kt = P + L * L;           /* [nl, dk]: d(i, nl-1) k_i */
	float *Kp = Kt + L * dk;         /* [t0, dk]: d(i, t0-1) k_i, before a block at t0 */
	float *Bm = Kp + L * dk;         /* [2nb, dk]: d(t0-1, t) k_t, then q_t, in the block */
	float *G = Bm + B * 2 * dk, *w = G + dk;
	for (long h = h0; h < h1; h++) {
		float *S = c->state + h * dv * dk;
		for (long c0 = 0; c0 < c->n; c0 += L) {
			long nl = c->n - c0 < L ? c->n - c0 : L;
#define AT(t) (((c0 + (t)) * H + h))
			const float *k = c->k, *q = c->q, *g = c->g;
			/* keys and queries decayed from the chunk's start, times S0^T */
			for (long i = 0; i < dk; i++)
				G[i] = 1;
			for (long t = 0; t < nl; t++) {
				mul(G, G, g + AT(t) * dk, dk);
				mul(KQ + t * dk, k + AT(t) * dk, G, dk);
				mul(KQ + (nl + t) * dk, q + AT(t) * dk, G, dk);
			}
			lm_sgemm(0, 1, 2 * nl, dv, dk, 1.0f, KQ, dk, S, dk, 0.0f, R, dv);
			/* A (strictly lower) and P (lower), block by block */
			for (long t0 = 0; t0 < nl; t0 += B) {
				long nb = nl - t0 < B ? nl - t0 : B;
				for (long i = t0; i < t0 + nb; i++) {
					const float *ki = k + AT(i) * dk;
					for (long x = 0; x < dk; x++)
						w[x] = ki[x];
					P[i * L + i] = dot(q + AT(i) * dk, ki, dk);
					for (long t = i + 1; t < t0 + nb; t++)
						decay2(w, g + AT(t) * dk, k + AT(t) * dk, q + AT(t) * dk, dk,
						       &A[t * L + i], &P[t * L + i]);
				}
				if (!t0)
					continue;
				for (long x = 0; x < dk; x++)
					w[x] = 1;
				for (long i = t0 - 1; i >= 0; i--) {     /* d(i, t0-1) k_i */
					mul(Kp + i * dk, k + AT(i) * dk, w, dk);
					mul(w, w, g + AT(i) * dk, dk);
				}
				for (long x = 0; x < dk; x++)
					w[x] = 1;
				for (long t = 0; t < nb; t++) {        /* d(t0-1, t) k_t and q_t */
					mul(w, w, g + AT(t0 + t) * dk, dk);
					mul(Bm + t * dk, k + AT(t0 + t) * dk, w, dk);
					mul(Bm + (nb + t) * dk, q + AT(t0 + t) * dk, w, dk);
				}
				lm_sgemm(0, 1, nb, t0, dk, 1.0f, Bm, dk, Kp, dk, 0.0f, A + t0 * L, L);
				lm_sgemm(0, 1, nb, t0, dk, 1.0f, Bm + nb * dk, dk, Kp, dk, 0.0f,
				         P + t0 * L, L);
			}
			/* (I + beta A) U = beta (V - K S0^T), into R's first rows */
			float *U = R;
			for (long t = 0; t < nl; t++) {
				float b = c->beta[AT(t)];
				delta_of(U + t * dv, c->v + AT(t) * dv, b, dv);
				for (long i = 0; i < t; i++)
					A[t * L + i] *= b;
				memset(P + t * L + t + 1, 0, (nl - t - 1) * sizeof(float));
			}
			solve(A, L, U, nl, dv);
			/* O = Q S0^T + P U */
			float *O = R + nl * dv;
			lm_sgemm(0, 0, nl, dv, nl, 1.0f, P, L, U, dv, 1.0f, O, dv);
			for (long t = 0; t < nl; t++)
				memcpy(c->out + AT(t) * dv, O + t * dv, dv * sizeof(float));
			/* S = S0 diag(d(-1, nl-1)) + U^T (d(i, nl-1) k_i) */
			for (long x = 0; x < dk; x++)
				w[x] = 1;
			for (long i = nl - 1; i >= 0; i--) {
				mul(Kt + i * dk, k + AT(i) * dk, w, dk);
				mul(w, w, g + AT(i) * dk, dk);
			}
			for (long j = 0; j < dv; j++)
				mul(S + j * dk, S + j * dk, G, dk);
			lm_sgemm(1, 0, dv, dk, nl, 1.0f, U, dv, Kt, dk, 1.0f, S, dk);
#undef AT
		}
	}
}

void lm_gated_delta_chunked(float *out, const float *q, const float *k, const float *v,
                            const float *g, const float *beta, long n, long heads, long dk,
                            long dv, long chunk, float *state)
{
	if (chunk < 1 || chunk > 256)
		lm_bug("lm_gated_delta_chunked: chunk of %ld tokens", chunk);
	Kda c = {out, state, q, k, v, g, beta, n, heads, dk, dv, chunk};
	lm_parallel(heads, 1, kda_heads, &c);
}
