/* mpi_none.c: the transport of a build without MPI: one process, alone.
 * (mpi.c replaces this file in the runtime a build with MPI links.) */
#include "rt.h"

#include <string.h>

int lm_net_init(int *rank)
{
	*rank = 0;
	return 1;
}

void lm_net_send(int to, int tag, const void *p, size_t n)
{
	lm_bug("no other rank to send to: a build without MPI");
}

void lm_net_post(int to, int tag, const void *p, size_t n)
{
	lm_bug("no other rank to send to: a build without MPI");
}

void lm_net_recv(int from, int tag, void *p, size_t n)
{
	lm_bug("no other rank to receive from: a build without MPI");
}

void lm_net_gather(const void *mine, void *all, size_t n)
{
	memcpy(all, mine, n);
}

void lm_net_end(void)
{
}
