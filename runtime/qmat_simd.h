/* qmat_simd.h: qmat.c's vector kernels, written once for vectors of L
 * floats and included once per instruction set (AVX2: L = 8, AVX-512:
 * L = 16), so that the path this machine cannot run shares its logic,
 * line for line, with one that the tests run.
 *
 * The includer defines L, K(name) (a per-set suffix), TARGET, the vector
 * types Vf (floats) and Vi (32-bit integers) and the operations used
 * below, among them LANES(w, bits) (a chunk's packed words at w spread
 * into L integer lanes) and LOAD16(p) (L 16-bit values widened to Vi);
 * then either FIXED_CASES (a list of (bits, group): only K(lm_qfixed), the
 * decoding loops of those formats with the group size fixed), or not (the
 * kernels of every format, and FIXED, if defined, names the K(lm_qfixed)
 * that decoding tries first).
 *
 * A chunk is L lanes of P = lane_elems(bits) elements: lane j holds
 * elements j*P .. j*P+P-1 of the chunk, element k at bits [k*bits,
 * (k+1)*bits) of the lane.  The lane's upper half (elements P/2 ..) is
 * shifted down once; masking element k in place in its half and
 * converting gives q * 2^((k mod P/2) * bits) exactly (under 2^16), so
 * the input it meets is x * 2^-((k mod P/2) * bits) (exact: a power of
 * two; only inputs below 2^-98 would lose bits), stored in the chunk's
 * order by K(permute) once per call.  Per chunk and element that is one
 * AND, one conversion and one FMA per L weights (4 bits on AVX-512: the
 * element at the bottom of each half, a permute of the floats 0 .. 15 and
 * the FMA), with P/2 masks (not P - 1) held in registers: AVX2 has 16,
 * and a spilled mask or sum cost more than the one shift.
 *
 * The FP modes use the lanes of 4 and 8 bits: an FP4 code's magnitude is
 * looked up by a permute (its 3 low bits index the 8 values), its sign
 * bit moved to the float's; an FP8 code's 7 low bits, shifted into a half
 * float's exponent and mantissa, convert exactly to its value / 256, and
 * the 256 goes into the inputs instead, as affine's powers of two do. */

#define KINL TARGET static inline __attribute__((always_inline))

