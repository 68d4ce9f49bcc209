/* qmat_512_fixed.c: decoding loops for the common formats (FIXED_FORMATS)
 * with their group size fixed at compile time, on AVX-512, as
 * qmat_avx2_fixed.c has them on AVX2 (Intel Xeon family 6 model 167, one
 * thread, from L2, weights per ns against the generic loop: q4 g32 23.6
 * to 26.1, q8 g64 24.6 to 25.4, q4 g64 unchanged). */
#include "qmat_512.h"

#define FIXED_CASES FIXED_FORMATS
#include "qmat_simd.h"
