/* tok_int.h: what the tokenizer's files share (tok_*.c).  Not for the run
 * loop: that uses tok.h.
 *
 * One lm_tok holds the vocabulary as a table of pieces (id -> bytes, kind,
 * score), the special tokens that are split out of the text before the
 * model sees it, and the parts of one algorithm (see enum tok_algo). */
#ifndef LM_TOK_INT_H
#define LM_TOK_INT_H

#include "tok.h"
#include "rt.h"

#include <stdint.h>

/* ---- growable byte buffer ---- */
typedef struct { char *p; size_t n, cap; } tok_buf;
void buf_put(tok_buf *b, const void *s, size_t n);
void buf_putc(tok_buf *b, int c);
void buf_puts(tok_buf *b, const char *s);
char *buf_cstr(tok_buf *b);        /* NUL-terminates in place, returns p */

/* ---- growable int array ---- */
typedef struct { int *p; int n, cap; } tok_ints;
void ints_push(tok_ints *a, int v);

/* ---- UTF-8 ---- */
/* Length of the valid UTF-8 character at S (1..4), 0 when S[0..N) does not
 * start with one.  *PREFIX (if not NULL) is set when S[0..N) is a proper
 * prefix of a valid character, i.e. more bytes could make it valid. */
int utf8_char(const unsigned char *s, size_t n, int *prefix);
int utf8_lead_len(unsigned char c);
int utf8_valid(const char *s, size_t n);
unsigned utf8_cp(const unsigned char *s, int k);  /* the code point of a K-byte character */         /* 1..4 by the lead byte; 1 if bad */
void utf8_put(tok_buf *b, unsigned cp);
extern const char utf8_fffd[3];
/* Appends S with invalid bytes replaced by U+FFFD.  PER_BYTE: one U+FFFD for
 * every byte that is not part of a valid character (SentencePiece);
 * otherwise one per maximal invalid subpart (Python's and Rust's "replace").
 * Unless FINAL, stops before a trailing incomplete character and returns how
 * many bytes it consumed. */
size_t utf8_fix(tok_buf *out, const char *s, size_t n, int per_byte, int final);

/* ---- hashing ---- */
uint64_t tok_hash(const void *s, size_t n);

/* ---- the piece table ---- */
enum tok_kind {
	PK_NORMAL,     /* model text (tiktoken bytes, or text with U+2581) */
	PK_BYTE,       /* byte-fallback piece <0xXX>: decodes to one byte */
	PK_UNUSED,     /* never produced by the model's algorithm */
};
/* A special token (control, unknown, added) decodes to its own text, which
 * may differ from the model's piece: Baichuan's config renames pieces. */
enum { SP_NONE, SP_TEXT, SP_SPLIT /* also split out of input text */ };
typedef struct {
	uint32_t off, len;   /* the model's piece bytes in lm_tok.blob */
	uint32_t soff, slen; /* special: its text in lm_tok.blob */
	float score;         /* SentencePiece / PLaMo score */
	uint8_t kind;        /* enum tok_kind */
	uint8_t byte;        /* PK_BYTE: the byte */
	uint8_t spm_type;    /* SentencePiece type 1..6 (0 elsewhere) */
	uint8_t special;     /* SP_* */
} tok_piece;

/* Map from byte strings to ids, with the keys stored in the piece table: an
 * id's key is its piece bytes.  Open addressing. */
typedef struct { uint32_t *slot; uint32_t mask, n; } tok_map;
void map_add(tok_map *m, const lm_tok *t, int id);   /* keeps the first id of a key */
int map_get(const tok_map *m, const lm_tok *t, const char *s, size_t n); /* -1 if absent */
void map_free(tok_map *m);

/* Map from a 64-bit key to two ints (HF merges: pair -> rank, new id). */
typedef struct { uint64_t *key; int32_t *a, *b; uint32_t mask, n; } tok_map64;
void map64_put(tok_map64 *m, uint64_t key, int a, int b);  /* keeps the first */
int map64_get(const tok_map64 *m, uint64_t key, int *a, int *b);
void map64_free(tok_map64 *m);

/* Byte trie: prefix search for special tokens, user-defined pieces and the
 * Unigram lattices.  Node 0 is the root; value -1 means "no piece ends here". */
