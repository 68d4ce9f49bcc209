/* pool.c: the runtime's worker threads.
 *
 * lm_parallel(n, align, fn, ctx) cuts [0, n) into PIECES ranges per
 * thread, and the threads, the caller among them, take the ranges in turn
 * from a shared counter until none is left.  A thread that starts late (a
 * worker woken from sleep) or runs slower (its core shared with another
 * program) takes fewer, so no thread waits at the end for more than the
 * others' last range: with one fixed range per thread, decoding spent a
 * sixth of its time with one thread waiting for the other.  The ranges
 * depend only on n, align and the thread count, never on which thread
 * takes one, so no result depends on the timing.  The caller waits for
 * the ranges taken, not for the workers: one asleep or descheduled when
 * the last range is taken costs the job nothing (waiting for each worker
 * to check in cost an empty job 2 to 50 us on a loaded Zen 3, not
 * waiting 0.02 us).  Workers spin for a short while between jobs before
 * sleeping: decoding a token issues hundreds of jobs of tens of
 * microseconds each, and waking a sleeping thread costs about as much as
 * one of them; a job wakes the sleepers only when there are some. */
#define _GNU_SOURCE
#include "rt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

enum { MAX_THREADS = 64, SPINS = 200000, YIELD = 256, PIECES = 8 };

typedef void (*Job)(void *ctx, long lo, long hi);

/* The next range to take and the job's count of them, in one word
 * (ranges << 32 | k), so that a thread compares k with its own job's
 * count.  A thread that takes a range of a job other than the one it
 * was woken for (a job since begun) runs that job's range: its fields
 * are written before the word, and stay as they are until every range
 * taken is done. */
#define NEXT(ranges, k) ((uint64_t)(ranges) << 32 | (uint64_t)(k))

static struct {
	int n;                       /* threads, the caller included */
	pthread_t tid[MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t wake;
	atomic_long gen;             /* bumped once per job */
	atomic_int sleepers;         /* workers asleep, or about to be */
	_Atomic uint64_t next;       /* NEXT(ranges, k) */
	atomic_long done;            /* ranges of the job finished */
	Job fn;
	void *ctx;
	long total, align, units;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* One turn of a wait: a pause, and every YIELD turns the core to any
 * other thread that wants it (on a busy machine, the very thread waited
 * for may be the one queued behind this one). */
static inline void relax(long turn)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
	if (turn % YIELD == YIELD - 1)
		sched_yield();
}

static __thread int in_job;       /* this thread is running a range of a job */

/* Take ranges until none is left: range k of [0, total) is cut at
 * multiples of align. */
static void run_ranges(void)
{
	uint64_t v = atomic_load_explicit(&P.next, memory_order_acquire);
	for (;;) {
		long ranges = (long)(v >> 32), k = (long)(v & 0xffffffff);
		if (k >= ranges)
			return;
		if (!atomic_compare_exchange_weak_explicit(&P.next, &v, v + 1, memory_order_acquire,
		                                           memory_order_acquire))
			continue;
		long lo = P.units * k / ranges * P.align, hi = P.units * (k + 1) / ranges * P.align;
		if (hi > P.total)
			hi = P.total;
		if (lo < hi) {
			in_job = 1;
			P.fn(P.ctx, lo, hi);
			in_job = 0;
		}
		atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
		v = atomic_load_explicit(&P.next, memory_order_acquire);
	}
}

static void *worker(void *arg)
{
	int i = (int)(long)arg;
	long seen = 0;
	for (;;) {
		long g;
		int spins = 0;
		while ((g = atomic_load_explicit(&P.gen, memory_order_acquire)) == seen) {
			if (++spins < SPINS) {
				relax(spins);
				continue;
			}
			pthread_mutex_lock(&P.mu);
			atomic_fetch_add(&P.sleepers, 1);   /* before gen is read again, as
			                                      * lm_parallel bumps gen before
			                                      * reading this */
			while (atomic_load(&P.gen) == seen)
				pthread_cond_wait(&P.wake, &P.mu);
			atomic_fetch_sub(&P.sleepers, 1);
			pthread_mutex_unlock(&P.mu);
		}
		seen = g;
		if (i < P.n)     /* a thread beyond the current count sits out */
			run_ranges();
	}
	return NULL;
}

static int started = 1;           /* threads running, the caller included */

/* Use n threads from now on (between jobs only).  Workers are started as
 * needed and never stopped: a smaller count leaves some idle. */
void lm_set_threads(int n)
{
	if (n < 1)
		n = 1;
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	for (; started < n; started++)
		if (pthread_create(&P.tid[started], NULL, worker, (void *)(long)started))
			lm_bug("cannot start a worker thread");
	P.n = n;
}

int lm_pool_size(void)
{
	if (!P.n)
		lm_set_threads((int)sysconf(_SC_NPROCESSORS_ONLN));
	return P.n;
}

void lm_parallel(long total, long align, Job fn, void *ctx)
{
	int n = lm_pool_size();
	if (align < 1)
		align = 1;
	/* a job's range asking for a job of its own runs it in place: the
	 * pool holds one job at a time */
	if (n == 1 || total <= align || in_job) {
		if (total > 0)
			fn(ctx, 0, total);
		return;
	}
	P.fn = fn;
	P.ctx = ctx;
	P.total = total;
	P.align = align;
	P.units = (total + align - 1) / align;
	long ranges = P.units < (long)n * PIECES ? P.units : (long)n * PIECES;
	atomic_store_explicit(&P.done, 0, memory_order_relaxed);
	atomic_store_explicit(&P.next, NEXT(ranges, 0), memory_order_release);
	atomic_fetch_add(&P.gen, 1);
	if (atomic_load(&P.sleepers)) {    /* a worker that slept needs waking */
		pthread_mutex_lock(&P.mu);
		pthread_cond_broadcast(&P.wake);
		pthread_mutex_unlock(&P.mu);
	}
	/* The caller takes ranges too, and waits only for the ranges taken:
	 * a worker still asleep or descheduled when the last one is taken
	 * costs this job nothing. */
	run_ranges();
	for (long turn = 0; atomic_load_explicit(&P.done, memory_order_acquire) < ranges; turn++)
		relax(turn);
}

/* A dispatch costs a few microseconds, about what 10^4 floats of the
 * cheapest elementwise step (an add) cost on one core; below that the
 * caller does the work alone. */
enum { EACH_MIN = 1 << 14 };

void lm_each(long total, long align, long floats, void (*fn)(void *ctx, long lo, long hi),
             void *ctx)
{
	if (floats < EACH_MIN) {
		if (total > 0)
			fn(ctx, 0, total);
		return;
	}
	lm_parallel(total, align, fn, ctx);
}

float *lm_scratch(size_t n)
{
	static __thread float *buf;
	static __thread size_t cap;
	if (n > cap) {
		free(buf);
		buf = lm_alloc_aligned(n * sizeof(float));
		cap = n;
	}
	return buf;
}
