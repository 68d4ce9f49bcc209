/* tok.h: text in, text out.  The tokenizers of the model families, their
 * chat templates and an incremental (streaming) decoder, as the run loop and
 * `lmcc tokenize` / `lmcc detokenize` use them.
 *
 * Formats (tests/tokenizers/FORMATS.md is the specification):
 *   tiktoken rank files (Llama 3, Llama 4 tokenizer.model, Kimi tiktoken.model)
 *   Hugging Face tokenizer.json (byte-level BPE; SentencePiece-derived BPE
 *     with metaspace and byte fallback, AFM's <n> newline token)
 *   SentencePiece .model protobuf (BPE and Unigram, byte fallback)
 *   PLaMo tokenizer.jsonl (Unigram with byte fallback)
 * Malformed files end the program through lm_fail (exit 2, one line naming
 * the file and the line or byte offset).
 *
 * An lm_tok is read-only after opening except for its regex match state:
 * use one per thread.  Ids are in [0, n_vocab): a model whose embedding has
 * more rows (PLaMo-2 translate pads 100000 to 100032) must not sample the
 * rest, since decoding an id out of range is lm_fail. */
#ifndef LM_TOK_H
#define LM_TOK_H

#include <stddef.h>

typedef struct lm_tok lm_tok;

/* Detects the format from the files in DIR (tokenizer.json, tokenizer.jsonl,
 * tiktoken.model, tokenizer.model, another single *.model), reading
 * config.json, tokenizer_config.json, special_tokens_map.json and
 * special_tokens.json when present.  NULL when DIR holds no tokenizer file.
 * DIR may also name a tokenizer file itself (then that file is used and its
 * directory supplies the configs). */
lm_tok *lm_tok_open(const char *dir);
void lm_tok_free(lm_tok *t);

int lm_tok_n_vocab(const lm_tok *t);          /* ids are in [0, n_vocab) */
const char *lm_tok_format(const lm_tok *t);   /* e.g. "tiktoken/llama4" */
int lm_tok_bos_id(const lm_tok *t);           /* -1 when unknown */

/* Special tokens are matched first; ADD_BOS prepends BOS only when the
 * family's tokenizer config says BOS is added.  Invalid UTF-8 in TEXT is
 * read as U+FFFD per bad byte.  Returns the count; *ids is malloc'd. */
int lm_tok_encode(lm_tok *t, const char *text, size_t len, int add_bos, int **ids);

/* The whole text of IDS (special tokens as their text), malloc'd and
 * NUL-terminated; *len (if not NULL) gets its length.  An id out of range
 * is lm_fail. */
char *lm_tok_decode(lm_tok *t, const int *ids, int n, size_t *len);

/* Incremental decoding: push ids one at a time and print what comes back.
 * A multi-byte character is never split, and the concatenation of all
 * pushes and the flush equals lm_tok_decode of the same ids. */
typedef struct lm_detok lm_detok;
lm_detok *lm_detok_new(lm_tok *t);
void lm_detok_free(lm_detok *d);
/* Bytes now complete (valid until the next call on D).  To continue a
 * prompt, push the prompt's ids first (and drop or print what they give):
 * the first piece of a stream loses SentencePiece's dummy-prefix space. */
const char *lm_detok_push(lm_detok *d, int id, size_t *n);
/* The rest at the end of the stream; D can then be reused. */
const char *lm_detok_flush(lm_detok *d, size_t *n);

/* Chat: renders the model's template (chat_template in
 * tokenizer_config.json, or chat_template.jinja) over the messages, with
 * bos_token/eos_token set.  NULL when the model has no template.  Encode the
 * result with add_bos = 0: the template writes BOS itself when it wants it. */
typedef struct { const char *role, *content; } lm_chat_msg;
char *lm_tok_chat(lm_tok *t, const lm_chat_msg *msgs, int n, int add_generation_prompt);
/* Use the template in the file PATH instead of the model's. */
void lm_tok_set_chat_template(lm_tok *t, const char *path);

/* Whether generation stops at ID: config.json eos_token_id (int or list,
 * also text_config.eos_token_id) or, when CHAT, the end-of-turn token. */
int lm_tok_is_eos(const lm_tok *t, int id, int chat);

/* `lmcc tokenize DIR [TEXT]` and `lmcc detokenize DIR IDS`: argv[0] is
 * "tokenize" or "detokenize".  Returns the exit status. */
int lm_tok_cli(int argc, char **argv);

#endif
