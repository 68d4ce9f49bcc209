/* harness.h: what the test programs and the fuzz targets share. */
#ifndef LM_TEST_HARNESS_H
#define LM_TEST_HARNESS_H
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The process's resident memory, in MB. */
static inline long resident_mb(void)
{
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f && fscanf(f, "%*s %ld", &pages) != 1)
		pages = 0;
	if (f)
		fclose(f);
	return pages * sysconf(_SC_PAGESIZE) >> 20;
}

#ifdef LM_SRV_H
/* A request body parsed into a job and freed, as the server's complete()
 * does it, catching a failure of the template or the tokenizer: 0 when
 * one raised. */
static inline int parse_request(Srv *s, lm_tok *tok, int chat, const char *body, size_t len)
{
	Job *j = lm_alloc(sizeof *j);
	int status, raised = 0;
	char *err = NULL;
	lm_err fail;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	if (lm_catch(&fail)) {
		raised = 1;
	} else {
		api_parse(s, tok, chat, body, len, j, &status, &err);
		lm_err_pop(&fail);
	}
	free(err);
	job_free(j);
	return !raised;
}
#endif
#endif
