/* opt.h: command lines as people type them.  One table per command gives
 * getopt_long its options (--opt=value, -n5, options anywhere among the
 * arguments), --help its lines, and a misspelt option its suggestion.
 *
 * A table is an array of lm_opt ended by {0}.  Several entries with the
 * same key are one option under several names (aliases); the first carries
 * the help, the others have help == NULL.  A key is the short option's
 * letter, or a value >= LM_OPT_LONG for an option with long names only. */
#ifndef LM_OPT_H
#define LM_OPT_H

#include <getopt.h>
#include <stdio.h>

enum { LM_OPT_LONG = 256, LM_OPT_MAX = 96 };

typedef struct {
	const char *name;           /* long name without "--"; NULL: a short one only */
	int key;
	const char *meta;           /* the value's name in --help; NULL: no value */
	const char *help;           /* lines separated by \n; NULL: an alias */
} lm_opt;

typedef struct {
	int argc;
	char **argv;
	const lm_opt *opts;
	const char *cmd;            /* for messages: "lmcc run", "init" */
	int npos;                   /* after the last option: the positional */
	char **pos;                 /* arguments, in order */
	struct option lo[LM_OPT_MAX + 1];
	char so[3 * LM_OPT_MAX + 2];
} lm_optp;

/* Begin parsing argv[1..] against opts. */
void lm_opt_init(lm_optp *p, int argc, char **argv, const lm_opt *opts, const char *cmd);
/* The next option's key, its value (or NULL) in *val; -1 when none is left
 * (then p->pos, p->npos hold the other arguments).  An unknown option, one
 * without its value or a value given to one that takes none is lm_fail,
 * suggesting the closest name. */
int lm_opt_next(lm_optp *p, const char **val);
/* The table as --help lines. */
void lm_opt_help(FILE *f, const lm_opt *opts);

/* The RUN OPTIONS of a model (run.c), and their --help.  --adapter's key,
 * for lmcc run, which emits the model with it. */
extern const lm_opt lm_run_opts[];
enum { LM_RUN_ADAPTER = LM_OPT_LONG + 64 };
void lm_run_usage(FILE *f, const char *prog, const char *weights);

/* "lmcc VERSION (commit HASH)", baked in at build time. */
const char *lm_version(void);

#endif
