/* build.c: from source to something that runs.  `lmcc build` writes
 * model.c and compiles it with gcc against the static runtime; `lmcc run`
 * compiles it in memory with libtcc against the shared runtime and calls
 * it, writing no file. */
#define _GNU_SOURCE
#include "build.h"
#include "../runtime/rt.h"

#include <errno.h>
#include <libtcc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where lmcc finds its templates, the runtime's headers and libraries:
 * beside the executable in the source tree (templates/, runtime/), or,
 * installed as PREFIX/bin/lmcc, in PREFIX/share/lmcc/templates,
 * PREFIX/include/lmcc and PREFIX/lib.  Found relative to the executable,
 * so an installed tree can be moved (or staged under DESTDIR). */
const Install *lmcc_layout(void)
{
	static Install l;
	static char dir[PATH_MAX];
	if (l.templates)
		return &l;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
	if (n <= 0)
		lm_bug("cannot find the lmcc executable: %s", strerror(errno));
	dir[n] = 0;
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	char *t = lm_path(dir, "templates");
	struct stat st;
	if (!stat(t, &st) && S_ISDIR(st.st_mode)) {
		l.templates = t;
		l.include = l.lib = lm_path(dir, "runtime");
		return &l;
	}
	free(t);
	char *prefix = lm_path(dir, "..");
	l.templates = lm_path(prefix, "share/lmcc/templates");
	l.include = lm_path(prefix, "include/lmcc");
	l.lib = lm_path(prefix, "lib");
	free(prefix);
	if (stat(l.templates, &st) || !S_ISDIR(st.st_mode))
		lm_fail(l.templates, "lmcc's templates are not here, nor in %s/templates: "
		        "an incomplete installation", dir);
	return &l;
}

/* mkdir -p */
void make_dirs(const char *path)
{
	char *p = lm_strdup(path);
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || !*s) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0777) && errno != EEXIST)
				lm_fail(p, "cannot create directory: %s", strerror(errno));
			if (!c)
				break;
			*s = c;
		}
	}
	free(p);
}

/* PATH.<pid>.SUFFIX: a name no other lmcc shares. */
static char *private_name(const char *path, const char *suffix)
{
	size_t n = strlen(path) + 48;
	char *p = lm_alloc(n);
	snprintf(p, n, "%s.%ld.%s", path, (long)getpid(), suffix);
	return p;
}

/* Two `lmcc build` into one directory must not compile each other's
 * model.c: write_text replaces PATH whole by a rename, and keeps a private
 * hard link to what it wrote, which compile_gcc compiles instead of PATH.
 * The link goes at exit, whatever the way out. */
static char *kept_path, *kept_copy;

static void drop_kept(void)
{
	if (kept_copy)
		unlink(kept_copy);
}

void write_text(const char *path, const char *text)
{
	char *tmp = private_name(path, "tmp");
	FILE *f = fopen(tmp, "w");
	if (!f)
		lm_fail(path, "cannot create: %s", strerror(errno));
	fputs(text, f);
	if (fclose(f)) {
		unlink(tmp);
		lm_fail(path, "write error: %s", strerror(errno));
	}
	size_t n = strlen(path);
	if (n > 2 && !strcmp(path + n - 2, ".c")) {   /* only sources are compiled */
		if (!kept_copy)
			atexit(drop_kept);
		else
			unlink(kept_copy);
		free(kept_path);
		free(kept_copy);
		kept_path = lm_strdup(path);
		kept_copy = private_name(path, "c");
		if (link(tmp, kept_copy)) {
			free(kept_copy);
			kept_copy = NULL;
		}
	}
	if (rename(tmp, path)) {
		unlink(tmp);
		lm_fail(path, "cannot replace: %s", strerror(errno));
	}
	free(tmp);
}

void compile_gcc(const char *src, const char *exe, int mpi)
{
	const Install *l = lmcc_layout();
	char *lib = lm_path(l->lib, mpi ? "liblmcc-mpi.a" : "liblmcc.a");
	char *tmp = private_name(exe, "tmp");
	const char *cc = getenv("CC");
	if (!cc || !*cc)
		cc = "gcc";
	if (mpi) {          /* mpicc: gcc with Open MPI's flags and libraries */
		if (access(lib, R_OK))
			lm_fail(lib, "--mpi: this lmcc's runtime was built without MPI (make MPI=1 "
			        "installs Open MPI and builds it)");
		cc = "mpicc";
	}
	if (kept_copy && !strcmp(kept_path, src))
		src = kept_copy;
	/* LMCC_CFLAGS: extra words for gcc (make test-asan builds the models
	 * with the sanitizer of the runtime they link) */
	char *extra = lm_strdup(getenv("LMCC_CFLAGS") ? getenv("LMCC_CFLAGS") : "");
	const char *argv[48] = { cc, "-O2", "-std=gnu11", "-I", l->include, "-o", tmp, src, lib,
		"-lopenblas", "-ljson-c", "-lpcre2-8", "-lmicrohttpd", "-lpthread", "-lm" };
	int argn = 15;
	for (char *w = strtok(extra, " "); w && argn < 47; w = strtok(NULL, " "))
		argv[argn++] = w;
	argv[argn] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		lm_bug("fork: %s", strerror(errno));
	if (pid == 0) {
		execvp(cc, (char **)argv);
		fprintf(stderr, "lmcc: cannot run %s: %s\n", cc, strerror(errno));
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		lm_bug("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		unlink(tmp);
		lm_bug("%s failed on %s", cc, src);
	}
	if (rename(tmp, exe)) {
		unlink(tmp);
		lm_fail(exe, "cannot replace: %s", strerror(errno));
	}
	free(extra);
	free(tmp);
	free(lib);
}

static void tcc_error(void *opaque, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "lmcc: tcc: %s\n", msg);
}

int run_tcc(const char *src, int argc, char **argv)
{
	const Install *l = lmcc_layout();
	TCCState *s = tcc_new();
	if (!s)
		lm_bug("tcc_new failed");
	tcc_set_error_func(s, NULL, tcc_error);
	tcc_set_output_type(s, TCC_OUTPUT_MEMORY);
	tcc_add_include_path(s, l->include);
	tcc_add_library_path(s, l->lib);
	tcc_define_symbol(s, "LMCC_JIT", "1");
	if (tcc_compile_string(s, src) < 0)
		lm_bug("tcc could not compile the generated model");
	if (tcc_add_library(s, "lmcc") < 0)
		lm_bug("tcc could not load %s/liblmcc.so", l->lib);
	if (tcc_relocate(s, TCC_RELOCATE_AUTO) < 0)
		lm_bug("tcc could not link the generated model");
	int (*entry)(int, char **) = (int (*)(int, char **))tcc_get_symbol(s, "lm_entry");
	if (!entry)
		lm_bug("the generated model has no lm_entry");
	int rc = entry(argc, argv);
	fflush(stdout);
	tcc_delete(s);
	return rc;
}
