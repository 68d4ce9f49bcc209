/* bench_matmul: how close lm_matmul comes to this machine's bounds.
 *
 *   bench_matmul [THREADS [4k|2m]]     (--help: what it prints)
 *
 * Measures the machine first (runtime/bound.c): memory read bandwidth
 * with the kernels' instruction set and thread count, in 2 MB pages and
 * in 4 KB ones, and with one thread, the cores' float32 FMA peak and
 * lm_matmul's F32 product rate (lmcc's or sgemm's, whichever it chose).  The
 * weights sit in 2 MB pages (as lmcc asks for its weights; 4k: in pages
 * of the usual size, as a checkpoint cached in them is read), and the
 * bound is the read rate in the same pages.  Then lm_matmul on a weight of a real
 * model's size, in F32, F16 and BF16: with one token (decode:
 * reported as GB/s of weights read, and as a ratio to the bandwidth) and
 * with 128 tokens (prefill: GFLOP/s, and a ratio to the FMA peak).  The
 * read rate is measured again at the end: on a shared machine one
 * measurement can fall in a slow minute (see the last line). */
#include "gemm.h"
#include "rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int huge = 1;     /* the weights' pages: 2 MB, or 4 KB */

static void product(int dtype, int tr, long n, long rows, long cols, double bw, double peak)
{
	size_t es = lm_dtype_size(dtype), bytes = (size_t)rows * cols * es;
	/* several matrices, so that a pass does not run from the cache */
	int copies = (int)(1.5e9 / bytes) + 1;
	unsigned char *w = lm_pages(bytes * copies, huge);
	memset(w, 0x3c, bytes * copies);
	float *x = lm_alloc_aligned(n * cols * 4), *y = lm_alloc_aligned(n * rows * 4);
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double t = lm_now();
		for (int c = 0; c < copies; c++) {
			lm_mat W = {.data = w + c * bytes, .dtype = dtype, .tr = tr, .rows = rows, .cols = cols,
			            .ld = tr ? rows : cols};
			lm_matmul(y, x, n, W);
		}
		double dt = (lm_now() - t) / copies;
		if (dt < best)
			best = dt;
	}
	const char *name = dtype == LM_F32 ? "f32 " : dtype == LM_F16 ? "f16 " : "bf16";
	if (n == 1)
		printf("decode  %s %5ldx%-5ld%s %6.1f GB/s   %.2f of the bandwidth bound\n",
		       name, rows, cols, tr ? " [in,out]" : "         ", bytes / best / 1e9,
		       bytes / best / 1e9 / bw);
	else
		printf("prefill %s %5ldx%-5ld           %6.1f GFLOP/s %.2f of the f32 FMA peak (n = %ld)\n",
		       name, rows, cols, 2.0 * n * rows * cols / best / 1e9,
		       2.0 * n * rows * cols / best / 1e9 / peak, n);
	munmap(w, bytes * copies);
	free(x);
	free(y);
}

static void qproduct(int bits, int group, long n, long rows, long cols, double bw,
                     double peak)
{
	size_t wbytes = (size_t)rows * cols * bits / 8, sbytes = (size_t)rows * cols / group * 2;
	size_t bytes = wbytes + 2 * sbytes;
	int copies = (int)(1.5e9 / bytes) + 1;
	unsigned char *w = lm_pages(wbytes * copies, huge);
	uint16_t *sb = lm_pages(2 * sbytes * copies, huge);
	for (size_t i = 0; i < wbytes * copies; i++)
		w[i] = (unsigned char)(i * 2654435761u >> 13);
	for (size_t i = 0; i < sbytes * copies; i++)
		sb[i] = lm_f32_to_bf16(i & 1 ? -0.01f : 0.002f);
	float *x = lm_alloc_aligned(n * cols * 4), *y = lm_alloc_aligned(n * rows * 4);
	for (long i = 0; i < n * cols; i++)
		x[i] = (float)(i % 7) - 3;
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double t = lm_now();
		for (int c = 0; c < copies; c++) {
			const unsigned char *s = (const unsigned char *)sb + 2 * sbytes * c;
			lm_mat W = {.data = w + wbytes * c, .dtype = LM_Q, .rows = rows, .cols = cols,
			            .ld = cols * bits / 32, .bits = bits, .group = group,
			            .sdtype = LM_BF16, .scales = s, .biases = s + sbytes,
			            .sld = cols / group};
			lm_matmul(y, x, n, W);
		}
		double dt = (lm_now() - t) / copies;
		if (dt < best)
			best = dt;
	}
	if (n == 1)
		printf("decode  q%d g%-3d %5ldx%-5ld          %6.1f GB/s   %.2f of the bandwidth bound (%s)\n",
		       bits, group, rows, cols, bytes / best / 1e9, bytes / best / 1e9 / bw,
		       lm_isa_name(lm_isa()));
	else
		printf("prefill q%d g%-3d %5ldx%-5ld          %6.1f GFLOP/s %.2f of the f32 FMA peak (n = %ld, %s)\n",
		       bits, group, rows, cols, 2.0 * n * rows * cols / best / 1e9,
		       2.0 * n * rows * cols / best / 1e9 / peak, n, lm_isa_name(lm_isa()));
	munmap(w, wbytes * copies);
	munmap(sb, 2 * sbytes * copies);
	free(x);
	free(y);
}

