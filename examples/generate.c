/* generate.c: the lmcc C API on a model, greedy generation from token ids.
 *
 *   generate MODEL_DIR [IDS [WEIGHTS]]   the JIT path: MODEL_DIR compiled now
 *   generate -o [IDS [WEIGHTS]]          a built model's object, linked in
 *                                        (model.c compiled with -DLMCC_LIBRARY)
 *
 * Prints 8 generated ids, comma separated, then checks that a bad input
 * (a token past the vocabulary) comes back as an error, not an exit. */
#include "lmcc_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WITH_OBJECT
#define THE_MODEL lm_this_model()
#else
#define THE_MODEL NULL
#endif

int main(int argc, char **argv)
{
	lm_status st;
	const lm_model *m = THE_MODEL;
	if (argc < 2) {
		fprintf(stderr, "usage: generate MODEL_DIR|-o [IDS]\n");
		return 2;
	}
	if (strcmp(argv[1], "-o") && lm_open_dir(argv[1], &m, &st)) {
		fprintf(stderr, "generate: %s\n", st.msg);
		return st.code;
	}
	if (!m) {
		fprintf(stderr, "generate: built without a model object\n");
		return 2;
	}
	lm_session *s;
	if (lm_session_open(&s, m, argc > 3 ? argv[3] : NULL, 64, &st)) {
		fprintf(stderr, "generate: %s\n", st.msg);
		return st.code;
	}
	int ids[64], n = 0;
	for (char *p = argc > 2 ? argv[2] : "1,2,3"; *p && n < 32; p++) {
		ids[n++] = (int)strtol(p, &p, 10);
		if (!*p)
			break;
	}
	uint64_t rng = 1;
	for (int g = 0; g < 8; g++) {
		int id;
		if (lm_session_feed(s, g ? &ids[n - 1] : ids, g ? 1 : n, &st)
		    || lm_session_sample(s, 0, 1, 0, &rng, &id, &st)) {
			fprintf(stderr, "generate: %s\n", st.msg);
			return st.code;
		}
		printf("%s%d", g ? "," : "", id);
		ids[n++] = id;
	}
	printf("\n");
	int bad = (int)lm_session_vocab(s);
	int rc = lm_session_feed(s, &bad, 1, &st);
	printf("bad token: status %d: %s\n", rc, st.msg);
	lm_session_free(s);
	return rc == LM_ERR_INPUT ? 0 : 1;
}