typedef struct { tok_map64 edge; tok_ints value; } tok_trie;
void trie_init(tok_trie *tr);
void trie_add(tok_trie *tr, const char *s, size_t n, int value); /* keeps the first */
int trie_step(const tok_trie *tr, int node, unsigned char c);   /* -1: no edge */
/* Longest key that is a prefix of S[0..N): its length, or 0; *VALUE gets it. */
size_t trie_longest(const tok_trie *tr, const char *s, size_t n, int *value);
void trie_free(tok_trie *tr);

/* ---- the pre-tokenizer (PCRE2) ---- */
typedef struct tok_re tok_re;
/* Compiles a tiktoken / HF pattern: \s and \S become Unicode White_Space,
 * and [X&&[^Y]] (class intersection, which PCRE2 lacks) is rewritten. */
tok_re *re_new(const char *pattern, const char *where);
void re_free(tok_re *re);
/* Calls FN for each match in S[0..N), leftmost first (findall); text that no
 * alternative matches is skipped, as tiktoken and HF do. */
typedef void (*re_piece_fn)(void *ctx, const char *s, size_t n);
void re_split(tok_re *re, const char *s, size_t n, re_piece_fn fn, void *ctx);
/* A match that fails (PCRE2's limits) does not end the encoding where it
 * happens, where the encoder's scratch would be lost: re_split records
 * why, and does nothing more until re_split_reset; lm_tok_encode says it. */
const char *re_split_failed(void);
void re_split_reset(void);
char *re_rewrite(const char *pattern, const char *where);  /* exposed for tests */

/* ---- BPE merging on a linked list of symbols with a heap ---- */
typedef struct { int start, len, prev, next, id, frozen; } tok_sym;
/* PAIR decides whether A and B may merge: returns 1 and sets *PRIO (lower
 * merges first; ties go to the leftmost pair) and *ID (the merged id). */
typedef int (*tok_pair_fn)(void *ctx, const tok_sym *a, const tok_sym *b,
			   double *prio, int *id);
/* Merges SYM[0..N) (a chain 0 -> 1 -> ... by prev/next) until no pair
 * qualifies.  Merged-away symbols get len 0; follow next from 0. */
void bpe_merge(tok_sym *sym, int n, tok_pair_fn pair, void *ctx);

/* Pairs of adjacent characters that occur inside vocabulary pieces, and
 * the cutting of a text where no piece spans the boundary (tok_bpe.c).
 * With KNOWN, a cut also needs both characters to be tokens themselves
 * (HF byte fallback turns unknown ones into byte tokens). */
void bigrams_add(tok_map64 *set, const char *s, size_t n);
void bpe_chunks(const tok_map64 *set, const lm_tok *known, const char *s, size_t n,
		re_piece_fn fn, void *ctx);

/* ---- the tokenizer ---- */
enum tok_algo {
	ALGO_RANK,        /* tiktoken: merge the pair whose concatenation ranks lowest */
	ALGO_HF_BPE,      /* HF tokenizer.json: merge list, byte-level or byte fallback */
	ALGO_SPM_BPE,     /* SentencePiece BPE: highest-score concatenation */
	ALGO_SPM_UNIGRAM, /* SentencePiece Unigram: float Viterbi */
	ALGO_PLAMO,       /* PLaMo Unigram: integer scores, right-to-left DP */
};
/* How decoded bytes become text (see tok_decode.c). */
enum tok_dec {
	DEC_RAW,          /* bytes as they are, bad UTF-8 replaced per maximal subpart */
	DEC_SPM,          /* U+2581 -> space, byte runs per character, dummy prefix */
	DEC_HF_SPM,       /* HF decoder chain: Replace, ByteFallback, Fuse, Strip/Metaspace */
};

typedef struct tok_hf tok_hf;
typedef struct tok_spm tok_spm;

struct lm_tok {
	char *path;              /* the tokenizer file */
	char *dir;               /* its directory (configs) */
	char fmt[48];            /* "tiktoken/llama4", "hf/bytelevel", ... */
	char family[16];         /* rank files: "llama3", "llama4", "kimi" */
	int n_base;              /* rank files: ids below are ranks */
	int algo, dec;

	int n, cap;              /* n_vocab, and room in piece[] */
	tok_piece *piece;
	char *blob;
	size_t blob_n, blob_cap;

	tok_map text;            /* piece bytes -> id for the model's pieces */
	tok_trie special;        /* split-out special tokens -> id */
	int n_special;
	unsigned char special_first[256];  /* bytes a special token starts with */
	int byte_id[256];        /* byte -> id (rank files, byte fallback); -1 */

