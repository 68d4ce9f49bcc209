/* gemm.h: what the blocked prefill product (gemm.c) shares with the
 * micro-kernels of each instruction set (gemm_c.c, gemm_avx2.c,
 * gemm_512.c). */
#ifndef LM_GEMM_H
#define LM_GEMM_H

#include "matmul.h"

/* The first m rows (m <= MR) of the MR x NR tile of y at c (rows ldc
 * apart) from kc steps of an outer product: a is a panel of x, [kc][MR]
 * (token i of step k at a[k * MR + i]), b a panel of W, [kc][NR], 64-byte
 * aligned.  add: c += the product, else c = it. */
typedef void lm_tile_fn(long kc, const float *a, const float *b, float *c, long ldc,
                        int add, int m);

/* The panel of W's outputs [r0, r0 + nr) and inputs [c0, c0 + kc) as
 * float32 into dst, [kc][NR], outputs nr..NR - 1 zero (nr <= NR). */
typedef void lm_pack_fn(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc);

/* Rows [r0, r0 + nr)'s inputs [c0, c0 + kc) as float32, row j's at
 * dst + j * kc: how a weight in a format of its own (qmat.c's
 * dequantizing) feeds the same blocking.  c0 is a multiple of
 * LM_GEMM_KC; kc is LM_GEMM_KC or what is left of the row.  A panel's
 * rows in one call: what a format derives per call (its groups' places
 * in a vector) cost as much as dequantizing one row's block. */
typedef void lm_rowseg_fn(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc);

enum { LM_GEMM_KC = 256 };   /* inputs per block (gemm.c) */

/* The other orientation, for few tokens (gemm.c's lm_gemm_few): a tile
 * of MW outputs x nt tokens (nt a multiple of 16, at most the kernel's
 * nt) from kc steps.  w holds MW rows of W as float32, row i's inputs at
 * w + i * kc; xt is x transposed, token t of step k at xt[k * nt + t].
 * acc holds the tile's sums so far, [MW][nt], read when add.  With y
 * NULL the sums go back to acc; else they are the tile's last, and go
 * to y[t * ldy + i] for the first m outputs and n tokens only. */
typedef void lm_tile_t_fn(long kc, const float *w, const float *xt, float *acc, int add,
                          float *y, long ldy, int m, int n, int nt);

typedef struct {
	int mr, nr;                /* tile: tokens x outputs */
	lm_tile_fn *tile;
	lm_pack_fn *pack;          /* for the float dtypes */
	int mw, nt;                /* lm_tile_t_fn's tile: outputs x at most nt tokens */
	                           /* (tile_t NULL: none) */
	lm_tile_t_fn *tile_t;
	lm_rowseg_fn *rows;        /* float dtypes' rows as float32, for tile_t */
} lm_gemm_kern;

extern const lm_gemm_kern lm_gemm_c, lm_gemm_avx2, lm_gemm_512;

/* Part `part` of `parts` of the cache lines that the panel of W's
 * outputs [r0, r0 + nr) and inputs [c0, c0 + kc) reads (a quantized W's
 * packed words, scales and biases too), asked for into L2 (gemm.c; both
 * blockings ask for the next panel while they multiply this one). */
void lm_gemm_prefetch(const lm_mat *W, long r0, long nr, long c0, long kc, long part,
                      long parts);

/* lm_pack_fn with panels NR wide: the portable one, which the others use
 * for partial panels, and AVX2's, which the AVX-512 kernels use too. */
void lm_gemm_pack_c(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc, int NR);
void lm_gemm_pack_avx2(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc, int NR);
/* lm_rowseg_fn for F32, F16 and BF16 on AVX2 (for tile_t). */
void lm_gemm_rows_avx2(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc);
/* Tokens [0, n) of x[n, cols], inputs [c0, c1), into xt ([cols][nt], token t
 * of input k at xt[k * nt + t]), tokens n .. nt - 1 zero (n <= nt, nt a
 * multiple of 8, c0 and c1 multiples of 8 or c1 = cols). */
void lm_gemm_xt_avx2(float *xt, const float *x, long n, long cols, long c0, long c1, int nt);

/* y[n, W->rows] = x[n, W->cols] W^T, the outputs split across the pool's
 * threads, with the kernels of the instruction set lm_isa() chose.  row:
 * how to read a row of W (NULL: W is F32, F16 or BF16, stored either way). */
void lm_gemm(float *y, const float *x, long n, const lm_mat *W, lm_rowseg_fn *row);
/* Whether lm_matmul takes float32 weights' prefill through lm_gemm
 * rather than OpenBLAS's sgemm: by instruction set (gemm.c says why). */
int lm_gemm_f32_own(void);

/* --fast's int8 product (gemm_q8.c) for a quantized W: whether it takes
 * n tokens times W (lm_fast, 8 or 4 bits affine, AVX2), and the product. */
int lm_gemm_q8_fits(long n, const lm_mat *W);
void lm_gemm_q8(float *y, const float *x, long n, const lm_mat *W);

/* --fast's BF16 product (gemm_bf16.c) for a float W (BF16 as stored,
 * F32 and F16 rounded to bf16 as packed), x rounded to bf16: whether it
 * takes n tokens times W (lm_fast, AVX-512 with AVX512_BF16), and the
 * product, on AMX's tiles where the CPU and the OS allow them, else on
 * vdpbf16ps where that outruns float32 FMAs.  lm_gemm_bf16_vec = 1 runs
 * it on vdpbf16ps wherever the CPU has it (tests). */
int lm_gemm_bf16_fits(long n, const lm_mat *W);
void lm_gemm_bf16(float *y, const float *x, long n, const lm_mat *W);
/* The exact product of n tokens and a BF16 W on AMX's tiles (gemm_bf16.c):
 * whether it takes them (lm_matmul's choice where --fast does not take
 * W, on a CPU and OS with AMX, LMCC_GEMM unset), and the product. */
int lm_gemm_bf16x3_fits(long n, const lm_mat *W);
void lm_gemm_bf16x3(float *y, const float *x, long n, const lm_mat *W);
extern int lm_gemm_bf16_vec;
/* Which kernel lm_gemm_bf16 runs now: "amx", "avx512_bf16" or 0 (none:
 * --fast leaves float weights exact). */
const char *lm_gemm_bf16_kernel(void);
/* A quantized W's rows [r0, r0 + nr), inputs [c0, c0 + kc), as the
 * instruction set's prefill kernels read them (qmat.c, an lm_rowseg_fn):
 * in the order of their chunks of 16 lanes (qmat_simd.h), into which
 * lm_qpermute puts x[n, W->cols], so that products are unchanged. */
void lm_qseg_chunked(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc);
void lm_qpermute(float *xp, const float *x, long n, const lm_mat *W);

/* Which products lm_matmul (float dtypes) and lm_sgemm use: 0 the ones
 * chosen per shape, LM_GEMM_LMCC or LM_GEMM_OPENBLAS always (LMCC_GEMM=lmcc
 * or openblas at start-up; bench_gemm sets it between measurements). */
enum { LM_GEMM_CHOOSE = 0, LM_GEMM_LMCC = 1, LM_GEMM_OPENBLAS = 2 };
extern int lm_gemm_force;
/* lm_gemm_force, read from LMCC_GEMM the first time. */
int lm_gemm_mode(void);
/* Whether prefill's products take lmcc's blocked kernels at all, before
 * any choice per dtype: as LMCC_GEMM forces, else on every path but the
 * portable one (matmul.c). */
int lm_gemm_own(void);

#endif
