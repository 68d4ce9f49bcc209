/* rt.h: what the runtime's own files share and the generated code does not
 * see (that is lmcc.h).  Error reporting, allocation, whole-file reading.
 *
 * Error policy (DESIGN.md): bad input of any kind ends with one line on
 * stderr that names the file and the field, and exit status 2.  Internal
 * errors (out of memory, a bug) exit 1.  Nothing here returns on failure. */
#ifndef LM_RT_H
#define LM_RT_H

#include <stddef.h>
#include <stdint.h>

#include "lmcc.h"

/* One line "lmcc: WHERE: MESSAGE" on stderr, exit 2.  WHERE names the file
 * (and, in MESSAGE, the field); it may be NULL. */
void lm_fail(const char *where, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
/* Internal error: "lmcc: internal error: ...", exit 1. */
void lm_bug(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

void *lm_alloc_aligned(size_t n);    /* zeroed, 64-byte aligned; free() it */
void *lm_realloc(void *p, size_t n);
char *lm_strdup(const char *s);
/* "%s/%s" in fresh memory. */
char *lm_path(const char *dir, const char *name);

/* Whole file into memory with a trailing NUL; *len gets its size.  Returns
 * NULL (errno set) when it cannot be opened; a read error is lm_fail. */
char *lm_read_file(const char *path, size_t *len);

double lm_now(void);                 /* monotonic seconds */

/* ---- checkpoints (st.c) ---- */
/* Open DIR/model.safetensors, or the shards DIR/model.safetensors.index.json
 * names.  Every header, offset, dtype and shape is checked here; a bad file
 * is lm_fail naming it. */
lm_ckpt *lm_ck_open(const char *dir);
void lm_ck_close(lm_ckpt *ck);
/* For tools (init, plan): the dtype and size of a tensor, or -1 if absent. */
int lm_ck_info(lm_ckpt *ck, const char *name, int *ndim, long *shape);
size_t lm_dtype_size(int dtype);
float lm_bf16_to_f32(uint16_t h);
uint16_t lm_f32_to_bf16(float f);     /* round to nearest even */
float lm_f16_to_f32(uint16_t h);
/* What identifies the weights: a hash of every file's header and of
 * samples of its data (for prompt caches, runtime/pcache.c). */
uint64_t lm_ck_fingerprint(const lm_ckpt *ck);
/* FNV-1a of n bytes, continuing from h (0xcbf29ce484222325 to start). */
uint64_t lm_hash(uint64_t h, const void *p, size_t n);
/* Element i of a weight stored in dtype, as float. */
float lm_load_f32(const void *p, int dtype, size_t i);

/* The instruction set of every kernel (isa.c): the best the CPU has, or
 * the one LMCC_ISA=avx512|avx2|portable names (one the CPU lacks, or an
 * unknown name, is lm_fail).  Chosen once, at start-up. */
enum { LM_ISA_PORTABLE = 0, LM_ISA_AVX2 = 1, LM_ISA_AVX512 = 2 };
int lm_isa(void);
const char *lm_isa_name(int isa);     /* "portable", "avx2", "avx512" */

/* Threads for the kernels, the caller included (pool.c). */
void lm_set_threads(int n);
/* Run fn(ctx, lo, hi) on one share of [0, total) per thread, shares cut
 * at multiples of align; returns when all are done (pool.c). */
void lm_parallel(long total, long align, void (*fn)(void *ctx, long lo, long hi), void *ctx);

#endif