	tok_re *re;              /* pre-tokenizer, or NULL */
	const char *pattern;     /* rank files: its pattern, as the family writes it */
	int chunk_kimi;          /* Kimi: cut whitespace / non-space runs at 25000 */
	int newline_tok;         /* AFM: "\n" is spelled "<n>" (NewlineTokenizer) */

	int bos, add_bos;        /* BOS id (-1) and whether encode adds it */
	tok_ints eos, eot;       /* stop ids, and the chat end-of-turn ids */
	char *bos_text, *eos_text;
	const char *eot_name;    /* the family's end-of-turn token, if known */
	char *chat_template;     /* NULL when the model has none */
	char *template_name;     /* for messages */

	/* decoding (tok_decode.c) */
	int spm_bos_ws;          /* SPM: drop the U+2581 the dummy prefix added */
	int spm_all_ws;          /* SPM remove_extra_whitespaces: all leading ones */
	int strip_start;         /* HF Strip(' ', N, 0) after Fuse: N */
	int metaspace_first;     /* HF Metaspace decoder: no U+2581 in token 0 */
	int unk;                 /* unk id or -1 */

	tok_hf *hf;
	tok_spm *spm;
	tok_trie plamo;          /* PLaMo: piece trie */
	int32_t *iscore;         /* PLaMo: round(score * 1e4) */

	/* what a loader holds while it reads (a file's text, a JSON tree): a
	 * load that fails half-way leaves them to lm_tok_free */
	struct { void *p; void (*free)(void *); } held[16];
};

/* P, held by T until tok_drop(t, P) frees it (FREE: free or tok_put_json). */
void *tok_hold(lm_tok *t, void *p, void (*free)(void *));
void tok_drop(lm_tok *t, void *p);
void tok_put_json(void *o);   /* json_object_put, as a void (*)(void *) */

/* tok_vocab.c: building the piece table.  Every id read from a file is
 * below TOK_MAX_IDS before it indexes anything. */
#define TOK_MAX_IDS (1 << 24)
int vocab_add(lm_tok *t, const char *s, size_t n, int kind);   /* next id */
void vocab_set(lm_tok *t, int id, const char *s, size_t n, int kind);
void vocab_grow(lm_tok *t, int n);   /* ids [0, n) exist (PK_UNUSED, empty) */
static inline const char *piece_text(const lm_tok *t, int id) { return t->blob + t->piece[id].off; }
static inline const char *special_text(const lm_tok *t, int id) { return t->blob + t->piece[id].soff; }
/* Makes ID a special token with text S, also split out of the input text
 * when SPLIT.  The model's own piece text (and t->text) stay as they were. */
void vocab_special(lm_tok *t, int id, const char *s, size_t n, int split);
int vocab_find_special(const lm_tok *t, const char *s);  /* exact; -1 */
int byte_piece(const char *s, size_t n);   /* "<0xXX>" -> XX, else -1 */

/* the format loaders */
void rank_load(lm_tok *t, const char *path);
void hf_load(lm_tok *t, const char *path);
void spm_load(lm_tok *t, const char *path);
void plamo_load(lm_tok *t, const char *path);
/* the encoders of one piece of text with no special tokens in it */
void rank_encode(lm_tok *t, const char *s, size_t n, tok_ints *out);
void hf_encode(lm_tok *t, const char *s, size_t n, int first, tok_ints *out);
void spm_encode(lm_tok *t, const char *s, size_t n, tok_ints *out);
void plamo_encode(lm_tok *t, const char *s, size_t n, tok_ints *out);
void hf_free(tok_hf *h);
/* The HF decoder chain on one token's text (Replace rules, Metaspace);
 * FIRST: the first token of the stream. */
void hf_dec_token(const lm_tok *t, const char *s, size_t n, int first, tok_buf *out);
int hf_dec_bytes(const lm_tok *t);   /* ByteFallback is in the chain */
void hf_newline_rule(lm_tok *t);     /* AFM: the token <n> decodes to "\n" */
void spm_free(tok_spm *s);

/* tok_config.c: config.json, tokenizer_config.json, special tokens */
void config_load(lm_tok *t);
int config_family_hint(const char *dir, char *model_type, size_t cap);

/* small json-c helpers (tok_config.c) */
struct json_object;
struct json_object *json_load(const char *path);   /* NULL if absent; bad -> lm_fail */
const char *json_str(struct json_object *o, const char *key);
/* V as a token id in [0, TOK_MAX_IDS), else -1 (not an int, or out of range). */
int json_id(struct json_object *v);
/* A token given as "text" or {"content": "text"}. */
const char *json_token_text(struct json_object *o);

#endif
