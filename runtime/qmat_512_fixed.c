/* qmat_512_fixed.c: decoding loops for the common formats (FIXED_FORMATS)
 * with their group size fixed at compile time, on AVX-512, as
 * qmat_avx2_fixed.c has them on AVX2. */
#include "qmat_512.h"

#define FIXED_CASES FIXED_FORMATS
#include "qmat_simd.h"
