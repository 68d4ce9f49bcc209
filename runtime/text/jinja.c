/* jinja.c: chat template source -> syntax tree.
 *
 * The lexer applies Jinja2's whitespace rules as Hugging Face configures
 * them (trim_blocks, lstrip_blocks):
 *   {%- / {{- / {#-  remove all white space before the tag;
 *   -%} / -}} / -#}  remove all white space after it;
 *   a block or comment tag alone on its line (only spaces or tabs before
 *   it) loses that indentation (lstrip_blocks; not for {{ }}, not with +);
 *   a block or comment tag eats the one newline right after it
 *   (trim_blocks; not with +).
 * Line ends are normalised to \n and one trailing newline is dropped, as
 * Jinja2 does without keep_trailing_newline.
 *
 * The parser is recursive descent with Jinja2's precedence: conditional
 * expression < or < and < not < comparisons (in, not in, ==...) < + - <
 * ~ < * / // % < ** < unary - < filters, tests, calls, attributes. */
#include "jinja_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct jblock {
	jblock *next;
	size_t used, cap;
	max_align_t data[];
};

static void ja_limit(jarena *a, const char *what, long long limit)
{
	lm_fail(a->name, "the render needs more than %lld %s (the limit of one render)", limit, what);
}

void *ja_alloc(jarena *a, size_t n)
{
	jblock *b = a->head;
	void *p;
	if (n > a->max_bytes)
		ja_limit(a, "bytes", (long long)a->max_bytes);
	n = (n + 15) & ~(size_t)15;
	if (n > a->max_bytes - a->bytes)   /* bytes <= max_bytes always */
		ja_limit(a, "bytes", (long long)a->max_bytes);
	a->bytes += n;
	if (!b || b->used + n > b->cap) {
		size_t cap = n > 65536 ? n : 65536;
		b = lm_alloc(sizeof *b + cap);
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

struct jheld {
	tok_buf b;         /* first: a tok_buf * is its jheld */
	jheld *prev, *next;
};

tok_buf *ja_buf(jarena *a)
{
	jheld *h = a->spare;
	if (h)
		a->spare = h->next;
	else
		h = ja_alloc(a, sizeof *h);
	memset(h, 0, sizeof *h);
	h->next = a->held;
	if (a->held)
		a->held->prev = h;
	a->held = h;
	return &h->b;
}

void ja_unbuf(jarena *a, tok_buf *b)
{
	jheld *h = (jheld *)b;
	free(h->b.p);
	if (h->prev)
		h->prev->next = h->next;
	else
		a->held = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->next = a->spare;
	a->spare = h;
}

void ja_free(jarena *a)
{
	for (jheld *h = a->held; h; h = h->next)
		free(h->b.p);
	a->held = a->spare = NULL;
	while (a->head) {
		jblock *b = a->head;
		a->head = b->next;
		free(b);
	}
}

void ja_step(jarena *a, long long n)
{
	a->steps += n;
	if (a->steps > a->max_steps)
		ja_limit(a, "steps", a->max_steps);
}

void ja_enter(jarena *a)
{
	if (++a->depth > JINJA_MAX_DEPTH)
		ja_limit(a, "levels of recursion", JINJA_MAX_DEPTH);
}

/* A string being built (HAVE bytes) may grow by MORE: strings live in the
 * arena in the end, so the arena's room bounds them while they are built. */
void ja_room(jarena *a, size_t have, size_t more)
{
	if (have > a->max_bytes - a->bytes || more > a->max_bytes - a->bytes - have)
		ja_limit(a, "bytes", (long long)a->max_bytes);
}

/* ---- lexer ---- */

enum { T_DATA, T_VAR, T_VAR_END, T_BLOCK, T_BLOCK_END, T_NAME, T_STR, T_INT, T_FLOAT, T_OP, T_EOF };

typedef struct {
	int type, line;
	const char *s;      /* T_DATA, T_NAME, T_STR (unescaped), T_OP */
	size_t n;
	long long i;
	double f;
} jtok;

typedef struct {
	jarena *a;
	const char *name;
	jtok *t;
	int n, cap, pos;
	int nest;           /* parser recursion, at most JINJA_MAX_NEST */
} jlex;

static void lex_fail(jlex *L, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static void lex_fail(jlex *L, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	lm_fail(L->name, "line %d: %s", line, msg);
}

static jtok *push(jlex *L, int type, int line)
{
	jtok *t;
	if (L->n == L->cap) {   /* in the arena: the old arrays add at most as much again */
		int cap = L->cap ? L->cap * 2 : 256;
		jtok *grown = ja_alloc(L->a, cap * sizeof *grown);
		if (L->n)
			memcpy(grown, L->t, L->n * sizeof *grown);
		L->t = grown;
		L->cap = cap;
	}
	t = &L->t[L->n++];
	memset(t, 0, sizeof *t);
	t->type = type;
	t->line = line;
	return t;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int count_lines(const char *s, size_t n)
{
	int k = 0;
	size_t i;
	for (i = 0; i < n; i++)
		k += s[i] == '\n';
	return k;
}

/* A string literal at S (quote included), Python escapes decoded. */
static size_t lex_string(jlex *L, const char *s, int line, jtok *t)
{
	char q = s[0];
	tok_buf *b = ja_buf(L->a);
	size_t i = 1;
	for (;;) {
		char c = s[i];
		if (!c)
			lex_fail(L, line, "unterminated string");
		if (c == q)
			break;
		if (c != '\\') {
			buf_putc(b, c);
			i++;
			continue;
		}
		c = s[i + 1];
		i += 2;
		switch (c) {
		case 'n': buf_putc(b, '\n'); break;
		case 't': buf_putc(b, '\t'); break;
		case 'r': buf_putc(b, '\r'); break;
		case 'a': buf_putc(b, '\a'); break;
		case 'b': buf_putc(b, '\b'); break;
		case 'f': buf_putc(b, '\f'); break;
		case 'v': buf_putc(b, '\v'); break;
		case '0': buf_putc(b, '\0'); break;
		case '\\': case '\'': case '"': buf_putc(b, c); break;
		case '\n': break;   /* a backslash-newline joins lines */
		case 'x': case 'u': case 'U': {
			int k = c == 'x' ? 2 : c == 'u' ? 4 : 8, j;
			unsigned cp = 0;
			for (j = 0; j < k; j++) {
				char h = s[i + j];
				int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
					: h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
				if (v < 0)
					lex_fail(L, line, "bad \\%c escape in a string", c);
				cp = cp * 16 + v;
			}
			if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
				lex_fail(L, line, "escape \\%c gives no character", c);
			utf8_put(b, cp);
			i += k;
			break;
		}
		default:  /* Python keeps an unknown escape as it is */
			if (!c)
				lex_fail(L, line, "unterminated string");
			buf_putc(b, '\\');
			buf_putc(b, c);
		}
	}
	jv v = jv_built(L->a, b);
	t->s = v.s.p;
	t->n = v.s.n;
	return i + 1;
}

static const char *const OPS[] = {
	"//", "**", "==", "!=", "<=", ">=",
	"+", "-", "*", "/", "%", "~", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|", "=", "<", ">",
};

/* Tokens of one tag, up to its closing }} or %}.  Returns the index just
 * after the closer and sets *SIGN to '-', '+' or 0. */
static size_t lex_tag(jlex *L, const char *s, size_t i, int *line, int block, int *sign)
{
	const char *close = block ? "%}" : "}}";
	for (;;) {
		char c = s[i];
		jtok *t;
		unsigned k;
		if (!c)
			lex_fail(L, *line, "tag not closed with %s", close);
		if (is_ws(c)) {
			*line += c == '\n';
			i++;
			continue;
		}
		if ((c == '-' || c == '+') && strncmp(s + i + 1, close, 2) == 0) {
			*sign = c;
			return i + 3;
		}
		if (strncmp(s + i, close, 2) == 0) {
			*sign = 0;
			return i + 2;
		}
		if (c == '\'' || c == '"') {
			t = push(L, T_STR, *line);
			k = lex_string(L, s + i, *line, t);
			*line += count_lines(s + i, k);
			i += k;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
			size_t j = i;
			while ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z')
			       || (s[j] >= '0' && s[j] <= '9') || s[j] == '_')
				j++;
			t = push(L, T_NAME, *line);
			t->s = s + i;
			t->n = j - i;
			i = j;
			continue;
		}
		if (c >= '0' && c <= '9') {
			char *end;
			size_t j = i;
			while (s[j] >= '0' && s[j] <= '9')
				j++;
			if ((s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9')
			    || ((s[j] == 'e' || s[j] == 'E')
				&& ((s[j + 1] >= '0' && s[j + 1] <= '9')
				    || ((s[j + 1] == '-' || s[j + 1] == '+') && s[j + 2] >= '0' && s[j + 2] <= '9')))) {
				t = push(L, T_FLOAT, *line);
				t->f = strtod(s + i, &end);
			} else {
				t = push(L, T_INT, *line);
				errno = 0;
				t->i = strtoll(s + i, &end, 10);
				if (end != s + j)
					lex_fail(L, *line, "bad number");
				if (errno == ERANGE)
					lex_fail(L, *line, "integer %.*s does not fit in 64 bits", (int)(j - i), s + i);
			}
			i = end - s;
			continue;
		}
		for (k = 0; k < sizeof OPS / sizeof *OPS; k++) {
			size_t n = strlen(OPS[k]);
			if (strncmp(s + i, OPS[k], n) == 0) {
				t = push(L, T_OP, *line);
				t->s = OPS[k];
				t->n = n;
				i += n;
				break;
			}
		}
		if (k == sizeof OPS / sizeof *OPS)
			lex_fail(L, *line, "unexpected character '%c' in a tag", c);
	}
}

static void push_data(jlex *L, const char *s, size_t n, int line)
{
	jtok *t;
	if (!n)
		return;
	t = push(L, T_DATA, line);
	t->s = s;
	t->n = n;
}

static void lex(jlex *L, const char *s)
{
	size_t i = 0;
	int line = 1, line_starting = 1, strip_next = 0;
	for (;;) {
		const char *q = strchr(s + i, '{');
		size_t start = i, end;
		int kind, sign, dline = line, closer;
		while (q && q[1] != '{' && q[1] != '%' && q[1] != '#')
			q = strchr(q + 1, '{');
		end = q ? (size_t)(q - s) : strlen(s);
		if (strip_next)
			while (start < end && is_ws(s[start]))
				start++;
		if (!q) {
			push_data(L, s + start, end - start, dline);
			push(L, T_EOF, line);
			return;
		}
		kind = q[1];
		sign = q[2] == '-' || q[2] == '+' ? q[2] : 0;
		if (sign == '-') {
			while (end > start && is_ws(s[end - 1]))
				end--;
		} else if (sign != '+' && kind != '{') {
			/* lstrip_blocks: drop indentation before a tag on its own line */
			size_t l = end;
			while (l > start && s[l - 1] != '\n')
				l--;
			if (l > start || line_starting) {
				size_t j = l;
				while (j < end && (s[j] == ' ' || s[j] == '\t'))
					j++;
				if (j == end)
					end = l;
			}
		}
		push_data(L, s + start, end - start, dline);
		line += count_lines(s + i, (q - s) - i);
		i = (q - s) + 2 + (sign != 0);
		if (kind == '#') {
			const char *e = strstr(s + i, "#}");
			if (!e)
				lex_fail(L, line, "comment not closed");
			closer = e > s + i && (e[-1] == '-' || e[-1] == '+') ? e[-1] : 0;
			line += count_lines(s + i, e - (s + i));
			i = e - s + 2;
		} else {
			push(L, kind == '%' ? T_BLOCK : T_VAR, line);
			i = lex_tag(L, s, i, &line, kind == '%', &closer);
			push(L, kind == '%' ? T_BLOCK_END : T_VAR_END, line);
		}
		strip_next = closer == '-';
		line_starting = 0;
		if (!closer && kind != '{' && s[i] == '\n') {
			/* trim_blocks */
			i++;
			line++;
			line_starting = 1;
		} else if (closer == '-') {
			/* the white space eaten by -%} counts as the tag's text */
			size_t j = i;
			while (is_ws(s[j]))
				j++;
			line_starting = j > i && s[j - 1] == '\n';
		}
	}
}

/* ---- parser ---- */

typedef jlex jparse;

static jtok *cur(jparse *P) { return &P->t[P->pos]; }
static jtok *next(jparse *P) { return &P->t[P->pos++]; }

static int is_name(jtok *t, const char *s)
{
	return t->type == T_NAME && t->n == strlen(s) && memcmp(t->s, s, t->n) == 0;
}

static int is_op(jtok *t, const char *s)
{
	return t->type == T_OP && strcmp(t->s, s) == 0;
}

static void expect_op(jparse *P, const char *s)
{
	if (!is_op(cur(P), s))
		lex_fail(P, cur(P)->line, "expected '%s'", s);
	P->pos++;
}

static const char *name_str(jparse *P, jtok *t)
{
	char *s = ja_alloc(P->a, t->n + 1);
	memcpy(s, t->s, t->n);
	return s;
}

static const char *expect_name(jparse *P)
{
	if (cur(P)->type != T_NAME)
		lex_fail(P, cur(P)->line, "expected a name");
	return name_str(P, next(P));
}

static jnode *node(jparse *P, int kind, int line)
{
	jnode *e = ja_alloc(P->a, sizeof *e);
	e->kind = kind;
	e->line = line;
	return e;
}

static void add_kid(jparse *P, jnode *e, jnode *k)
{
	/* grows by doubling inside the arena */
	if ((e->n & (e->n - 1)) == 0) {
		jnode **kid = ja_alloc(P->a, (e->n ? 2 * e->n : 1) * sizeof *kid);
		if (e->n)
			memcpy(kid, e->kid, e->n * sizeof *kid);
		e->kid = kid;
	}
	e->kid[e->n++] = k;
}

static jnode *expr(jparse *P);
static jnode *unary(jparse *P, int with_filter);

/* Every recursion of the parser goes through these: a template nested
 * 100,000 levels deep must fail, not overflow the stack. */
static void enter(jparse *P)
{
	if (++P->nest > JINJA_MAX_NEST)
		lex_fail(P, cur(P)->line, "nested more than %d levels deep", JINJA_MAX_NEST);
}

static jnode *leave(jparse *P, jnode *e)
{
	P->nest--;
	return e;
}

/* (args) of a call, filter or test: positional, then name=value. */
static void call_args(jparse *P, jnode *e)
{
	const char *kw[64];
	expect_op(P, "(");
	while (!is_op(cur(P), ")")) {
		if (cur(P)->type == T_NAME && is_op(&P->t[P->pos + 1], "=")) {
			if (e->nkw == 64)
				lex_fail(P, cur(P)->line, "too many keyword arguments");
			kw[e->nkw++] = expect_name(P);
			P->pos++;
			add_kid(P, e, expr(P));
		} else {
			if (e->nkw)
				lex_fail(P, cur(P)->line, "positional argument after a keyword argument");
			add_kid(P, e, expr(P));
		}
		if (!is_op(cur(P), ","))
			break;
		P->pos++;
	}
	expect_op(P, ")");
	if (e->nkw) {
		e->kw = ja_alloc(P->a, e->nkw * sizeof *e->kw);
		memcpy(e->kw, kw, e->nkw * sizeof *kw);
	}
}

/* Comma-separated expressions up to CLOSE (a trailing comma is fine). */
static void items(jparse *P, jnode *e, const char *close)
{
	while (!is_op(cur(P), close)) {
		add_kid(P, e, expr(P));
		if (!is_op(cur(P), ","))
			break;
		P->pos++;
	}
	expect_op(P, close);
}

static jnode *primary(jparse *P)
{
	jtok *t = cur(P);
	jnode *e;
	if (t->type == T_STR) {
		tok_buf *b = ja_buf(P->a);
		e = node(P, E_LIT, t->line);
		while (cur(P)->type == T_STR) {   /* "a" "b" is "ab" */
			buf_put(b, cur(P)->s, cur(P)->n);
			P->pos++;
		}
		e->lit = jv_built(P->a, b);
		return e;
	}
	if (t->type == T_INT || t->type == T_FLOAT) {
		e = node(P, E_LIT, t->line);
		if (t->type == T_INT)
			e->lit = jv_int(t->i);
		else {
			e->lit.t = JV_FLOAT;
			e->lit.f = t->f;
		}
		P->pos++;
		return e;
	}
	if (t->type == T_NAME) {
		e = node(P, E_LIT, t->line);
		if (is_name(t, "true") || is_name(t, "True"))
			e->lit = jv_bool(1);
		else if (is_name(t, "false") || is_name(t, "False"))
			e->lit = jv_bool(0);
		else if (is_name(t, "none") || is_name(t, "None"))
			e->lit = jv_none();
		else {
			e->kind = E_NAME;
			e->name = name_str(P, t);
		}
		P->pos++;
		return e;
	}
	if (is_op(t, "(")) {
		/* (x) is x; (), (x,) and (x, y) are tuples */
		jnode *first = NULL;
		P->pos++;
		if (!is_op(cur(P), ")")) {
			first = expr(P);
			if (!is_op(cur(P), ",")) {
				expect_op(P, ")");
				return first;
			}
		}
		e = node(P, E_LIST, t->line);
		e->tuple = 1;
		if (first) {
			add_kid(P, e, first);
			P->pos++;
		}
		items(P, e, ")");
		return e;
	}
	if (is_op(t, "[")) {
		e = node(P, E_LIST, t->line);
		P->pos++;
		items(P, e, "]");
		return e;
	}
	if (is_op(t, "{")) {
		e = node(P, E_DICT, t->line);
		P->pos++;
		while (!is_op(cur(P), "}")) {
			add_kid(P, e, expr(P));
			expect_op(P, ":");
			add_kid(P, e, expr(P));
			if (!is_op(cur(P), ","))
				break;
			P->pos++;
		}
		expect_op(P, "}");
		return e;
	}
	lex_fail(P, t->line, "unexpected %s in an expression",
		 t->type == T_BLOCK_END || t->type == T_VAR_END ? "end of tag" : "token");
}

/* .name, [key], [a:b:c], (args) */
static jnode *postfix(jparse *P, jnode *e)
{
	for (;;) {
		jtok *t = cur(P);
		if (is_op(t, ".")) {
			jnode *g = node(P, E_ATTR, t->line);
			P->pos++;
			g->a = e;
			if (cur(P)->type == T_INT) {   /* x.0 is x[0] */
				g->kind = E_ITEM;
				g->b = node(P, E_LIT, t->line);
				g->b->lit = jv_int(next(P)->i);
			} else {
				g->name = expect_name(P);
			}
			e = g;
		} else if (is_op(t, "[")) {
			jnode *g = node(P, E_ITEM, t->line), *parts[3] = { 0 };
			int k = 0;
			P->pos++;
			g->a = e;
			for (;;) {
				if (!is_op(cur(P), ":") && !is_op(cur(P), "]"))
					parts[k] = expr(P);
				if (is_op(cur(P), ":") && k < 2) {
					P->pos++;
					k++;
					g->kind = E_SLICE;
					continue;
				}
				break;
			}
			expect_op(P, "]");
			if (g->kind == E_ITEM && !parts[0])
				lex_fail(P, t->line, "empty subscript");
			g->b = parts[0];
			g->c = parts[1];
			if (g->kind == E_SLICE) {
				add_kid(P, g, parts[2]);
			}
			e = g;
		} else if (is_op(t, "(")) {
			jnode *c = node(P, E_CALL, t->line);
			c->a = e;
			call_args(P, c);
			e = c;
		} else {
			return e;
		}
	}
}

/* | filter(args) and "is [not] test" after a unary expression */
static jnode *filters(jparse *P, jnode *e)
{
	for (;;) {
		jtok *t = cur(P);
		if (is_op(t, "|")) {
			jnode *f = node(P, E_FILTER, t->line);
			P->pos++;
			f->name = expect_name(P);
			add_kid(P, f, e);     /* the value is argument 0 */
			if (is_op(cur(P), "("))
				call_args(P, f);
			e = f;
		} else if (is_name(t, "is")) {
			jnode *f = node(P, E_TEST, t->line);
			jtok *a;
			P->pos++;
			if (is_name(cur(P), "not")) {
				f->negate = 1;
				P->pos++;
			}
			f->name = expect_name(P);
			add_kid(P, f, e);
			a = cur(P);
			if (is_op(a, "(")) {
				call_args(P, f);
			} else if ((a->type == T_STR || a->type == T_INT || a->type == T_FLOAT
				    || a->type == T_NAME || is_op(a, "[") || is_op(a, "{"))
				   && !is_name(a, "else") && !is_name(a, "or") && !is_name(a, "and")
				   && !is_name(a, "if") && !is_name(a, "in") && !is_name(a, "is")
				   && !is_name(a, "not")) {
				add_kid(P, f, postfix(P, primary(P)));   /* "is divisibleby 3" */
			}
			e = f;
		} else {
			return e;
		}
	}
}

static jnode *unary(jparse *P, int with_filter)
{
	jtok *t = cur(P);
	jnode *e;
	enter(P);
	if (is_op(t, "-") || is_op(t, "+")) {
		P->pos++;
		e = node(P, is_op(t, "-") ? E_NEG : E_BIN, t->line);
		if (e->kind == E_BIN) {   /* +x is x + 0 */
			e->name = "+";
			e->a = unary(P, 0);
			e->b = node(P, E_LIT, t->line);
			e->b->lit = jv_int(0);
		} else {
			e->a = unary(P, 0);
		}
	} else {
		e = postfix(P, primary(P));
	}
	return leave(P, with_filter ? filters(P, e) : e);
}

static jnode *binary(jparse *P, int line, const char *op, jnode *a, jnode *b)
{
	jnode *e = node(P, E_BIN, line);
	e->name = op;
	e->a = a;
	e->b = b;
	return e;
}

/* The arithmetic levels, loosest first; each is left-associative over the
 * next, and the last over unary expressions. */
static const char *const ARITH[][5] = {
	{ "+", "-" }, { "~" }, { "*", "/", "//", "%" }, { "**" },
};
#define N_ARITH (int)(sizeof ARITH / sizeof *ARITH)

static jnode *arith(jparse *P, int level)
{
	jnode *e = level + 1 < N_ARITH ? arith(P, level + 1) : unary(P, 1);
	for (;;) {
		jtok *t = cur(P);
		const char *op = NULL;
		int k;
		for (k = 0; ARITH[level][k]; k++)
			if (is_op(t, ARITH[level][k]))
				op = ARITH[level][k];
		if (!op)
			return e;
		P->pos++;
		e = binary(P, t->line, op, e, level + 1 < N_ARITH ? arith(P, level + 1) : unary(P, 1));
	}
}

/* a < b < c means (a < b) and (b < c), as in Python. */
static jnode *compare(jparse *P)
{
	jnode *e = arith(P, 0), *left = e, *chain = NULL;
	for (;;) {
		jtok *t = cur(P);
		const char *op;
		jnode *right, *c;
		if (t->type == T_OP && (is_op(t, "==") || is_op(t, "!=") || is_op(t, "<") || is_op(t, ">")
					 || is_op(t, "<=") || is_op(t, ">=")))
			op = t->s;
		else if (is_name(t, "in"))
			op = "in";
		else if (is_name(t, "not") && is_name(&P->t[P->pos + 1], "in")) {
			op = "not in";
			P->pos++;
		} else
			break;
		P->pos++;
		right = arith(P, 0);
		c = binary(P, t->line, op, left, right);
		if (chain) {
			jnode *both = node(P, E_AND, t->line);
			both->a = chain;
			both->b = c;
			chain = both;
		} else {
			chain = c;
		}
		left = right;
	}
	return chain ? chain : e;
}

static jnode *not_expr(jparse *P)
{
	enter(P);
	if (is_name(cur(P), "not")) {
		jnode *e = node(P, E_NOT, next(P)->line);
		e->a = not_expr(P);
		return leave(P, e);
	}
	return leave(P, compare(P));
}

/* "a or b" (IS_OR) over "a and b" over "not a". */
static jnode *logic(jparse *P, int is_or)
{
	jnode *e = is_or ? logic(P, 0) : not_expr(P);
	while (is_name(cur(P), is_or ? "or" : "and")) {
		jnode *n = node(P, is_or ? E_OR : E_AND, next(P)->line);
		n->a = e;
		n->b = is_or ? logic(P, 0) : not_expr(P);
		e = n;
	}
	return e;
}

/* x if cond [else y] */
static jnode *expr(jparse *P)
{
	jnode *e;
	enter(P);
	e = logic(P, 1);
	while (is_name(cur(P), "if")) {
		jnode *c = node(P, E_COND, next(P)->line);
		c->a = logic(P, 1);     /* condition */
		c->b = e;              /* then */
		if (is_name(cur(P), "else")) {
			P->pos++;
			c->c = expr(P);
		}
		e = c;
	}
	return leave(P, e);
}

static void end_tag(jparse *P)
{
	if (cur(P)->type != T_BLOCK_END)
		lex_fail(P, cur(P)->line, "expected the end of the tag");
	P->pos++;
}

/* Statements up to a {% NAME %} in ENDS (a '|'-separated list); the
 * name found is left as the current token. */
static jnode *body(jparse *P, const char *ends, const char **found);

/* The statements up to {% END %}, which is consumed. */
static jnode *block_until(jparse *P, const char *end)
{
	const char *f;
	jnode *b = body(P, end, &f);
	P->pos++;
	end_tag(P);
	return b;
}

/* After a body that stopped at the tag F: an optional {% else %} part up
 * to {% END %}; the closing tag is consumed. */
static jnode *else_part(jparse *P, const char *f, const char *end)
{
	P->pos++;
	if (strcmp(f, "else") == 0) {
		end_tag(P);
		return block_until(P, end);
	}
	end_tag(P);
	return NULL;
}

static jnode *stmt_if(jparse *P, int line)
{
	jnode *e = node(P, S_IF, line);
	const char *f;
	enter(P);
	e->a = expr(P);
	end_tag(P);
	e->b = body(P, "elif|else|endif", &f);
	if (strcmp(f, "elif") == 0) {
		P->pos++;
		e->c = stmt_if(P, cur(P)->line);
		return leave(P, e);
	}
	e->c = else_part(P, f, "endif");
	return leave(P, e);
}

static jnode *stmt_for(jparse *P, int line)
{
	jnode *e = node(P, S_FOR, line);
	const char *f;
	e->name = expect_name(P);
	if (is_op(cur(P), ",")) {
		P->pos++;
		e->name2 = expect_name(P);
	}
	if (!is_name(cur(P), "in"))
		lex_fail(P, cur(P)->line, "expected 'in' in a for tag");
	P->pos++;
	e->a = logic(P, 1);       /* not expr(): "if" here filters the loop */
	if (is_name(cur(P), "if")) {
		P->pos++;
		add_kid(P, e, expr(P));
	}
	if (is_name(cur(P), "recursive"))
		lex_fail(P, cur(P)->line, "recursive loops are not supported");
	end_tag(P);
	e->b = body(P, "else|endfor", &f);
	e->c = else_part(P, f, "endfor");
	return e;
}

static jnode *stmt_set(jparse *P, int line)
{
	jnode *e = node(P, S_SET, line);
	e->name = expect_name(P);
	if (is_op(cur(P), ".")) {
		P->pos++;
		e->name2 = expect_name(P);
	}
	if (is_op(cur(P), ","))
		lex_fail(P, line, "set with several targets is not supported");
	if (is_op(cur(P), "=")) {
		P->pos++;
		e->a = expr(P);
		end_tag(P);
		return e;
	}
	if (e->name2)
		lex_fail(P, line, "a set block needs a plain name");
	if (cur(P)->type != T_BLOCK_END)
		lex_fail(P, line, "set block filters are not supported");
	end_tag(P);
	e->kind = S_SETBLOCK;
	e->a = block_until(P, "endset");
	return e;
}

static jnode *stmt_macro(jparse *P, int line)
{
	jnode *e = node(P, S_MACRO, line);
	const char *params[64];
	int np = 0;
	e->name = expect_name(P);
	expect_op(P, "(");
	/* params as kid[i] = default or NULL, kw[i] = name */
	while (!is_op(cur(P), ")")) {
		if (np == 64)
			lex_fail(P, line, "too many macro parameters");
		params[np++] = expect_name(P);
		if (is_op(cur(P), "=")) {
			P->pos++;
			add_kid(P, e, expr(P));
		} else {
			add_kid(P, e, NULL);
		}
		if (!is_op(cur(P), ","))
			break;
		P->pos++;
	}
	expect_op(P, ")");
	e->kw = ja_alloc(P->a, (np + 1) * sizeof *e->kw);
	memcpy(e->kw, params, np * sizeof *params);
	e->nkw = np;
	end_tag(P);
	e->a = block_until(P, "endmacro");
	return e;
}

static int in_list(const char *list, jtok *t)
{
	const char *p = list;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (t->n == n && memcmp(t->s, p, n) == 0)
			return 1;
		if (!bar)
			break;
		p = bar + 1;
	}
	return 0;
}

static jnode *body(jparse *P, const char *ends, const char **found)
{
	jnode *b = node(P, S_BODY, cur(P)->line);
	enter(P);
	for (;;) {
		jtok *t = next(P);
		jnode *e;
		if (t->type == T_EOF) {
			if (ends) {
				const char *last = strrchr(ends, '|');
				lex_fail(P, t->line, "missing {%% %s %%}", last ? last + 1 : ends);
			}
			P->pos--;
			return leave(P, b);
		}
		if (t->type == T_DATA) {
			e = node(P, S_TEXT, t->line);
			e->lit = jv_str(P->a, t->s, t->n);
			add_kid(P, b, e);
			continue;
		}
		if (t->type == T_VAR) {
			e = node(P, S_OUT, t->line);
			e->a = expr(P);
			if (cur(P)->type != T_VAR_END)
				lex_fail(P, cur(P)->line, "expected }}");
			P->pos++;
			add_kid(P, b, e);
			continue;
		}
		/* a block tag */
		t = cur(P);
		if (t->type != T_NAME)
			lex_fail(P, t->line, "expected a tag name");
		if (ends && in_list(ends, t)) {
			*found = name_str(P, t);
			return leave(P, b);
		}
		P->pos++;
		if (is_name(t, "if"))
			e = stmt_if(P, t->line);
		else if (is_name(t, "for"))
			e = stmt_for(P, t->line);
		else if (is_name(t, "set"))
			e = stmt_set(P, t->line);
		else if (is_name(t, "macro"))
			e = stmt_macro(P, t->line);
		else if (is_name(t, "break") || is_name(t, "continue")) {
			e = node(P, is_name(t, "break") ? S_BREAK : S_CONTINUE, t->line);
			end_tag(P);
		} else if (is_name(t, "generation")) {
			/* transformers' assistant-mask marker: renders its body */
			end_tag(P);
			e = block_until(P, "endgeneration");
		} else {
			lex_fail(P, t->line, "the tag '%.*s' is not supported", (int)t->n, t->s);
		}
		add_kid(P, b, e);
	}
}

jnode *jinja_parse(jarena *a, const char *name, const char *src)
{
	jparse P = { a, name, NULL, 0, 0, 0, 0 };
	tok_buf *s = ja_buf(a);
	size_t i, n = strlen(src);
	/* \r\n and \r become \n; one trailing newline goes */
	for (i = 0; i < n; i++) {
		if (src[i] == '\r') {
			buf_putc(s, '\n');
			if (src[i + 1] == '\n')
				i++;
		} else {
			buf_putc(s, src[i]);
		}
	}
	if (s->n && s->p[s->n - 1] == '\n')
		s->n--;
	/* the tokens point into the source: keep it in the arena */
	lex(&P, jv_built(a, s).s.p);
	return body(&P, NULL, NULL);
}
