/* cfg.h: reading config.json with every field checked.
 *
 * Each getter names the field in its error, with the path from the root
 * (text_config.head_dim), and states what was expected: a config is
 * untrusted input, and the first thing wrong in it is reported in one line
 * (exit 2).  JSON null counts as absent, as the reference's Optional fields
 * do. */
#ifndef CFG_H
#define CFG_H
#include <json-c/json.h>
#include <limits.h>

#define CFG_REQ LONG_MIN        /* no default: the field must be present */
#define CFG_REQ_NUM (-1e308)

/* Every field a reader looked at, in the order first read, with the value
 * it saw and the default it would take in its place (NULL: absent, no
 * default): what a program built from the config bakes in, and what a
 * checkpoint's config must repeat (runtime/run.c). */
typedef struct {
	char **path;                /* "text_config.head_dim" */
	json_object **val, **dflt;
	int n, cap;
} CfgLog;

typedef struct {
	const char *file;           /* for messages */
	CfgLog *log;                /* shared by the copies of a Cfg */
	json_object *root;
	json_object *obj;           /* the object fields are read from */
	char prefix[64];            /* "text_config." when inside it */
} Cfg;

Cfg cfg_load(const char *path);
void cfg_free(Cfg *c);
/* Descend into an object field (nested config); 0 if absent and optional. */
int cfg_enter(Cfg *c, const char *key, int required);

int cfg_has(Cfg *c, const char *key);
/* The raw value (NULL when absent or null), for a reader that checks its
 * type itself; it is logged like the others. */
json_object *cfg_get(Cfg *c, const char *key);
long cfg_int(Cfg *c, const char *key, long lo, long hi, long dflt);
double cfg_num(Cfg *c, const char *key, double lo, double hi, double dflt);
int cfg_bool(Cfg *c, const char *key, int dflt);
/* The string, or dflt when absent; never pasted into C by the caller. */
const char *cfg_str(Cfg *c, const char *key, const char *dflt);
/* A list of integers in [lo, hi]: count, or -1 when absent (or null).
 * Also accepts a single integer as a list of one when allow_scalar. */
int cfg_ints(Cfg *c, const char *key, long lo, long hi, long *out, int max,
             int allow_scalar);

/* The field's value as JSON text, cut short, for messages. */
const char *cfg_shown(Cfg *c, const char *key);

/* Stop with "FILE: field 'PREFIX.key': MESSAGE". */
void cfg_error(Cfg *c, const char *key, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#endif
