/* qmat_avx2_fixed.c: decoding loops for the common formats (FIXED_FORMATS)
 * with their group size fixed at compile time, on AVX2: measured on Zen 3,
 * they read closer to the bound than the generic loop.  A file of their
 * own, so that no file of the kernels takes minutes to compile. */
#include "qmat_avx2.h"

#define FIXED_CASES FIXED_FORMATS
#include "qmat_simd.h"
