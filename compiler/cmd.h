/* cmd.h: the subcommands of lmcc, each taking its own argv (argv[0] is
 * the subcommand's name) and returning the exit status. */
#ifndef CMD_H
#define CMD_H
#include "plan.h"

int cmd_plan(int argc, char **argv);
int cmd_emit(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_fuse(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* The plan of MODEL_DIR, with the adapter of adapter (or NULL) laid onto
 * it (main.c). */
void load_plan(Plan *p, const char *dir, const char *adapter);
#endif
