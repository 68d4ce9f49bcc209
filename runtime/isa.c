/* isa.c: which instruction set every kernel uses, decided once.
 *
 * The kernels come in three versions (AVX-512, AVX2+FMA+F16C, portable C
 * that gcc vectorises for whatever -march the runtime was built with),
 * each compiled with target attributes so that one binary carries all
 * three; nothing outside the runtime sees the choice.  The best path the
 * CPU reports is taken unless LMCC_ISA names another, so that every path
 * can be tested and measured on any machine that has it. */
#include "rt.h"

#include <stdlib.h>
#include <string.h>

static const char *names[] = {"portable", "avx2", "avx512"};

const char *lm_isa_name(int isa)
{
	return isa >= 0 && isa <= LM_ISA_AVX512 ? names[isa] : "?";
}

static int best(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
	    && __builtin_cpu_supports("avx512vl"))
		return LM_ISA_AVX512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
	    && __builtin_cpu_supports("f16c"))
		return LM_ISA_AVX2;
	return LM_ISA_PORTABLE;
}

static int choose(void)
{
	int have = best();
	const char *want = getenv("LMCC_ISA");
	if (!want || !*want)
		return have;
	for (int i = 0; i <= LM_ISA_AVX512; i++)
		if (!strcmp(want, names[i])) {
			if (i > have)
				lm_fail("LMCC_ISA", "this CPU cannot run the %s kernels (it has %s at best)",
				        names[i], names[have]);
			return i;
		}
	lm_fail("LMCC_ISA", "unknown instruction set '%.40s' (avx512, avx2 or portable)", want);
}

int lm_isa(void)
{
	/* first called from the constructors below, before any thread */
	static int isa = -1;
	if (isa < 0)
		isa = choose();
	return isa;
}

/* A bad LMCC_ISA stops a program at start-up, not at its first product. */
__attribute__((constructor)) static void isa_init(void)
{
	lm_isa();
}