static void quantized(double bw, double peak)
{
	int fmt[3][2] = {{8, 64}, {4, 64}, {4, 32}};
	for (int i = 0; i < 3; i++) {
		qproduct(fmt[i][0], fmt[i][1], 1, 6656, 2048, bw, peak);
		qproduct(fmt[i][0], fmt[i][1], 1, 2048, 6656, bw, peak);
		qproduct(fmt[i][0], fmt[i][1], 128, 6656, 2048, bw, peak);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_matmul [THREADS [4k|2m]]\n"
	           "  How close lm_matmul comes to this machine's bounds, with THREADS threads\n"
	           "  (default: one per CPU) and the kernels LMCC_ISA chooses (avx512, avx2,\n"
	           "  portable; default: the best this CPU has), on weights in 2 MB pages\n"
	           "  (default) or 4 KB ones.  The first line gives the read bandwidth with\n"
	           "  THREADS threads in the weights' pages (the bound), in the other size\n"
	           "  and with one thread, measured with the kernels' instruction set, and\n"
	           "  the cores' float32 FMA peak and lm_matmul's F32 product rate; each\n"
	           "  product after it is a ratio to the bound or to the peak.  The last\n"
	           "  line gives the read bandwidth measured again after the products.\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc > 3 || (argc > 1 && (atoi(argv[1]) < 1 || atoi(argv[1]) > 64))
	    || (argc == 3 && strcmp(argv[2], "4k") && strcmp(argv[2], "2m"))) {
		usage(stderr);
		return 2;
	}
	huge = argc < 3 || !strcmp(argv[2], "2m");
	if (argc > 1)
		lm_set_threads(atoi(argv[1]));
	setvbuf(stdout, NULL, _IOLBF, 0);    /* make bench reads the first line alone */
	char cpu[200];
	lm_cpu_name(cpu, sizeof cpu);
	int threads = lm_pool_size();
	double bw = lm_read_rate_pages(huge), bw1 = bw, other = lm_read_rate_pages(!huge);
	if (threads > 1) {
		lm_set_threads(1);
		bw1 = lm_read_rate_pages(huge);
		lm_set_threads(threads);
	}
	double peak = lm_f32_peak(), f32 = lm_f32_rate();
	printf("machine: memory read %.1f GB/s with %d thread%s in %s pages (%.1f with 1; %.1f in "
	       "%s pages), f32 FMA peak %.1f GFLOP/s, F32 product %.1f (%s); %s, %s kernels\n", bw,
	       threads, threads > 1 ? "s" : "", huge ? "2 MB" : "4 KB", bw1, other,
	       huge ? "4 KB" : "2 MB", peak, f32, lm_gemm_f32_own() ? "lmcc" : "sgemm", cpu,
	       lm_isa_name(lm_isa()));
	int dt[3] = {LM_F32, LM_F16, LM_BF16};
	for (int i = 0; i < 3; i++) {
		product(dt[i], 0, 1, 6656, 2048, bw, peak);
		product(dt[i], 0, 1, 2048, 6656, bw, peak);
		product(dt[i], 1, 1, 16384, 5120, bw, peak);   /* Llama 4's fused experts */
		product(dt[i], 0, 128, 6656, 2048, bw, peak);
	}
	quantized(bw, peak);
	double again = lm_read_rate_pages(huge);
	printf("machine: memory read %.1f GB/s measured again after the products (%+.0f%% of the "
	       "bound above)\n", again, 100 * (again / bw - 1));
	return 0;
}
