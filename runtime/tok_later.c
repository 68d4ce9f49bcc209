/* tok_later.c: the formats not written yet; opening one says so. */
#include "tok_int.h"

void hf_load(lm_tok *t, const char *path) { lm_fail(path, "tokenizer.json is not supported yet"); }
void hf_encode(lm_tok *t, const char *s, size_t n, int first, tok_ints *out) { lm_bug("hf_encode"); }
void hf_free(tok_hf *h) {}
void hf_dec_token(const lm_tok *t, const char *s, size_t n, int first, tok_buf *out) { lm_bug("hf_dec_token"); }
int hf_dec_bytes(const lm_tok *t) { return 0; }
