/* qmat_512.c: qmat.c's vector kernels for AVX-512 (qmat_simd.h, L = 16),
 * compiled everywhere and run only where the CPU has AVX-512; decoding
 * the common formats goes to qmat_512_fixed.c's loops first. */
#include "qmat_512.h"

#define FIXED lm_qfixed_512
#include "qmat_simd.h"

const lm_qpath lm_qpath_512 = {few_512, row_512, seg_512, permute_512};
