/* build.h: compiling generated code, and the files around it (build.c). */
#ifndef BUILD_H
#define BUILD_H

/* Where the templates, the runtime's headers and its libraries are. */
typedef struct {
	char *templates, *include, *lib;
} Install;
const Install *lmcc_layout(void);
void make_dirs(const char *path);
void write_text(const char *path, const char *text);
/* gcc -O2 src -> exe, against runtime/liblmcc.a.  Failure is exit 1. */
void compile_gcc(const char *src, const char *exe, int mpi);
/* Compile src in memory with libtcc against runtime/liblmcc.so, call its
 * lm_entry(argc, argv), return what it returns. */
int run_tcc(const char *src, int argc, char **argv);
#endif