KINL Vf K(elem)(Vi v, Vi hi, int k, int bits)
{
	int h = lane_elems(bits) / 2;
	if (L == 16 && bits == 4 && k % h == 0) {
		/* a 4-bit code at the bottom of its lane indexes 16 floats: one
		 * permute where a mask and a conversion are two uops (Intel Xeon
		 * family 6 model 167, one thread, from L2: q4 g64 30.4 to 32.5
		 * weights per ns, g32 29.2 to 30.9; AVX2's permute takes 3 bits) */
		static const float q[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
		return vperm(vload(q), k < h ? v : hi);
	}
	return vcvt(iand(k < h ? v : hi, iset1(((1 << bits) - 1) << (bits * (k % h)))));
}

/* The value of element k of each lane in an FP mode, over
 * elem_scale(k, bits, mode); tab holds the 8 E2M1 magnitudes (twice). */
KINL Vf K(fp_elem)(Vi v, int k, int bits, Vf tab)
{
	Vi sign = iand(bits == 4 ? islli(v, 28 - 4 * k) : islli(v, 24 - 8 * k),
	               iset1((int)0x80000000u));
	Vf mag;
	if (bits == 4)
		mag = vperm(tab, isrli(v, 4 * k));
	else
		mag = vcvtph(iand(k ? isrli(v, 8 * k - 7) : islli(v, 7), iset1(0x3f80)));
	return vcast(ixor(vcasti(mag), sign));
}

KINL Vf K(code)(Vi v, Vi hi, int k, int bits, int mode, Vf tab)
{
	return mode == LM_AFFINE ? K(elem)(v, hi, k, bits) : K(fp_elem)(v, k, bits, tab);
}

/* L scale bytes of an FP mode as floats: E8M0 as a float's exponent (0 is
 * 2^-127, the subnormal 0x400000), E4M3 through a half as above. */
KINL Vf K(load_fps)(const uint8_t *p, int mode)
{
	Vi v = LOAD8(p);
	if (mode == LM_NVFP4) {
		Vf h = vmul(vcvtph(iand(islli(v, 7), iset1(0x3f80))), vset1(256));
		return vcast(ixor(vcasti(h), islli(iand(v, iset1(0x80)), 24)));
	}
	Vi zero = isub(iset1(1), iminu(v, iset1(1)));
	return vcast(ixor(islli(v, 23), islli(zero, 22)));
}

/* count <= L scales or biases from p + i, as floats; the rest 0. */
KINL Vf K(load_sb)(const void *p, int dtype, size_t i, long count)
{
	if (count == L) {
		if (dtype == LM_F32)
			return vload((const float *)p + i);
		Vi h = LOAD16((const uint16_t *)p + i);
		return dtype == LM_BF16 ? vcast(islli(h, 16)) : vcvtph(h);
	}
	float t[L] = {0};
	for (long k = 0; k < count; k++)
		t[k] = lm_load_f32(p, dtype, i + k);
	return vload(t);
}

/* count <= L scales of W from index i, as floats; the rest 0. */
KINL Vf K(load_s)(const lm_mat *W, size_t i, long count, int mode)
{
	if (mode == LM_AFFINE)
		return K(load_sb)(W->scales, W->sdtype, i, count);
	if (count == L)
		return K(load_fps)((const uint8_t *)W->scales + i, mode);
	float t[L] = {0};
	for (long k = 0; k < count; k++)
		t[k] = scale_at(W, i + k, mode);
	return vload(t);
}

/* The E2M1 magnitudes, twice: a table for vperm of 8 or 16 lanes. */
KINL Vf K(e2m1_tab)(void)
{
	static const float t[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
	return vload(t);
}

/* Lane j's group within a chunk, relative to the chunk's first group. */
KINL Vi K(lane_groups)(long P, long E, long G)
{
	int t[L];
	for (int j = 0; j < L; j++)
		t[j] = E > G ? (int)(j * P / G) : 0;
	return iloadu(t);
}

/* sum_g b[g] * sx[g] over row r's ng groups. */
KINL float K(bias_dot)(const lm_mat *W, long r, const float *sx, long ng)
{
	size_t g0 = (size_t)r * W->sld;
	Vf a = vzero();
	long g = 0;
	for (; g + L <= ng; g += L)
		a = vfma(K(load_sb)(W->biases, W->sdtype, g0 + g, L), vload(sx + g), a);
	float s = vhsum(a);
	for (; g < ng; g++)
		s += lm_load_f32(W->biases, W->sdtype, g0 + g) * sx[g];
	return s;
}

/* What a decoding pass keeps fixed over a matrix, derived once per call:
 * divisions (an idiv each) per row block cost as much as a row's span
 * loop in short rows. */
typedef struct {
	long cols, G, ng, full, span, gps, ldf;
	int lane_group[L];    /* K(lane_groups) */
} K(Shape);

KINL K(Shape) K(shape)(const lm_mat *W, int bits)
{
	long cols = W->cols, G = W->group, E = L * lane_elems(bits), ng = cols / G;
	long span = E > G ? E : G;
	K(Shape) s = {cols, G, ng, cols / E * E, span, span / G, (ng + L - 1) / L * L + L, {0}};
	for (int j = 0; j < L; j++)
		s.lane_group[j] = E > G ? (int)(j * lane_elems(bits) / G) : 0;
	return s;
}

/* Each of m rows' scales from row r as floats, ldf apart, so that the
 * kernel's span loop reads one float (or L) where it would otherwise
 * widen a 16-bit or 8-bit scale and move it to every lane. */
KINL void K(scales)(float *sf, const K(Shape) *sh, const lm_mat *W, long r, long rs, int m,
                    int mode)
{
	long ng = sh->ng;
	for (int i = 0; i < m; i++)
		for (long g = 0; g < ng; g += L)
			vstore(sf + i * sh->ldf + g,
			       K(load_s)(W, (size_t)(r + i * rs) * W->sld + g, ng - g < L ? ng - g : L, mode));
}

/* Asks for the scales and biases of m rows from row r, rs apart: a row
 * reads them whole at its start (K(scales)) and end (K(bias_dot)), and
 * asked for one row ahead they come in while the row before streams
 * (one line of each a row at 2048 inputs in groups of 64, four at 6656). */
KINL void K(ask_sb)(const lm_mat *W, long r, long rs, int m, int mode)
{
	size_t es = mode == LM_AFFINE ? lm_dtype_size(W->sdtype) : 1;
	size_t n = (size_t)(W->cols / W->group) * es;
	for (int i = 0; i < m; i++) {
		size_t o = (size_t)(r + i * rs) * W->sld * es;
		for (size_t b = o & ~(size_t)63; b < o + n; b += 64) {
			_mm_prefetch((const char *)W->scales + b, _MM_HINT_T0);
			if (mode == LM_AFFINE)
				_mm_prefetch((const char *)W->biases + b, _MM_HINT_T0);
		}
	}
}

/* The address AHEAD bytes on in a row's stream, o bytes into a row of
 * `row` bytes.  A block's R rows are R streams, each going on in the
 * same row of the next block, `next` bytes on (a prefetch never faults):
 * asking past a short row's end for the next row instead left the first
 * AHEAD bytes of most rows to the hardware prefetcher, which short runs
 * do not train (Zen 3, 8-bit rows of 2 KB: 1.3 to 1.6 times slower per
 * byte than rows of 6.5 KB). */
KINL const char *K(ahead)(const uint32_t *w, long o, long row, long next)
{
	const char *p = (const char *)w + o + AHEAD;
	return o + AHEAD < row ? p : p - row + next;
}

/* Decoding: y[t, r..r+R) for t < T, from xp (K(permute), scaled), sf
 * (K(scales) of the R rows) and sx ([T, ng] group sums of x, affine
 * only).  Per span (one group, or one chunk when a chunk holds several)
 * each of the R * T dot products gathers q . x in d, and then takes the
 * span's scale (lane by lane when the span holds several groups) into
 * acc.  R * T <= 4 keeps d, acc and the R chunks in the 16 registers of
 * AVX2 (two sums per dot for R < 4: one spilled them for R = 4).  With
 * R = 4 one sum a dot is enough on AVX-512 too: a span's d starts from 0,
 * so the out-of-order core overlaps the spans' chains, and the vaddps of
 * two sums cost more (Intel Xeon family 6 model 167, one thread, from L2:
 * 8-bit g64 26.5 to 28.4 weights per ns, 4-bit g64 28.6 to 30.4). Each
 * row's stream is asked for AHEAD bytes ahead once a span. */
KINL void K(dot)(const lm_mat *W, const K(Shape) *sh, const float *xp, const float *sf,
                 const float *sx, float *y, long r, long rs, int R, int T, int bits, int mode,
                 int Gc)
{
	long cols = sh->cols, ng = sh->ng, P = lane_elems(bits), E = L * P;
	long full = sh->full, wpc = E * bits / 32, ldf = sh->ldf;
	long G = Gc ? Gc : sh->G, span = Gc ? (E > Gc ? E : Gc) : sh->span;
	long gps = Gc ? span / Gc : sh->gps;
	int A = R == 4 ? 1 : 2;    /* sums per dot: 2 halves the FMA chain */
	const uint32_t *w[4];
	Vf acc[4][4];
	Vf tab = K(e2m1_tab)();
	Vi off = Gc ? K(lane_groups)(P, E, Gc) : iloadu(sh->lane_group);
	long row = W->cols * bits / 8, next = W->ld * 4;
	#pragma GCC unroll 4
	for (int i = 0; i < R; i++) {
		w[i] = (const uint32_t *)W->data + (size_t)(r + i * rs) * W->ld;
		#pragma GCC unroll 4
		for (int t = 0; t < T; t++)
			acc[i][t] = vzero();
	}
	for (long c = 0, g = 0; c < full; c += span, g += gps) {
		Vf d[4][4][2];
		#pragma GCC unroll 4
		for (int i = 0; i < R; i++) {
			_mm_prefetch(K(ahead)(w[i], c / E * wpc * 4, row, next), _MM_HINT_T0);
			#pragma GCC unroll 4
			for (int t = 0; t < T; t++)
				d[i][t][0] = d[i][t][1] = vzero();
		}
		for (long e = c; e < c + span; e += E) {
			Vi v[4], hi[4];
			#pragma GCC unroll 4
			for (int i = 0; i < R; i++) {
				v[i] = LANES(w[i] + e / E * wpc, bits);
				hi[i] = isrli(v[i], P / 2 * bits);
			}
			#pragma GCC unroll 16
			for (int k = 0; k < P; k++)
				#pragma GCC unroll 4
				for (int t = 0; t < T; t++) {
					Vf xk = vload(xp + t * cols + e + k * L);
					#pragma GCC unroll 4
					for (int i = 0; i < R; i++)
						d[i][t][k % A] = vfma(K(code)(v[i], hi[i], k, bits, mode, tab), xk,
						                      d[i][t][k % A]);
				}
		}
		#pragma GCC unroll 4
		for (int i = 0; i < R; i++) {
			Vf s = E > G ? vperm(vload(sf + i * ldf + g), off) : vset1(sf[i * ldf + g]);
			#pragma GCC unroll 4
			for (int t = 0; t < T; t++)
				acc[i][t] = vfma(s, A == 2 ? vadd(d[i][t][0], d[i][t][1]) : d[i][t][0], acc[i][t]);
		}
	}
	long step = G < 32 ? G : 32;
	#pragma GCC unroll 4
	for (int i = 0; i < R; i++)
		#pragma GCC unroll 4
		for (int t = 0; t < T; t++) {
			float s = vhsum(acc[i][t]);
			const uint32_t *wt = w[i] + full * bits / 32;
			for (long c = full; c < cols; c += 32, wt += bits) {
				float q[32];
				int n = cols - c < 32 ? (int)(cols - c) : 32;
				codes(q, wt, bits, mode, n);
				for (long h = 0; h < n; h += step) {
					float dot = 0;
					for (long k = h; k < h + step; k++)
						dot += q[k] * xp[t * cols + c + k];
					s += sf[i * ldf + (c + h) / G] * dot;
				}
			}
			if (mode == LM_AFFINE)
				s += K(bias_dot)(W, r + i * rs, sx + t * ng, ng);
			y[t * W->rows + r + i * rs] = s;
		}
}

/* Rows r0 .. r1 for nt tokens: for one token four rows at a time above 4
 * bits and two up to 4 (AVX2) or four at any width (AVX-512), for two
 * tokens two, one for more.  The R rows are far apart, the range cut in R
 * parts each read in order (as matmul_512.c's rows_k does), so that each
 * is one long stream for the hardware prefetcher, and the rows left over
 * go one at a time.  Measured on Zen 3 (CPU time, streaming from
 * memory): 8-bit rows read faster as four streams, 4-bit rows (twice the
 * work per byte) faster as two with two sums each, where four spilled
 * AVX2's registers.  On Zen 5 with AVX-512, from L2, four rows (with two
 * sums each then) took 4-bit rows from 34 to 41 weights per ns and 8-bit
 * ones from 35 to 37.  Gc is the group as a constant, or 0 for W's. */
KINL void K(rows)(const Job *j, const float *xp, const float *sx, float *y, long nt,
                  long r0, long r1, int bits, int mode, int Gc)
{
	const lm_mat *W = &j->W;
	K(Shape) sh = K(shape)(W, bits);
	int R = nt == 1 && (bits > 4 || L == 16) ? 4 : nt <= 2 ? 2 : 1;
	long q = (r1 - r0) / R;    /* the rows of each run */
	float *sf = lm_scratch(R * sh.ldf);    /* the rows' scales */
	for (long r = r0; r < r0 + q; r++) {
		if (r + 1 < r0 + q)     /* the runs' next rows, none past the last */
			K(ask_sb)(W, r + 1, q, R, mode);
		K(scales)(sf, &sh, W, r, q, R, mode);
		if (R == 4)
			K(dot)(W, &sh, xp, sf, sx, y, r, q, 4, 1, bits, mode, Gc);
		else if (R == 2 && nt == 1)
			K(dot)(W, &sh, xp, sf, sx, y, r, q, 2, 1, bits, mode, Gc);
		else if (R == 2)
			K(dot)(W, &sh, xp, sf, sx, y, r, q, 2, 2, bits, mode, Gc);
		else if (nt == 3)
			K(dot)(W, &sh, xp, sf, sx, y, r, 1, 1, 3, bits, mode, Gc);
		else
			K(dot)(W, &sh, xp, sf, sx, y, r, 1, 1, 4, bits, mode, Gc);
	}
	for (long r = r0 + R * q; r < r1; r++) {
		K(scales)(sf, &sh, W, r, 1, 1, mode);
		if (nt == 1)
			K(dot)(W, &sh, xp, sf, sx, y, r, 1, 1, 1, bits, mode, Gc);
		else
			K(dot)(W, &sh, xp, sf, sx, y, r, 1, 1, 2, bits, mode, Gc);
	}
}

#ifdef FIXED_CASES
/* Decoding the formats FIXED_CASES lists with the group size fixed too:
 * with span and group known, gcc unrolls the span loop and keeps the
 * scales' lanes constant (Zen 3, from L2: 7.4 to 8.4 weights a cycle
 * where the generic loop does 5 to 6).  A function for each, not inlined,
 * so that profiles and disassembly show each loop by its name. */
#define X(B, GS) \
	TARGET __attribute__((noinline)) static void K(fixed_##B##_##GS)( \
	        const Job *j, const float *xp, const float *sx, float *y, long nt, long r0, long r1) \
	{ \
		K(rows)(j, xp, sx, y, nt, r0, r1, B, LM_AFFINE, GS); \
	}
FIXED_CASES(X)
#undef X

/* Returns 0 for a format FIXED_CASES does not list. */
TARGET int K(lm_qfixed)(const Job *j, const float *xp, const float *sx, float *y,
                        long nt, long r0, long r1)
{
	const lm_mat *W = &j->W;
#define X(B, GS) \
	if (W->mode == LM_AFFINE && W->bits == B && W->group == GS) { \
		K(fixed_##B##_##GS)(j, xp, sx, y, nt, r0, r1); \
		return 1; \
	}
	FIXED_CASES(X)
#undef X
	return 0;
}
#else
/* x[n, cols] in the chunk order of `bits` (the columns past the last whole
 * chunk as they are), scaled for decoding or not for prefill. */
TARGET static void K(permute)(float *xp, const float *x, long n, long cols, int bits,
                              int mode, int scaled)
{
	long P = lane_elems(bits), E = L * P, full = cols / E * E;
	for (long t = 0; t < n; t++) {
		const float *xt = x + t * cols;
		float *o = xp + t * cols;
		for (long c = 0; c < full; c += E)
			for (long k = 0; k < P; k++) {
				float f = scaled ? elem_scale((int)k, bits, mode) : 1;
				for (long j = 0; j < L; j++)
					o[c + k * L + j] = xt[c + j * P + k] * f;
			}
		memcpy(o + full, xt + full, (cols - full) * sizeof(float));
	}
}

/* Decoding: FIXED's loops (a K(lm_qfixed), if the includer names one)
 * for the formats they take, the generic ones for the rest. */
TARGET static void K(few)(const Job *j, const float *xp, const float *sx, float *y,
                          long nt, long r0, long r1)
{
	const lm_mat *W = &j->W;
#ifdef FIXED
	if (FIXED(j, xp, sx, y, nt, r0, r1))
		return;
#endif
	switch (FORMAT_KEY(W->bits, W->mode)) {
#define X(bits, mode) case FORMAT_KEY(bits, mode): K(rows)(j, xp, sx, y, nt, r0, r1, bits, mode, 0); break;
	FORMAT_CASES(X)
#undef X
	default: lm_bug("quantized matrix with %d bits, mode %d", W->bits, W->mode);
	}
}

/* Prefill: columns [lo, hi) of rows [r0, r0 + nr) as float32, row j's
 * into dst + j * (hi - lo), in the chunk order of K(permute) (x is
 * permuted the same way, unscaled, so the product is unchanged).  lo and
 * hi are multiples of the span (hi may be the row's end): a chunk of E
 * inputs never straddles them, as E is at most 256 (L * 16 for 2 bits),
 * gemm.c's block of inputs. */
KINL void K(deq)(float *dst, const lm_mat *W, long r0, long nr, int bits, int mode, long lo,
                 long hi)
{
	long cols = W->cols, G = W->group, ng = cols / G, P = lane_elems(bits), E = L * P;
	long full = cols / E * E, span = E > G ? E : G, gps = span / G, wpc = E * bits / 32;
	long end = hi < full ? hi : full, glo = lo / G;
	Vi off = K(lane_groups)(P, E, G);
	Vf tab = K(e2m1_tab)();
	for (long r = r0; r < r0 + nr; r++, dst += hi - lo) {
		const uint32_t *w = (const uint32_t *)W->data + (size_t)r * W->ld;
		size_t g0 = (size_t)r * W->sld;
		Vf s8 = vzero(), b8 = vzero();
		for (long c = lo, g = glo; c < end; c += span, g += gps) {
			if (g % L == 0 || c == lo) {
				long g8 = g - g % L;     /* the vector of L groups g is in */
				long n8 = ng - g8 < L ? ng - g8 : L;
				s8 = K(load_s)(W, g0 + g8, n8, mode);
				if (mode == LM_AFFINE)
					b8 = K(load_sb)(W->biases, W->sdtype, g0 + g8, n8);
			}
			Vi idx = iadd(iset1((int)(g % L)), off);
			Vf s = vperm(s8, idx), b = vperm(b8, idx);
			for (long e = c; e < c + span; e += E) {
				Vi v = LANES(w + e / E * wpc, bits), hi4 = isrli(v, P / 2 * bits);
				float *o = dst + (e - lo);
				#pragma GCC unroll 16
				for (int k = 0; k < P; k++) {
					Vf q = vmul(K(code)(v, hi4, k, bits, mode, tab),
					            vset1(elem_scale(k, bits, mode)));
					if (mode == LM_AFFINE)
						vstore(o + k * L, vadd(vmul(s, q), b));   /* two roundings, as MLX */
					else
						vstore(o + k * L, vmul(q, s));
				}
			}
		}
		if (hi > end)
			row_c(dst + (end - lo), W, r, bits, mode, end, hi);
	}
}

TARGET static void K(seg)(float *dst, const lm_mat *W, long r0, long nr, long c0, long kc)
{
	switch (FORMAT_KEY(W->bits, W->mode)) {
#define X(bits, mode) \
	case FORMAT_KEY(bits, mode): K(deq)(dst, W, r0, nr, bits, mode, c0, c0 + kc); break;
	FORMAT_CASES(X)
#undef X
	default: lm_bug("quantized matrix with %d bits, mode %d", W->bits, W->mode);
	}
}

TARGET static void K(row)(float *dst, const lm_mat *W, long r)
{
	K(seg)(dst, W, r, 1, 0, W->cols);
}

#endif

#undef KINL
