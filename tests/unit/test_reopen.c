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
 *   test_reopen ad DIR N     DIR's adapter fails to open N times
 *   test_reopen jit DIR N    the C API's lm_open_dir of DIR fails N times
 *   test_reopen session MODEL WEIGHTS CTX N
 *                            the C API: MODEL compiled (lm_open_dir), then
 *                            N sessions on WEIGHTS (- for MODEL's own) for
 *                            CTX tokens opened, each failing or freed:
 *                            "failed K grew MB"
 */
#include "rt.h"
#include "lmcc_api.h"
#include "text/tok.h"
#include "srv.h"
#include "harness.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CK, TOK, AD, JIT };

/* 1 when opening failed (with exit status 2), after printing why */
static int fails(int what, const char *dir)
{
	lm_err err;
	if (lm_catch(&err)) {
		if (err.code != 2)
			printf("exit status %d: %s\n", err.code, err.msg);
		return err.code == 2;
	}
	if (what == TOK) {
		lm_tok_free(lm_tok_open(dir));
	} else if (what == CK) {
		lm_ck_close(lm_ck_open(dir));
	} else if (what == AD) {
		lm_adapter a;
		lm_ck_close(lm_adapter_open(dir, &a, NULL));
		free((char *)a.keys);
	} else {
		const lm_model *m;
		lm_status st;
		if (lm_open_dir(dir, &m, &st))
			lm_fail(NULL, "%s", st.msg);
	}
	lm_err_pop(&err);
	return 0;
}

/* 1 when the session failed to open (status 2), 0 when it opened and was
 * freed */
static int session_fails(const lm_model *m, const char *weights, long ctx)
{
	lm_session *s;
	lm_status st;
	int rc = lm_session_open(&s, m, weights, ctx, &st);
	if (rc && rc != 2)
		printf("status %d: %s\n", rc, st.msg);
	lm_session_free(s);
	return rc == 2;
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
	static const char *what[] = {[CK] = "ck", [TOK] = "tok", [AD] = "ad", [JIT] = "jit"};
	for (int w = 0; argc == 4 && w < 4; w++) {
		if (strcmp(argv[1], what[w]))
			continue;
		int n = atoi(argv[3]), failed = 0;
		long base = 0;
		for (int i = 0; i < n; i++) {
			failed += fails(w, argv[2]);
			if (i == 0)
				base = resident_mb();
		}
		printf("failed %d grew %ld\n", failed, resident_mb() - base);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "session")) {
		const lm_model *m;
		lm_status st;
		if (lm_open_dir(argv[2], &m, &st))
			return printf("lm_open_dir: %s\n", st.msg), 1;
		const char *weights = strcmp(argv[3], "-") ? argv[3] : NULL;
		int n = atoi(argv[5]), failed = 0;
		long base = 0;
		for (int i = 0; i < n; i++) {
			failed += session_fails(m, weights, atol(argv[4]));
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
	fprintf(stderr, "usage: test_reopen ck DIR | tok|ck|ad|jit DIR N | enc DIR TEXT N | "
	        "req DIR TEMPLATE N | session MODEL WEIGHTS CTX N\n");
	return 1;
}
