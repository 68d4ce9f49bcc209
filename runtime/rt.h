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

/* One line "lmcc: WHERE: MESSAGE" on stderr, exit 2.  WHERE names the file
 * (and, in MESSAGE, the field); it may be NULL. */
void lm_fail(const char *where, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
/* Internal error: "lmcc: internal error: ...", exit 1. */
void lm_bug(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

void *lm_alloc(size_t n);            /* zeroed; never NULL */
void *lm_alloc_aligned(size_t n);    /* zeroed, 64-byte aligned; free() it */
void *lm_realloc(void *p, size_t n);
char *lm_strdup(const char *s);
/* "%s/%s" in fresh memory. */
char *lm_path(const char *dir, const char *name);

/* Whole file into memory with a trailing NUL; *len gets its size.  Returns
 * NULL (errno set) when it cannot be opened; a read error is lm_fail. */
char *lm_read_file(const char *path, size_t *len);

double lm_now(void);                 /* monotonic seconds */

#endif
