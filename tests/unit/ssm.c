/* ssm: lm_ssm against the closed form mlx-lm evaluates (ssm.py, ssm_attn),
 * computed here in double:
 *   y[t] = sum over s <= t of (C[t].B[s]) exp(A (step[s+1] + ... + step[t]))
 *          step[s] x[s]  +  D x[t],
 * with the tokens fed in two calls (the state must carry the first call's
 * tokens), y written over x, two groups of heads with their own B and C,
 * and raw dt values far enough out that the clip to [dt_min, dt_max]
 * decides the step.  Also lm_split_rows.  Prints PASS/FAIL lines. */
#include "lmcc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { H = 4, HD = 3, N = 5, G = 2, T = 9, FIRST = 4 };

static double rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return ((*s >> 8) & 0xffff) / 32768.0 - 1;     /* [-1, 1) */
}

static double step_of(double raw, double bias, double lo, double hi)
{
	double v = raw + bias;
	double s = v > 30 ? v : log1p(exp(v));
	return s < lo ? lo : s > hi ? hi : s;
}

static int check_ssm(void)
{
	static float x[T][H][HD], dt[T][H], B[T][G][N], C[T][G][N], y[T][H][HD];
	static float state[H * HD * N];
	float a_log[H], bias[H], d[H];
	unsigned s = 7;
	for (int t = 0; t < T; t++)
		for (int h = 0; h < H; h++) {
			for (int p = 0; p < HD; p++)
				x[t][h][p] = (float)rnd(&s);
			dt[t][h] = (float)(2 * rnd(&s));
		}
	dt[2][1] = 200;          /* step clipped to dt_max: forgets everything */
	dt[5][3] = -60;          /* step clipped to dt_min */
	for (int t = 0; t < T; t++)
		for (int g = 0; g < G; g++)
			for (int j = 0; j < N; j++) {
				B[t][g][j] = (float)rnd(&s);
				C[t][g][j] = (float)rnd(&s);
			}
	for (int h = 0; h < H; h++) {
		a_log[h] = (float)rnd(&s);
		bias[h] = (float)rnd(&s);
		d[h] = (float)(1 + 0.5 * rnd(&s));
	}
	lm_ssm_dims dims = {H, HD, N, G, 0.001f, 3.0f};

	memcpy(y, x, sizeof x);
	lm_ssm(&y[0][0][0], &y[0][0][0], &dt[0][0], &B[0][0][0], &C[0][0][0], FIRST,
	       &dims, a_log, bias, d, state);
	lm_ssm(&y[FIRST][0][0], &y[FIRST][0][0], &dt[FIRST][0], &B[FIRST][0][0],
	       &C[FIRST][0][0], T - FIRST, &dims, a_log, bias, d, state);

	double worst = 0, scale = 0;
	for (int t = 0; t < T; t++)
		for (int h = 0; h < H; h++) {
			int g = h / (H / G);
			double A = -exp((double)a_log[h]);
			for (int p = 0; p < HD; p++) {
				double want = d[h] * x[t][h][p], decay = 0;
				for (int u = t; u >= 0; u--) {
					double su = step_of(dt[u][h], bias[h], dims.dt_min, dims.dt_max);
					double cb = 0;
					for (int j = 0; j < N; j++)
						cb += (double)C[t][g][j] * B[u][g][j];
					want += cb * exp(A * decay) * su * x[u][h][p];
					decay += su;     /* the steps after u, for u - 1 */
				}
				double e = fabs(want - y[t][h][p]);
				worst = e > worst ? e : worst;
				scale = fabs(want) > scale ? fabs(want) : scale;
			}
		}
	int ok = worst <= 1e-5 * scale;
	printf("%s kernel lm_ssm: closed form vs scan over two calls, max error %.2g of %.2g\n",
	       ok ? "PASS" : "FAIL", worst, scale);
	return ok;
}

static int check_split(void)
{
	float src[3][5], a[3][2], b[3][3];
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 5; c++)
			src[r][c] = (float)(10 * r + c);
	lm_split_rows(&a[0][0], &b[0][0], &src[0][0], 3, 2, 3);
	int ok = 1;
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 5; c++)
			ok &= (c < 2 ? a[r][c] : b[r][c - 2]) == src[r][c];
	printf("%s kernel lm_split_rows\n", ok ? "PASS" : "FAIL");
	return ok;
}

int main(void)
{
	int ok = check_ssm();
	ok &= check_split();
	return !ok;
}
