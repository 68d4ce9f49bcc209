/* tmpl.h: the text the emitter writes comes from templates/, filled in
 * by a tiny mustache-like engine.
 *
 * A template file holds parts, each starting with a line "@@ name"; lines
 * before the first part are notes for the reader of the template.  In a
 * part:  {{KEY}} is replaced by the value of KEY;  {{#KEY}}...{{/KEY}} is
 * kept when KEY is set and not "" or "0", {{^KEY}}...{{/KEY}} when not.
 * A line holding only a section tag disappears with the tag.  Every key a
 * part uses must be set: a missing one is a bug in the emitter. */
#ifndef TMPL_H
#define TMPL_H
#include <stddef.h>

typedef struct {
	char *s;
	size_t n, cap;
} Buf;
void bput(Buf *b, const char *s, size_t n);
void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *bdone(Buf *b);               /* the string; the Buf is empty again */

typedef struct {
	char **k, **v;
	int n, cap;
} Dict;
void dset(Dict *d, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void dfree(Dict *d);

/* Where templates/ is; the default is next to the lmcc executable. */
void tmpl_dir(const char *dir);
/* Render part `part` of templates/<file> with d, appending to out. */
void tmpl(Buf *out, const char *file, const char *part, const Dict *d);
#endif
