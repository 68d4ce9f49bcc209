/* mpi.c: the transport between pipeline stages, over Open MPI (the runtime
 * of a build with MPI: make MPI=1, lmcc build --mpi; mpi_none.c otherwise).
 *
 * Faults end every rank, never leave one waiting: an MPI error (a peer
 * gone, a broken connection) prints what it was and aborts the job; a
 * rank ending with an error (lm_fail) aborts it too; and the SIGTERM
 * mpirun sends the others when one dies is reported by rank 0. */
#define _GNU_SOURCE
#include "rt.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int me, ranks, started, ended;
enum { PIECE = 1 << 30 };    /* MPI counts are ints: larger messages go in pieces */

static void on_error(MPI_Comm *c, int *code, ...)
{
	char s[MPI_MAX_ERROR_STRING];
	int n;
	MPI_Error_string(*code, s, &n);
	fprintf(stderr, "lmcc: rank %d: MPI: %s: another rank ended or the network failed\n", me, s);
	MPI_Abort(MPI_COMM_WORLD, 1);
	_exit(1);
}

static void on_term(int sig)
{
	static const char msg[] = "lmcc: rank 0: stopped: another rank ended (mpirun says which)\n";
	if (me == 0 && write(2, msg, sizeof msg - 1) < 0)
		_exit(1);
	_exit(1);
}

/* exit() before the end: with an error (lm_fail, lm_bug), take every rank
 * down at once rather than leave them waiting for this one's messages. */
static void on_exit_mpi(int status, void *arg)
{
	if (!started || ended)
		return;
	fflush(NULL);
	if (status)
		MPI_Abort(MPI_COMM_WORLD, status);
	ended = 1;
	MPI_Finalize();
}

int lm_net_init(int *rank)
{
	if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
		lm_fail("mpi", "MPI_Init failed");
	started = 1;
	on_exit(on_exit_mpi, NULL);
	MPI_Errhandler eh;
	MPI_Comm_create_errhandler(on_error, &eh);
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, eh);
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_size(MPI_COMM_WORLD, &ranks);
	if (ranks > 1)
		signal(SIGTERM, on_term);
	*rank = me;
	return ranks;
}

void lm_net_send(int to, int tag, const void *p, size_t n)
{
	const char *c = p;
	do {
		int k = n > PIECE ? PIECE : (int)n;
		MPI_Send(c, k, MPI_BYTE, to, tag, MPI_COMM_WORLD);
		c += k;
		n -= k;
	} while (n);
}

void lm_net_recv(int from, int tag, void *p, size_t n)
{
	char *c = p;
	do {
		int k = n > PIECE ? PIECE : (int)n, got;
		MPI_Status st;
		MPI_Recv(c, k, MPI_BYTE, from, tag, MPI_COMM_WORLD, &st);
		MPI_Get_count(&st, MPI_BYTE, &got);
		if (got != k)
			lm_bug("rank %d: %d bytes from rank %d, %d expected (tag %d)", me, got, from, k, tag);
		c += k;
		n -= k;
	} while (n);
}

/* Two buffers: the stream of batch i goes out while batch i + 1 runs. */
static struct {
	void *buf;
	size_t cap;
	MPI_Request req;
} slot[2] = {{0, 0, MPI_REQUEST_NULL}, {0, 0, MPI_REQUEST_NULL}};
static int turn;

void lm_net_post(int to, int tag, const void *p, size_t n)
{
	if (n > PIECE)
		lm_bug("a message of %zu bytes to post", n);
	turn ^= 1;
	MPI_Wait(&slot[turn].req, MPI_STATUS_IGNORE);
	if (n > slot[turn].cap) {
		free(slot[turn].buf);
		slot[turn].buf = lm_alloc(n);
		slot[turn].cap = n;
	}
	memcpy(slot[turn].buf, p, n);
	MPI_Isend(slot[turn].buf, (int)n, MPI_BYTE, to, tag, MPI_COMM_WORLD, &slot[turn].req);
}

void lm_net_gather(const void *mine, void *all, size_t n)
{
	MPI_Allgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, MPI_COMM_WORLD);
}

void lm_net_end(void)
{
	for (int i = 0; i < 2; i++) {
		MPI_Wait(&slot[i].req, MPI_STATUS_IGNORE);
		free(slot[i].buf);
	}
	ended = 1;
	MPI_Finalize();
}
