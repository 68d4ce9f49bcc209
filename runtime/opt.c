/* opt.c: option tables through glibc's getopt_long (see opt.h). */
#define _GNU_SOURCE
#include "opt.h"
#include "rt.h"
#include "version.h"

#include <string.h>

const char *lm_version(void)
{
	return "lmcc " LMCC_VERSION " (commit " LMCC_COMMIT ")";
}

void lm_opt_init(lm_optp *p, int argc, char **argv, const lm_opt *opts, const char *cmd)
{
	memset(p, 0, sizeof *p);
	p->argc = argc;
	p->argv = argv;
	p->opts = opts;
	p->cmd = cmd;
	int nl = 0, ns = 0;
	p->so[ns++] = ':';            /* report a missing value as ':' */
	for (const lm_opt *o = opts; o->name || o->key; o++) {
		if (nl == LM_OPT_MAX)
			lm_bug("option table of %s: more than %d entries", cmd, LM_OPT_MAX);
		if (o->name)
			p->lo[nl++] = (struct option){o->name, o->meta ? required_argument : no_argument,
			                              NULL, o->key};
		if (o->key < LM_OPT_LONG && !strchr(p->so + 1, o->key)) {
			p->so[ns++] = (char)o->key;
			if (o->meta)
				p->so[ns++] = ':';
		}
	}
	optind = 0;                   /* glibc: start afresh, whoever parsed before */
	opterr = 0;
}

/* Edit distance, for suggesting the option meant. */
static int distance(const char *a, size_t na, const char *b)
{
	size_t nb = strlen(b);
	int row[64];
	if (na >= 63 || nb >= 63)
		return 99;
	for (size_t j = 0; j <= nb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= na; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= nb; j++) {
			int up = row[j];
			int best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

static const lm_opt *by_key(const lm_opt *opts, int key)
{
	for (const lm_opt *o = opts; o->name || o->key; o++)
		if (o->key == key)
			return o;
	return NULL;
}

static void unknown(lm_optp *p, const char *arg)
{
	const char *name = arg + strspn(arg, "-");
	size_t n = strcspn(name, "=");
	const char *best = NULL;
	int bestd = 99;
	for (const lm_opt *o = p->opts; o->name || o->key; o++) {
		if (!o->name)
			continue;
		int d = distance(name, n, o->name);
		/* a prefix of a name is a strong hint: --tem for --temp */
		if (n >= 2 && !strncmp(name, o->name, n))
			d = 1;
		if (d < bestd)
			bestd = d, best = o->name;
	}
	int close = best && n > 1 && (bestd <= 2 || bestd * 3 <= (int)n);
	lm_fail(NULL, "%s: unknown option '%.*s'%s%s%s (see --help)", p->cmd,
	        (int)(name - arg + n), arg, close ? "; did you mean --" : "",
	        close ? best : "", close ? "?" : "");
}

int lm_opt_next(lm_optp *p, const char **val)
{
	int k = getopt_long(p->argc, p->argv, p->so, p->lo, NULL);
	const char *arg = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
	*val = optarg;
	if (k == -1) {
		p->pos = p->argv + optind;
		p->npos = p->argc - optind;
		return -1;
	}
	if (k == ':') {
		const lm_opt *o = by_key(p->opts, optopt);
		if (arg[0] == '-' && arg[1] == '-')
			lm_fail(NULL, "%s: %s needs a value", p->cmd, arg);
		lm_fail(NULL, "%s: -%c%s%s needs a value", p->cmd, optopt,
		        o && o->name ? " (--" : "", o && o->name ? o->name : "");
	}
	if (k == '?') {
		if (arg[0] == '-' && arg[1] == '-') {
			const lm_opt *o = optopt ? by_key(p->opts, optopt) : NULL;
			if (o && strchr(arg, '='))
				lm_fail(NULL, "%s: %.*s takes no value", p->cmd,
				        (int)strcspn(arg, "="), arg);
			unknown(p, arg);
		}
		char s[3] = {'-', (char)optopt, 0};
		unknown(p, s);
	}
	return k;
}

void lm_opt_help(FILE *f, const lm_opt *opts)
{
	for (const lm_opt *o = opts; o->name || o->key; o++) {
		if (!o->help)
			continue;
		char left[160];
		int n = snprintf(left, sizeof left, "  ");
		if (o->key < LM_OPT_LONG)
			n += snprintf(left + n, sizeof left - n, "-%c", o->key);
		for (const lm_opt *a = opts; a->name || a->key; a++)
			if (a->key == o->key && a->name && n < (int)sizeof left)
				n += snprintf(left + n, sizeof left - n, "%s--%s",
				              n > 2 ? ", " : "", a->name);
		if (o->meta && n < (int)sizeof left)
			n += snprintf(left + n, sizeof left - n, " %s", o->meta);
		fputs(left, f);
		const char *h = o->help;
		int col = n;
		do {
			size_t len = strcspn(h, "\n");
			if (col > 22) {
				fputc('\n', f);
				col = 0;
			}
			fprintf(f, "%*s%.*s\n", 24 - col, "", (int)len, h);
			col = 0;
			h += len;
		} while (*h && *++h);
	}
}
