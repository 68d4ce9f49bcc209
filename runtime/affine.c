/* affine.c: MLX's affine group quantization of a float row, and back.
 *
 * A row of cols weights falls into groups of `group` consecutive inputs.
 * Each group keeps a scale s and a bias b, and each weight an unsigned
 * `bits`-bit integer q, with w ~ s * q + b.  How MLX picks s and b decides
 * every bit of the result, so this follows its CPU quantizer step by step,
 * all in float32:
 *   - the range: lo, hi = the group's min and max;
 *   - the edge, the end of larger magnitude, becomes q = 0 exactly: the
 *     scale is (hi - lo) / (2^bits - 1), at least 1e-7, positive when the
 *     edge is lo and negative when it is hi (so q counts away from it);
 *   - zero exactly representable: q0 = rint(edge / scale); unless q0 is
 *     0, the scale becomes edge / q0 and the bias edge, so q = -q0 maps
 *     back to edge - edge = 0 (with q0 == 0 the bias stays 0);
 *   - q = clamp(rint((w - b) / s), 0, 2^bits - 1), rint rounding halves
 *     to even, with s and b still in float32: rounding them to the
 *     checkpoint's dtype comes after, when they are stored.
 * The row is packed as one little-endian bit stream: q of input c occupies
 * bits [c * bits, (c + 1) * bits) of the row's 32-bit words. */
#include "rt.h"

#include <math.h>
#include <string.h>

void lm_affine_quantize(const float *w, long cols, int bits, int group,
                        uint32_t *q, float *scales, float *biases)
{
	const float top = (float)((1 << bits) - 1);
	memset(q, 0, (size_t)(cols * bits / 32) * 4);
	for (long g0 = 0; g0 < cols; g0 += group) {
		float lo = INFINITY, hi = -INFINITY;
		for (long c = g0; c < g0 + group; c++) {
			hi = fmaxf(hi, w[c]);
			lo = fminf(lo, w[c]);
		}
		int from_lo = fabsf(lo) > fabsf(hi);
		float s = fmaxf((hi - lo) / top, 1e-7f);
		s = from_lo ? s : -s;
		float edge = from_lo ? lo : hi, q0 = rintf(edge / s), b = 0;
		if (q0 != 0) {
			s = edge / q0;
			b = edge;
		}
		for (long c = g0; c < g0 + group; c++) {
			float v = fminf(fmaxf(rintf((w[c] - b) / s), 0), top);
			uint64_t u = (uint64_t)v << ((c * bits) % 32);
			long word = c * bits / 32;
			q[word] |= (uint32_t)u;
			if (u >> 32)
				q[word + 1] |= (uint32_t)(u >> 32);
		}
		scales[g0 / group] = s;
		biases[g0 / group] = b;
	}
}

unsigned lm_affine_q(const uint32_t *row, long c, int bits)
{
	long bit = c * bits, word = bit / 32;
	uint32_t lo, hi = 0;   /* by bytes: the file aligns nothing (qmat.h's word) */
	memcpy(&lo, row + word, 4);
	if (bit % 32 + bits > 32)
		memcpy(&hi, row + word + 1, 4);
	uint64_t u = lo | (uint64_t)hi << 32;
	return (unsigned)(u >> (bit % 32)) & ((1u << bits) - 1);
}

/* The row read as the kernels read it (lm_qrow), so that a dequantized
 * twin holds exactly the weights a quantized product multiplies. */
void lm_affine_dequantize(const uint32_t *q, const float *scales,
                          const float *biases, long cols, int bits, int group,
                          float *w)
{
	lm_mat W = {.data = q, .dtype = LM_Q, .rows = 1, .cols = cols,
	            .ld = cols * bits / 32, .bits = bits, .group = group,
	            .sdtype = LM_F32, .scales = scales, .biases = biases,
	            .sld = cols / group};
	lm_qrow(w, &W, 0);
}
