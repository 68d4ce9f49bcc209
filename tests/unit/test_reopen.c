/* test_reopen: a checkpoint or a tokenizer that fails to open leaves
 * nothing behind, as the C API and the server need (they catch the
 * failure and go on).
 *
 *   test_reopen ck DIR       DIR/model.safetensors fails to open; then it
 *                            is rewritten in place, and 1.5 s later (the
 *                            change watch ticks once a second) the
 *                            process still runs: prints "alive"
 *   test_reopen tok DIR N    DIR's tokenizer fails to open N times: prints
 *                            "failed N grew MB" (resident, after the first)
 *   test_reopen ck DIR N     the same for DIR's checkpoint
 *   test_reopen enc DIR TEXT N
 *                            TEXT fails to encode with DIR's tokenizer
 *                            N times (its pre-tokenizer regex fails)
 *   test_reopen req DIR TEMPLATE N
 *                            N chat requests of a megabyte each, parsed as
 *                            the server does with DIR's tokenizer and a
 *                            TEMPLATE that raises: "failed N grew MB"
 */
#include "rt.h"
#include "text/tok.h"
#include "srv.h"
#include "harness.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when opening failed (with exit status 2), after printing why */
static int fails(int tok, const char *dir)
{
	lm_err err;
	if (lm_catch(&err)) {
		if (err.code != 2)
			printf("exit status %d: %s\n", err.code, err.msg);
		return err.code == 2;
	}
	if (tok)
		lm_tok_free(lm_tok_open(dir));
	else
		lm_ck_close(lm_ck_open(dir));
	lm_err_pop(&err);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "ck")) {
		char *path = lm_path(argv[2], "model.safetensors");
		if (!fails(0, argv[2]))
			return printf("%s opened\n", path), 1;
		FILE *f = fopen(path, "r+b");   /* in place: the same inode */
		if (!f || fputc('x', f) == EOF || fclose(f))
			return perror(path), 1;
		usleep(1500000);
		printf("alive\n");
		free(path);
		return 0;
	}
	if (argc == 4 && (!strcmp(argv[1], "tok") || !strcmp(argv[1], "ck"))) {
		int n = atoi(argv[3]), failed = 0, tok = !strcmp(argv[1], "tok");
		long base = 0;
		for (int i = 0; i < n; i++) {
			failed += fails(tok, argv[2]);
			if (i == 0)
				base = resident_mb();
		}
		printf("failed %d grew %ld\n", failed, resident_mb() - base);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "enc")) {
		int n = atoi(argv[4]), failed = 0;
		long base = 0;
		lm_tok *tok = lm_tok_open(argv[2]);
		for (int i = 0; i < n; i++) {
			lm_err err;
			int *ids;
			lm_err_push(&err);
			if (setjmp(err.jb)) {
				failed += err.code == 2;
			} else {
				lm_tok_encode(tok, argv[3], strlen(argv[3]), 0, &ids);
				lm_err_pop(&err);
				free(ids);
			}
			if (i == 0)
				base = resident_mb();
		}
		printf("failed %d grew %ld\n", failed, resident_mb() - base);
		lm_tok_free(tok);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "req")) {
		int n = atoi(argv[4]), failed = 0;
		long base = 0;
		lm_tok *tok = lm_tok_open(argv[2]);
		lm_tok_set_chat_template(tok, argv[3]);
		lm_model m = {.vocab = lm_tok_n_vocab(tok)};
		lm_serve_opts o = {.samp = {.top_p = 1, .repeat_penalty = 1}};
		Srv s = {.m = &m, .o = &o, .ctx = 4096, .choose = m.vocab};
		size_t big = 1 << 20;
		char *body = malloc(big + 64);
		int k = snprintf(body, 64, "{\"messages\": [{\"role\": \"user\", \"content\": \"");
		memset(body + k, 'x', big);
		strcpy(body + k + big, "\"}]}");
		for (int i = 0; i < n; i++) {
			failed += !parse_request(&s, tok, 1, body, strlen(body));
			if (i == 0)
				base = resident_mb();
		}
		printf("failed %d grew %ld\n", failed, resident_mb() - base);
		free(body);
		lm_tok_free(tok);
		return 0;
	}
	fprintf(stderr, "usage: test_reopen ck DIR | tok|ck DIR N | enc DIR TEXT N | req DIR TEMPLATE N\n");
	return 1;
}
