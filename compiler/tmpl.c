/* tmpl.c: templates/ files, their parts, and filling them in (tmpl.h). */
#include "tmpl.h"
#include "../runtime/rt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bput(Buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->s = lm_realloc(b->s, b->cap);
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

/* printf into fresh memory. */
static char *vformat(const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	char *s = lm_alloc(n + 1);
	vsnprintf(s, n + 1, fmt, again);
	va_end(again);
	return s;
}

void bprintf(Buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = vformat(fmt, ap);
	va_end(ap);
	bput(b, s, strlen(s));
	free(s);
}

char *bdone(Buf *b)
{
	char *s = b->s ? b->s : lm_strdup("");
	b->s = NULL;
	b->n = b->cap = 0;
	return s;
}

void dset(Dict *d, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *v = vformat(fmt, ap);
	va_end(ap);
	for (int i = 0; i < d->n; i++)
		if (!strcmp(d->k[i], key)) {
			free(d->v[i]);
			d->v[i] = v;
			return;
		}
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 32;
		d->k = lm_realloc(d->k, d->cap * sizeof(char *));
		d->v = lm_realloc(d->v, d->cap * sizeof(char *));
	}
	d->k[d->n] = lm_strdup(key);
	d->v[d->n++] = v;
}

void dfree(Dict *d)
{
	for (int i = 0; i < d->n; i++) {
		free(d->k[i]);
		free(d->v[i]);
	}
	free(d->k);
	free(d->v);
	memset(d, 0, sizeof *d);
}

static const char *dget(const Dict *d, const char *key, size_t klen)
{
	for (int i = 0; i < d->n; i++)
		if (strlen(d->k[i]) == klen && !memcmp(d->k[i], key, klen))
			return d->v[i];
	return NULL;
}

/* ---- files and parts ---- */

static char *dir;
static struct { char *name, *text; } cache[32];
static int ncache;

void tmpl_dir(const char *d)
{
	free(dir);
	dir = lm_strdup(d);
}

static const char *load(const char *file)
{
	for (int i = 0; i < ncache; i++)
		if (!strcmp(cache[i].name, file))
			return cache[i].text;
	if (!dir)
		lm_bug("template directory not set");
	char *path = lm_path(dir, file);
	char *text = lm_read_file(path, NULL);
	if (!text)
		lm_fail(path, "cannot read template: %s", strerror(errno));
	free(path);
	if (ncache == 32)
		lm_bug("too many template files");
	cache[ncache].name = lm_strdup(file);
	cache[ncache].text = text;
	return cache[ncache++].text;
}

/* The text of part `part`: from after its "@@ part" line to the next "@@". */
static const char *find_part(const char *text, const char *part, size_t *len)
{
	size_t pl = strlen(part);
	for (const char *s = text; s; s = strchr(s, '\n'), s = s ? s + 1 : s) {
		if (strncmp(s, "@@ ", 3) || strncmp(s + 3, part, pl)
		    || (s[3 + pl] != '\n' && s[3 + pl] != ' '))
			continue;
		const char *b = strchr(s, '\n');
		b = b ? b + 1 : s + strlen(s);
		const char *e = b;
		while (*e && !(e[0] == '@' && e[1] == '@' && (e == b || e[-1] == '\n')))
			e = strchr(e, '\n') ? strchr(e, '\n') + 1 : e + strlen(e);
		*len = (size_t)(e - b);
		return b;
	}
	return NULL;
}

/* ---- rendering ---- */

typedef struct {
	const char *file, *part;
	const Dict *d;
	const char *begin;      /* the part's first character */
} Ctx;

static int truthy(const char *v)
{
	return v && *v && strcmp(v, "0");
}

/* Is [b, e) only blanks? */
static int blank(const char *b, const char *e)
{
	for (; b < e; b++)
		if (*b != ' ' && *b != '\t')
			return 0;
	return 1;
}

/* Render s[0, n); returns where a closing tag for `closing` was found (the
 * position after it), or s + n.  emit == 0: only skip. */
static const char *render(Buf *out, const char *s, const char *end,
                          const Ctx *c, int emit, const char *closing, size_t clen)
{
	while (s < end) {
		const char *o = strstr(s, "{{");
		if (!o || o >= end) {
			if (emit)
				bput(out, s, end - s);
			return end;
		}
		const char *cl = strstr(o, "}}");
		if (!cl || cl > end)
			lm_bug("template %s/%s: unclosed {{", c->file, c->part);
		char kind = o[2];
		int section = kind == '#' || kind == '^' || kind == '/';
		const char *key = o + 2 + section;
		size_t klen = (size_t)(cl - key);
		const char *after = cl + 2;
		const char *text_end = o;
		/* a tag alone on its line takes the line with it */
		if (section) {
			const char *ls = o;
			while (ls > s && ls[-1] != '\n')
				ls--;
			const char *le = after;
			while (le < end && (*le == ' ' || *le == '\t'))
				le++;
			int at_line_start = ls == c->begin || ls[-1] == '\n';
			if (at_line_start && blank(ls, o) && (le == end || *le == '\n')) {
				text_end = ls;
				after = le < end ? le + 1 : le;
			}
		}
		if (emit)
			bput(out, s, text_end - s);
		if (!section) {
			const char *v = dget(c->d, key, klen);
			if (!v)
				lm_bug("template %s/%s: key %.*s not set", c->file, c->part, (int)klen, key);
			if (emit)
				bput(out, v, strlen(v));
			s = after;
		} else if (kind == '/') {
			if (!closing || klen != clen || memcmp(key, closing, clen))
				lm_bug("template %s/%s: unexpected {{/%.*s}}", c->file, c->part, (int)klen, key);
			return after;
		} else {
			const char *v = dget(c->d, key, klen);
			if (!v)
				lm_bug("template %s/%s: section key %.*s not set", c->file,
				       c->part, (int)klen, key);
			int on = kind == '#' ? truthy(v) : !truthy(v);
			s = render(out, after, end, c, emit && on, key, klen);
		}
	}
	if (closing)
		lm_bug("template %s/%s: {{#%.*s}} not closed", c->file, c->part, (int)clen, closing);
	return end;
}

void tmpl(Buf *out, const char *file, const char *part, const Dict *d)
{
	size_t len;
	const char *p = find_part(load(file), part, &len);
	if (!p)
		lm_bug("template %s has no part %s", file, part);
	Ctx c = {file, part, d, p};
	render(out, p, p + len, &c, 1, NULL, 0);
}
