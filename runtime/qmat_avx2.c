/* qmat_avx2.c: qmat.c's vector kernels for AVX2 (qmat_simd.h, L = 8);
 * decoding the common formats goes to qmat_avx2_fixed.c's loops first. */
#include "qmat_avx2.h"

#define FIXED lm_qfixed_avx2
#include "qmat_simd.h"

const lm_qpath lm_qpath_avx2 = {few_avx2, row_avx2, seg_avx2, permute_avx2};
