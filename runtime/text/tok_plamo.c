/* tok_plamo.c: PLaMo-2's tokenizer.jsonl, a Unigram model over code points
 * of the raw text with byte fallback.
 *
 * Line k is token k: [piece, score, type, ...] (extra fields ignored);
 * types NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE (<0xXX>).
 * Scores become integers s = round(score * 1e4), half to even as Python's
 * round().  The cost is found right to left: cost[n] = 0 and cost[i] is the
 * least cost[i + len(p)] - s(p) over the pieces p that start at i, tried
 * longest first and replaced only when strictly smaller (ties go to the
 * longer piece), then "unknown character", cost[i + 1] + 10 000 000, whose
 * bytes are emitted as <0xXX> tokens.  Every non-BYTE row is a candidate. */
#include "tok_int.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNKNOWN_COST 10000000

static int row_type(const char *s)
{
	static const char *const NAMES[] = { "NORMAL", "UNKNOWN", "CONTROL",
		"USER_DEFINED", "UNUSED", "BYTE" };
	int i;
	for (i = 0; i < 6; i++)
		if (strcmp(s, NAMES[i]) == 0)
			return i + 1;
	return 0;
}

static void free_tokener(void *tk)
{
	json_tokener_free(tk);
}

void plamo_load(lm_tok *t, const char *path)
{
	size_t len, pos = 0;
	char *data = lm_read_text(path, &len);
	struct json_tokener *tk;
	int line = 0, i;
	if (!data)
		lm_fail(path, "cannot read");
	tok_hold(t, data, free);
	tk = tok_hold(t, json_tokener_new(), free_tokener);
	trie_init(&t->plamo);
	while (pos < len) {
		char *nl = memchr(data + pos, '\n', len - pos);
		size_t ln = nl ? (size_t)(nl - data - pos) : len - pos;
		struct json_object *row, *piece, *score, *type;
		const char *text;
		size_t tn;
		int kind, id;
		double sc;
		line++;
		if (ln > (1 << 20))
			lm_fail(path, "line %d: longer than 1 MiB", line);
		json_tokener_reset(tk);
		row = json_tokener_parse_ex(tk, data + pos, (int)ln);
		if (row)
			tok_hold(t, row, tok_put_json);
		pos += ln + 1;
		if (!row || !json_object_is_type(row, json_type_array) || json_object_array_length(row) < 3
		    || !json_object_is_type(piece = json_object_array_get_idx(row, 0), json_type_string)
		    || !(json_object_is_type(score = json_object_array_get_idx(row, 1), json_type_double)
			 || json_object_is_type(score, json_type_int))
		    || !json_object_is_type(type = json_object_array_get_idx(row, 2), json_type_string))
			lm_fail(path, "line %d: expected [piece, score, type]", line);
		text = json_object_get_string(piece);
		tn = json_object_get_string_len(piece);
		kind = row_type(json_object_get_string(type));
		sc = json_object_get_double(score);
		if (!kind)
			lm_fail(path, "line %d: unknown type '%s'", line, json_object_get_string(type));
		if (tn == 0 || !isfinite(sc) || fabs(sc) > 1e5)
			lm_fail(path, "line %d: empty piece or bad score", line);
		id = vocab_add(t, text, tn, PK_NORMAL);
		/* Integer scores, as the reference keeps them (a float would not
		 * hold them exactly). */
		if (id % 4096 == 0)
			t->iscore = lm_realloc(t->iscore, (id + 4096) * sizeof *t->iscore);
		t->iscore[id] = (int32_t)rint(sc * 1e4);
		t->piece[id].score = (float)sc;
		t->piece[id].spm_type = kind;
		if (kind == 6) {
			int b = byte_piece(text, tn);
			if (b < 0)
				lm_fail(path, "line %d: BYTE row is not <0xXX>", line);
			t->piece[id].kind = PK_BYTE;
			t->piece[id].byte = b;
			t->byte_id[b] = id;
			tok_drop(t, row);
			continue;
		}
		if (map_get(&t->text, t, text, tn) >= 0)
			lm_fail(path, "line %d: piece given twice", line);
		map_add(&t->text, t, id);
		trie_add(&t->plamo, text, tn, id);
		/* CONTROL rows are the special tokens the HF wrapper splits out;
		 * UNKNOWN ones decode to their text but stay ordinary text. */
		if (kind == 3 || kind == 2)
			vocab_special(t, id, text, tn, kind == 3);
		tok_drop(t, row);
	}
	tok_drop(t, tk);
	tok_drop(t, data);
	for (i = 0; i < 256; i++)
		if (t->byte_id[i] < 0)
			lm_fail(path, "no BYTE row <0x%02X>", i);
	t->algo = ALGO_PLAMO;
	t->dec = DEC_RAW;
	/* BOS for templates and add_bos; the configs may name it instead. */
	if (vocab_find_special(t, "<|plamo:bos|>") >= 0)
		t->bos_text = lm_strdup("<|plamo:bos|>");
	else if (vocab_find_special(t, "<s>") >= 0)
		t->bos_text = lm_strdup("<s>");
	snprintf(t->fmt, sizeof t->fmt, "plamo/unigram");
}

void plamo_encode(lm_tok *t, const char *s, size_t n, tok_ints *out)
{
	int64_t *cost = lm_alloc((n + 1) * sizeof *cost);
	int *pick = lm_alloc((n + 1) * sizeof *pick), *step = lm_alloc((n + 1) * sizeof *step);
	int *starts = lm_alloc((n + 1) * sizeof *starts);
	tok_ints m = { 0 };   /* pairs: id, length of the pieces found at a start */
	size_t i;
	int nc = 0, c;
	for (i = 0; i < n; i += utf8_lead_len((unsigned char)s[i]))
		starts[nc++] = (int)i;
	cost[n] = 0;
	for (c = nc - 1; c >= 0; c--) {
		size_t at = starts[c], k, next = c + 1 < nc ? (size_t)starts[c + 1] : n;
		int node = 0, j;
		/* the pieces that start here, shortest first */
		m.n = 0;
		for (k = at; k < n; k++) {
			node = trie_step(&t->plamo, node, (unsigned char)s[k]);
			if (node < 0)
				break;
			if (t->plamo.value.p[node] >= 0) {
				ints_push(&m, t->plamo.value.p[node]);
				ints_push(&m, (int)(k + 1 - at));
			}
		}
		cost[at] = INT64_MAX;
		for (j = m.n - 2; j >= 0; j -= 2) {
			int id = m.p[j], len = m.p[j + 1];
			int64_t v = cost[at + len] - t->iscore[id];
			if (v < cost[at]) {
				cost[at] = v;
				pick[at] = id;
				step[at] = len;
			}
		}
		if (cost[next] + UNKNOWN_COST < cost[at]) {
			cost[at] = cost[next] + UNKNOWN_COST;
			pick[at] = -1;
			step[at] = (int)(next - at);
		}
	}
	for (i = 0; i < n; i += step[i]) {
		if (pick[i] >= 0) {
			ints_push(out, pick[i]);
		} else {
			int b;
			for (b = 0; b < step[i]; b++)
				ints_push(out, t->byte_id[(unsigned char)s[i + b]]);
		}
	}
	free(cost);
	free(pick);
	free(step);
	free(starts);
	free(m.p);
}
