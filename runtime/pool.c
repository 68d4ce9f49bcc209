/* pool.c: the runtime's worker threads.
 *
 * lm_parallel(n, fn, ctx) cuts [0, n) into one range per thread and runs
 * fn on every range at once, the calling thread taking the first.  Workers
 * spin for a short while between jobs before sleeping: decoding a token
 * issues hundreds of jobs of tens of microseconds each, and waking a
 * sleeping thread costs about as much as one of them. */
#define _GNU_SOURCE
#include "rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum { MAX_THREADS = 64, SPINS = 200000 };

typedef void (*Job)(void *ctx, long lo, long hi);

static struct {
	int n;                       /* threads, the caller included */
	pthread_t tid[MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t wake;
	atomic_long gen;             /* bumped once per job */
	atomic_int pending;          /* workers still running the job */
	Job fn;
	void *ctx;
	long total, align;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Thread i's share of [0, total), cut at multiples of align. */
static void range(int i, long *lo, long *hi)
{
	long units = (P.total + P.align - 1) / P.align;
	*lo = units * i / P.n * P.align;
	*hi = units * (i + 1) / P.n * P.align;
	if (*hi > P.total)
		*hi = P.total;
}

static void *worker(void *arg)
{
	int i = (int)(long)arg;
	long seen = 0;
	for (;;) {
		long g;
		int spins = 0;
		while ((g = atomic_load_explicit(&P.gen, memory_order_acquire)) == seen) {
			if (++spins < SPINS)
				continue;
			pthread_mutex_lock(&P.mu);
			while (atomic_load(&P.gen) == seen)
				pthread_cond_wait(&P.wake, &P.mu);
			pthread_mutex_unlock(&P.mu);
		}
		seen = g;
		if (i >= P.n)
			continue;    /* a thread beyond the current count sits out */
		long lo, hi;
		range(i, &lo, &hi);
		if (lo < hi)
			P.fn(P.ctx, lo, hi);
		atomic_fetch_sub_explicit(&P.pending, 1, memory_order_release);
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
	if (n == 1 || total <= align) {
		if (total > 0)
			fn(ctx, 0, total);
		return;
	}
	P.fn = fn;
	P.ctx = ctx;
	P.total = total;
	P.align = align;
	atomic_store(&P.pending, n - 1);
	pthread_mutex_lock(&P.mu);
	atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
	pthread_cond_broadcast(&P.wake);
	pthread_mutex_unlock(&P.mu);
	long lo, hi;
	range(0, &lo, &hi);
	if (lo < hi)
		fn(ctx, lo, hi);
	while (atomic_load_explicit(&P.pending, memory_order_acquire) > 0)
		;
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
