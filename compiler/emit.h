/* emit.h: a plan as one C source file, model.c (the emitter's own files
 * share em.h). */
#ifndef EMIT_H
#define EMIT_H
#include "plan.h"

/* The whole model.c, malloc'd.  weights_dir: the checkpoint directory the
 * program defaults to (0: none). */
char *emit_model(const Plan *p, const char *weights_dir);
#endif
