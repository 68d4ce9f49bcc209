/* isa.c: which instruction set every kernel uses, decided once.
 *
 * The kernels come in three versions (AVX-512, AVX2+FMA+F16C, portable C
 * that gcc vectorises for whatever -march the runtime was built with),
 * each compiled with target attributes so that one binary carries all
 * three; nothing outside the runtime sees the choice.  The best path the
 * CPU reports is taken unless LMCC_ISA names another, so that every path
 * can be tested and measured on any machine that has it. */
#define _GNU_SOURCE
#include "rt.h"

#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* The BF16 dot products beyond the chosen path (gemm_bf16.c's), read
 * from CPUID once.  AMX needs the OS too: XCR0 must hold the tile state
 * and Linux (5.16 on) hands it out per process on request; a CPU with the
 * tiles whose kernel says no, or an older kernel, gets the vector kernel
 * instead of a fault at the first tile instruction. */
static int has_bf16, has_amx, is_amd, is_zen5;

static void features(void)
{
	unsigned a = 0, b = 0, c = 0, d = 0, a1 = 0, b1, c1, d1;
	__get_cpuid(0, &a, &b, &c, &d);
	int amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;   /* "AuthenticAMD" */
	__get_cpuid(1, &a, &b, &c, &d);
	unsigned family = (a >> 8 & 0xf) + ((a >> 8 & 0xf) == 0xf ? (a >> 20 & 0xff) : 0);
	is_amd = amd;
	is_zen5 = amd && family >= 26;
	if (lm_isa() != LM_ISA_AVX512 || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return;
	if (a >= 1 && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1))
		has_bf16 = a1 >> 5 & 1;
	int tiles = (d >> 22 & 1) && (d >> 24 & 1);   /* amx-bf16, amx-tile */
	unsigned x1 = 0, lo = 0, hi = 0, e1, b2, d2;
	__get_cpuid(1, &e1, &b2, &x1, &d2);
	if (tiles && has_bf16 && (x1 >> 27 & 1)) {     /* OSXSAVE: xgetbv is allowed */
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
		(void)hi;
		has_amx = (lo >> 17 & 3) == 3
		          && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
	}
}

int lm_cpu_has(const char *what)
{
	if (!strcmp(what, "amd_zen5"))
		return is_zen5;
	/* Whether vdpbf16ps outruns float32 FMAs, by vendor, never by timing
	 * (a timed choice could differ between runs, and --fast's bits with
	 * it).  AMD's Zen 4 and Zen 5 issue it at 1.5 to 2 times their FMA
	 * rate (Zen 4, two threads: 346 against 236 GFLOP/s); Intel's cores
	 * on one port where FMAs take two, at half their FMA rate or less
	 * (a Xeon of family 6 model 207: 230 against 460 GFLOP/s). */
	if (!strcmp(what, "bf16_dot_fast"))
		return has_bf16 && is_amd;
	return !strcmp(what, "avx512_bf16") ? has_bf16 : !strcmp(what, "amx") ? has_amx : 0;
}

/* A bad LMCC_ISA stops a program at start-up, not at its first product. */
__attribute__((constructor)) static void isa_init(void)
{
	lm_isa();
	features();
}
