/* rt.h: what the runtime's own files share and the generated code does not
 * see (that is lmcc.h).  Error reporting, allocation, whole-file reading.
 *
 * Error policy (DESIGN.md): bad input of any kind ends with one line on
 * stderr that names the file and the field, and exit status 2.  Internal
 * errors (out of memory, a bug) exit 1.  Nothing here returns on failure. */
#ifndef LM_RT_H
#define LM_RT_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lmcc.h"

/* One line "lmcc: WHERE: MESSAGE" on stderr, exit 2.  WHERE names the file
 * (and, in MESSAGE, the field); it may be NULL. */
void lm_fail(const char *where, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
/* Internal error: "lmcc: internal error: ...", exit 1. */
void lm_bug(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Catching an error instead of exiting: the C API returns it, the server
 * answers it, and code that made something the process must not keep
 * (an open checkpoint, a request's parse) frees it before the error goes
 * on.  One form everywhere:
 *
 *	lm_err e;
 *	if (lm_catch(&e)) {
 *		free what was made;            e.code, e.msg say what failed
 *		lm_err_raise(&e);              (or return or answer it)
 *	}
 *	... code that may lm_fail or lm_bug ...
 *	lm_err_pop(&e);
 *
 * lm_catch(&e) pushes e and is 0; an lm_fail or lm_bug of this thread
 * before lm_err_pop(&e) stores its message (without "lmcc: ") and exit
 * status in e, pops e and comes back to it, non-zero.  As with any setjmp,
 * a local the handler reads must not change after lm_catch, or must be
 * volatile.  The failed code's own allocations are not freed: the
 * handler frees what it knows of. */
typedef struct lm_err {
	jmp_buf jb;
	int code;                    /* 2: bad input, 1: internal */
	char msg[512];
	struct lm_err *prev;
} lm_err;
#define lm_catch(e) setjmp(lm_err_push(e)->jb)
lm_err *lm_err_push(lm_err *e);
void lm_err_pop(lm_err *e);
/* Fails again with the error E caught: to the next lm_err, or exits. */
void lm_err_raise(const lm_err *e) __attribute__((noreturn));

void *lm_alloc_aligned(size_t n);    /* zeroed, 64-byte aligned; free() it */
/* The whole pages inside [p, p + n): the first at *a, and their bytes (0:
 * none), for giving them back with madvise while neighbours keep theirs. */
size_t lm_inner_pages(const void *p, size_t n, char **a);
/* *buf with room for n floats: a kernel's scratch, kept from call to call
 * and replaced (not copied) when a call needs more than *cap. */
float *lm_grow(float **buf, long *cap, long n);
/* softplus(v) = log(1 + e^v), without overflow for large v. */
double lm_softplus(double v);
void *lm_realloc(void *p, size_t n);
char *lm_strdup(const char *s);
/* "%s/%s" in fresh memory. */
char *lm_path(const char *dir, const char *name);

/* Whole file into memory with a trailing NUL; *len gets its size.  Returns
 * NULL (errno set) when it cannot be opened; a read error is lm_fail. */
char *lm_read_file(const char *path, size_t *len);
/* The same for what a model directory holds as text (configs, tokenizer
 * files, templates, indexes): longer than LM_MAX_TEXT is exit 2, before
 * a byte is read, since its JSON tree would take ten times as much. */
enum { LM_MAX_TEXT = 128 << 20 };
char *lm_read_text(const char *path, size_t *len);

double lm_now(void);                 /* monotonic seconds */

/* ---- checkpoints (st.c) ---- */
/* Open DIR/model.safetensors, or the shards DIR/model.safetensors.index.json
 * names, or else every DIR/model*.safetensors (mlx-lm's shards).  Every header, offset, dtype and shape is checked here; a bad file
 * is lm_fail naming it. */
lm_ckpt *lm_ck_open(const char *dir);
/* The same, for one pipeline stage: with an index, a shard is opened only
 * when a tensor of this rank's parts is bound from it (lm_stage_mine);
 * another rank's tensors are taken on the index's word, unread. */
lm_ckpt *lm_ck_open_part(const char *dir);
/* The shards the index names (0 if the checkpoint was not opened a part
 * at a time) and shard i's path, with in *fp its lm_ck_fingerprint of
 * one file if this rank opened it, else 0. */
int lm_ck_shards(const lm_ckpt *ck);
const char *lm_ck_shard(const lm_ckpt *ck, int i, uint64_t *fp);
/* The same, or NULL when dir has no checkpoint files at all. */
lm_ckpt *lm_ck_try(const char *dir);
/* One safetensors file, checked the same way (an adapter's). */
lm_ckpt *lm_ck_open_file(const char *path);
void lm_ck_close(lm_ckpt *ck);
/* Bytes of the checkpoint's tensors stored [in, out] that binding may
 * transpose into memory of its own (st.c's flip; by default half the
 * memory available when the first is bound); 0: none. */
void lm_ck_flip_room(lm_ckpt *ck, size_t bytes);
/* 0 (--no-mmap): the files opened next are read into memory of the
 * process's own in 2 MB pages, not mapped (st.c says when it falls back). */
void lm_set_mmap(int on);
/* size bytes at a 2 MB boundary (where the kernel can give 2 MB pages), of
 * the file fd read-only or, fd < 0, anonymous and writable; MAP_FAILED if
 * not; munmap(p, size) frees it. */
unsigned char *lm_map_aligned(size_t size, int fd);
/* [n, A, B] into [n, B, A], elements of es = 2 or 4 bytes (transpose.c). */
void lm_transpose(void *dst, const void *src, long n, long A, long B, int es);
/* The fraction of ck's resident weights in 2 MB pages (-1: unknown), and
 * a phrase for the stats line saying how they were loaded. */
double lm_ck_huge(const lm_ckpt *ck);
void lm_ck_pages(const lm_ckpt *ck, char *s, size_t n);
long lm_ck_count(lm_ckpt *ck);
/* A number no other checkpoint opened by this process has: unlike its
 * address, which a later open may reuse once it is closed. */
long lm_ck_serial(const lm_ckpt *ck);
/* A tensor's bytes as stored, its dtype as the header names it ("F32",
 * "U32", ...) and its size (for tools that copy checkpoints). */
const void *lm_ck_raw(lm_ckpt *ck, const char *name, const char **dtype, size_t *bytes);
/* The file a checkpoint's tensor names come from. */
const char *lm_ck_where(lm_ckpt *ck);
/* "[a, b, c]" into buf. */
void lm_shape_str(char *buf, size_t n, int ndim, const long *shape);
/* Packed quantized words (U32) and the byte scales of MLX's FP modes
 * (U8): a tensor's storage, never a product's. */
enum { LM_U32 = 8, LM_U8 = 9 };
/* For tools (init, plan): the dtype and size of a tensor, or -1 if absent. */
int lm_ck_info(lm_ckpt *ck, const char *name, int *ndim, long *shape);
/* The names of the tensors, in no order: start with *i = 0; NULL ends. */
const char *lm_ck_next(lm_ckpt *ck, long *i);
/* Tensors no binding has read and no glob of drops matches: the count,
 * the first by name and its file. */
long lm_ck_unused(lm_ckpt *ck, const char *const *drops, const char **first,
                  const char **file);
/* The file holding tensor `name` (or the checkpoint's own, if absent). */
const char *lm_ck_file(lm_ckpt *ck, const char *name);
/* Whether MLX's quantization `mode` has this format: 0 yes, 1 not these
 * bits, 2 not this group size.  Affine: bits 2, 3, 4, 5, 6, 8 and groups
 * 32, 64, 128; mxfp4 4 bits, groups of 32; nvfp4 4 and 16; mxfp8 8 and 32. */
int lm_q_bad(int bits, int group, int mode);
/* MLX's name of a mode ("affine", "mxfp4", ...), and back (-1: none). */
const char *lm_qmode_name(int mode);
int lm_qmode_parse(const char *name);
/* The checks lm_ck_qmat makes, for the compiler: exit 2 naming the file,
 * the tensor and what is wrong, and `why` (the config's field) if set. */
void lm_ck_qcheck(lm_ckpt *ck, const char *path, int ndim, const long *shape,
                  int bits, int group, int mode, const char *why);
/* What identifies the weights: a hash of every file's header and of
 * samples of its data (for prompt caches, runtime/pcache.c); of the index
 * alone when opened a part at a time (lm_ck_shard tells the rest). */
uint64_t lm_ck_fingerprint(const lm_ckpt *ck);
/* FNV-1a of n bytes, continuing from h (0xcbf29ce484222325 to start). */
uint64_t lm_hash(uint64_t h, const void *p, size_t n);

/* ---- dtypes (dtype.c) ---- */
size_t lm_dtype_size(int dtype);
float lm_bf16_to_f32(uint16_t h);
uint16_t lm_f32_to_bf16(float f);     /* round to nearest even */
float lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);     /* round to nearest even */
/* Element i of a weight stored in dtype, as float. */
float lm_load_f32(const void *p, int dtype, size_t i);

/* ---- adapters (lora.c) ---- */
/* DIR/adapter_config.json into *a (keys malloc'd), then DIR/adapters.safetensors
 * opened.  With want, every field must equal want's (a built model's
 * constants), else lm_fail naming the field. */
lm_ckpt *lm_adapter_open(const char *dir, lm_adapter *a, const lm_adapter *want);
/* After binding: every tensor of the adapter was bound, else lm_fail. */
void lm_adapter_done(lm_ckpt *ad);
/* Frees what binding made of adapter ad (lm_lora_of), before it closes. */
void lm_lora_forget(const lm_ckpt *ad);

/* ---- is this checkpoint the model's? (check.c) ---- */
/* DIR/config.json agrees with every field m was built from, else lm_fail
 * naming the first that differs. */
void lm_check_config(const lm_model *m, const char *dir);
/* After m->create(ck): every tensor of ck is bound or dropped. */
void lm_check_tensors(const lm_model *m, lm_ckpt *ck);

/* A model bound to its checkpoint (run.c): the model, the checkpoint, the
 * adapter's (or NULL) and the adapter's structure (keys malloc'd). */
typedef struct {
	const lm_model *m;
	lm_ckpt *ck, *ad;
	lm_adapter got;
} lm_loaded;
/* The checkpoint WEIGHTS and the adapter m was built for (ADAPTER, or the
 * one baked in), checked against the model and bound by m->create for
 * ctx tokens, every tensor of both used.  When it fails, nothing it
 * opened stays open. */
void lm_load(lm_loaded *w, const lm_model *m, const char *weights, const char *adapter,
             long ctx);
/* Closes what lm_load opened (the model's weights, caches and buffers go
 * with it). */
void lm_unload(lm_loaded *w);

/* The instruction set of every kernel (isa.c): the best the CPU has, or
 * the one LMCC_ISA=avx512|avx2|portable names (one the CPU lacks, or an
 * unknown name, is lm_fail).  Chosen once, at start-up. */
enum { LM_ISA_PORTABLE = 0, LM_ISA_AVX2 = 1, LM_ISA_AVX512 = 2 };
int lm_isa(void);
const char *lm_isa_name(int isa);     /* "portable", "avx2", "avx512" */
/* --fast (gemm_q8.c): products may round activations (int8, bf16) where
 * that is faster; never the default. */
extern int lm_fast;
/* What --fast changes on this CPU, for the stats line (gemm_q8.c). */
const char *lm_fast_note(void);
/* Whether a product has run on AMX's exact BF16 kernel in this process
 * (gemm_bf16.c): the stats line names it beside the path. */
extern int lm_gemm_bf16x3_ran;

/* DESIGN.md's bound on logits against a reference (golden.c): the worst
 * row's error relative to its largest |logit|, and the first row whose
 * argmax differs beyond the bound (-1: none).  Returns 1 when within. */
#define LM_GOLDEN_BOUND 1e-4
typedef struct {
	double worst;
	long row, bad_argmax;
} lm_cmp;
int lm_logits_cmp(const float *got, const float *ref, long N, long V, lm_cmp *c);

/* ---- pipeline stages (stage.c) over a transport (mpi.c, or mpi_none.c) ---- */
/* Split n parts (the embedding, the layers, the head) into `ranks`
 * contiguous stages, none empty, a joined part with the one before, so
 * that the most bytes a stage reads per token is as small as it can be:
 * stage r is parts first[r] .. first[r + 1] - 1 (first[ranks] = n).
 * Returns 0 when there are fewer places to cut than ranks - 1. */
int lm_split(const lm_part *parts, int n, int ranks, int *first);
/* "123 B", "45.6 KiB", "78.9 MiB", "1.2 GiB" (three figures at least) into s. */
const char *lm_bytes_str(char *s, size_t n, long b);
/* The split as `lmcc plan --ranks` and a rank 0 show it, lines prefixed. */
void lm_split_print(FILE *f, const char *pre, const lm_part *parts, int layers, int ranks,
                    const int *first, long dim, long vocab);
/* The run loop's side (run.c): start (with several ranks, agree on the
 * program; returns the number of ranks), this rank, the fingerprints of
 * the checkpoint every rank opened, the model rank 0 drives (forward and
 * reset reach every rank), the other ranks' loop, the end. */
int lm_stage_start(const lm_model *m);
/* In create(): whether the part being bound is this rank's (lm_stage_bind). */
int lm_stage_mine(void);
int lm_stage_rank(void);
void lm_stage_setup(const lm_model *m, long *ctx);
/* The checkpoint as this rank reads it: a part at a time with several. */
lm_ckpt *lm_stage_open(const char *dir);
void lm_stage_agree(const lm_model *m, const char *dir, lm_ckpt *ck, lm_ckpt *ad);
const lm_model *lm_stage_driver(const lm_model *m);
int lm_stage_worker(const lm_model *m, const char *weights, const char *adapter);
void lm_stage_end(const lm_model *m);

/* The transport between ranks: Open MPI (mpi.c) in a build with MPI, one
 * process alone (mpi_none.c) otherwise.  Every call either completes or
 * ends every rank with a message (a rank that died, a network error). */
int lm_net_init(int *rank);            /* the number of ranks */
void lm_net_send(int to, int tag, const void *p, size_t n);
/* A copy of p goes out while the caller goes on (two at most in flight). */
void lm_net_post(int to, int tag, const void *p, size_t n);
void lm_net_recv(int from, int tag, void *p, size_t n);
void lm_net_gather(const void *mine, void *all, size_t n);   /* to every rank */
void lm_net_end(void);

/* ---- the gated delta rule in chunks (kda_chunk.c) ---- */
/* lm_gated_delta's two forms, which it chooses between by the number of
 * tokens: the recurrence token by token (delta.c), and the same sums in
 * chunks of `chunk` tokens (1 to 256), each as matrix products, equal to
 * it up to the order of the sums. */
void lm_gated_delta_tokens(float *out, const float *q, const float *k, const float *v,
                           const float *g, const float *beta, long n, long heads, long dk,
                           long dv, float *state);
void lm_gated_delta_chunked(float *out, const float *q, const float *k, const float *v,
                            const float *g, const float *beta, long n, long heads, long dk,
                            long dv, long chunk, float *state);

/* ---- quantized products (qmat.c), W.dtype == LM_Q ---- */
/* lm_matmul for W.dtype == LM_Q.  W.cols is a multiple of W.group. */
void lm_qmatmul(float *y, const float *x, long n, lm_mat W);
/* Row r of W dequantized into dst[W->cols], exactly as MLX's dequantize
 * computes it: (s * q) + b, each step rounded to float32. */
void lm_qrow(float *dst, const lm_mat *W, long r);

/* ---- MLX's affine group quantization of one row (affine.c) ---- */
/* q gets cols * bits / 32 words; scales and biases cols / group floats,
 * in float32 before the checkpoint's dtype rounds them.  group divides
 * cols and bits * group is a multiple of 32. */
void lm_affine_quantize(const float *w, long cols, int bits, int group,
                        uint32_t *q, float *scales, float *biases);
/* The integer of input c of a packed row. */
unsigned lm_affine_q(const uint32_t *row, long c, int bits);
/* w[c] = scales[g] * q[c] + biases[g], g = c / group, in float32. */
void lm_affine_dequantize(const uint32_t *q, const float *scales,
                          const float *biases, long cols, int bits, int group,
                          float *w);

/* ---- MLX's FP quantization modes (mxfp.c) ---- */
/* The values of the codes, as MLX's CPU kernels read them (lmcc.h). */
float lm_e2m1(unsigned code);     /* 4-bit code: +-{0, .5, 1, 1.5, 2, 3, 4, 6} */
float lm_e4m3(unsigned code);     /* byte: no inf or NaN, 0x7f is 480 */
float lm_e8m0(unsigned code);     /* byte: 2^(code - 127); 0 is 2^-127, 255 inf */
/* f rounded to dtype (LM_F32, LM_F16 or LM_BF16), nearest even. */
float lm_round_to(float f, int dtype);
/* The scale byte's value in `mode` (E8M0, or E4M3 for nvfp4). */
float lm_fp_scale(unsigned code, int mode);
/* A row of cols weights quantized as MLX's quantize does in `mode` (not
 * affine) on a tensor of dtype (LM_F32, LM_F16 or LM_BF16: MLX computes
 * in the weights' own dtype, and so does this): q gets cols * bits / 32
 * words, scales cols / group bytes. */
void lm_fp_quantize(const float *w, long cols, int mode, int dtype, uint32_t *q,
                    uint8_t *scales);

/* The machine's bounds (bound.c), on the threads lm_set_threads chose
 * and with the kernels' instruction set: memory read bandwidth in GB/s (the
 * best read loop of bound.c over 1 GiB) and the float32 matrix rate in
 * GFLOP/s (an F32 product of 128 tokens through a 4096 x 4096 weight,
 * through lm_matmul: lmcc's or OpenBLAS's, as lm_gemm_f32_own chose), and
 * the cores' float32 peak (multiply-adds and nothing else on every thread),
 * which prefill figures are divided by. */
double lm_read_rate_pages(int huge);   /* huge: in 2 MB pages */
double lm_f32_rate(void);
double lm_f32_peak(void);
typedef void lm_prod_fn(float *y, const float *x, long n, const lm_mat *W);
double lm_best_rate(lm_prod_fn *prod, const lm_mat *W, long n);   /* GFLOP/s, best of 5 */
/* n zeroed bytes in 2 MB pages (huge) where the kernel gives them, or in
 * pages of the usual size; munmap(p, n) frees them. */
void *lm_pages(size_t n, int huge);
/* GOP/s of --fast's int8 product (gemm_q8.c) on a `bits`-bit (8 or 4)
 * group-64 weight, the same shape; 0 without it on this CPU. */
double lm_int8_rate(int bits);
/* GFLOP/s of --fast's BF16 product (gemm_bf16.c) on 128 tokens through a
 * 4096 x 4096 BF16 weight (lm_f32_rate's shape), and the peak of its
 * instructions: a loop of nothing but them on every thread; 0 without them. */
double lm_bf16_rate(void);
double lm_bf16_peak(void);
/* Whether --fast takes affine quantized weights through that BF16 product
 * (on AMX, or on vdpbf16ps where it outruns float32 FMAs) rather than the
 * int8 one. */
int lm_fast_quant_bf16(void);
/* What the CPU has beyond the chosen path (isa.c): "avx512_bf16", "amx"
 * (tiles granted by the OS), 0 unless the path is AVX-512; and what it is,
 * where a kernel's choice was measured per CPU: "amd_zen5" (AMD family 26
 * or later), "bf16_dot_fast" (AVX512_BF16 faster than float32 FMAs). */
int lm_cpu_has(const char *what);
/* "AMD EPYC ... (family 25 model 1)", from /proc/cpuinfo. */
void lm_cpu_name(char *out, size_t size);

/* `--bench SPEC` of a model's program (bench.c): load once, run the
 * tests SPEC names ("p=128,512;n=32;r=3;t=1,2;d=0"), one JSON line per
 * result on stdout.  long_ok: a context past the config's limit is allowed. */
/* --tokens with --parallel N: the input as N sequences decoded together,
 * each one's logits to a file (batch.c). */
void lm_batch_run(const lm_model *m, const int *tok, long n, int nseq, const char *out);
int lm_bench(const lm_model *m, const char *weights, const char *adapter, const char *spec,
             long long_ok);

/* C[m, n] (rows ldc apart) = alpha op(A) op(B) + beta C, row-major, as
 * cblas_sgemm computes it (ta, tb: op is the transpose), on the calling
 * thread: the products of two activations inside a kernel's share
 * (attention's scores, the chunked recurrences, adapters), with the
 * prefill product's micro-kernels (gemm.c). */
void lm_sgemm(int ta, int tb, long m, long n, long k, float alpha, const float *A, long lda,
              const float *B, long ldb, float beta, float *C, long ldc);

/* Threads for the kernels, the caller included (pool.c). */
void lm_set_threads(int n);
/* The threads lm_parallel uses now (one per CPU until set). */
int lm_pool_size(void);
/* Run fn(ctx, lo, hi) on one share of [0, total) per thread, shares cut
 * at multiples of align; returns when all are done (pool.c). */
void lm_parallel(long total, long align, void (*fn)(void *ctx, long lo, long hi), void *ctx);
/* lm_parallel for the elementwise steps between products (kern.c,
 * delta.c): across the pool when the step touches enough floats to pay
 * for a dispatch, else on the caller alone.  Every element is computed
 * the same way either way, so results do not depend on it. */
void lm_each(long total, long align, long floats, void (*fn)(void *ctx, long lo, long hi),
             void *ctx);
/* Floats in a cache line: an align for ranges of whole lines, so that no
 * two threads write one. */
enum { LM_LINE = 16 };
/* The calling thread's own n floats (64-byte aligned), kept and reused
 * from call to call: a kernel's panel of widened weights (pool.c). */
float *lm_scratch(size_t n);

#endif
