/* replay.c: runs fuzz_target.c's target (built with the same -DTARGET_x)
 * on each file named, whole, as libFuzzer runs one input, so that the
 * inputs the fuzzers found (tests/fuzz/found/TARGET/) stay regression
 * cases of make test, with gcc, without clang.  The verdict is the
 * process's: a crash, a hang or, under ASan, a leak or a bad access is
 * the failure; bad input refused as it should be is not. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *d = NULL;
		long n;
		if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)
		    || !(d = malloc(n + 1)) || fread(d, 1, n, f) != (size_t)n) {
			fprintf(stderr, "replay: cannot read %s\n", argv[i]);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(d, n);
		free(d);
	}
	char dir[64];   /* where the target's put() wrote the inputs as files */
	snprintf(dir, sizeof dir, "/dev/shm/lmcc-fuzz-%d", (int)getpid());
	nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
	printf("replayed %d\n", argc - 1);
	return 0;
}
