/* pyjson.h: JSON as Python's json.dump(indent=4) writes it (pyjson.c). */
#ifndef PYJSON_H
#define PYJSON_H
#include <json-c/json.h>
#include "tmpl.h"

/* o at nesting depth `depth` (0 at the top), appended to b. */
void py_json(Buf *b, json_object *o, int depth);
/* Python's repr of a float. */
void py_float(Buf *b, double x);
/* DIR/NAME holding o. */
void py_json_file(const char *dir, const char *name, json_object *o);
#endif
