/* fuzz_target.c: libFuzzer targets for the files lmcc reads from the
 * internet, one per build (-DTARGET=...):
 *
 *   jinja   a chat template, parsed and rendered with a small conversation
 *   config  config.json, read into a plan (compiler/, every model_type)
 *   st      a safetensors header and data (model.safetensors)
 *   index   model.safetensors.index.json naming shards
 *   tokjson tokenizer.json; tokrank a tiktoken rank file; tokspm a
 *           SentencePiece .model; tokjsonl PLaMo's tokenizer.jsonl
 *   adapter a LoRA adapter laid onto one of the five golden-mlx LoRA
 *           cases' plans (byte 0 picks it): adapter_config.json up to
 *           the first NUL, then the JSON header of adapters.safetensors
 *           (the harness adds its length and 256 KB of zero data)
 *   http    a request body of /v1/chat/completions (first byte odd) or
 *           /v1/completions, parsed as the server does, through the
 *           afm7_newline test tokenizer and its chat template
 *
 * Bad input ends in lm_fail, which exits; here an lm_err catches it
 * instead, so one process runs millions of inputs.  What lmcc allocated
 * for a failed input, it frees (the C API and the server need that), so
 * memory that grows from input to input is a finding too, as are a
 * crash, a hang and a sanitizer report. */
#include "rt.h"
#include "text/jinja.h"
#include "text/tok.h"
#include "../../compiler/plan.h"
#include "../../compiler/adapter.h"
#include "srv.h"
#include "../unit/harness.h"

#include <json-c/json.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* A private directory in /dev/shm holding NAME with the input's bytes. */
static const char *put(const char *name, const uint8_t *d, size_t n)
{
	static char dir[64], path[128];
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/dev/shm/lmcc-fuzz-%d", (int)getpid());
		mkdir(dir, 0700);
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(d, 1, n, f) != n || fclose(f))
		abort();
	return dir;
}

#if defined(TARGET_http)
static lm_tok *tok;   /* read once, outside the time limit of an input */
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
#if defined(TARGET_http)
	tok = lm_tok_open("tests/tokenizers/afm7_newline");
#endif
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	lm_err err;
	if (lm_catch(&err))
		return 0;   /* bad input, said so: popped already */
#if defined(TARGET_jinja)
	static const char ctx_text[] = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
		"{\"role\": \"user\", \"content\": \"Hi <b>there</b>\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"}],"
		"\"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}";
	static struct json_object *ctx;
	static char *src;   /* static: a failed render longjmps past its free */
	free(src);
	src = malloc(n + 1);
	memcpy(src, d, n);
	src[n] = 0;
	if (!ctx)
		ctx = json_tokener_parse(ctx_text);
	/* a small budget, so that a slow input is a finding of seconds, not minutes */
	free(lm_jinja_render_limited("fuzz.jinja", src, ctx, 64 << 20, 2000000));
#elif defined(TARGET_config)
	Plan p;
	const char *dir = put("config.json", d, n);
	char path[160];
	snprintf(path, sizeof path, "%s/config.json", dir);
	plan_read(&p, path, dir, 0);
	plan_free(&p);
#elif defined(TARGET_adapter)
	static const char *const base[] = {"afm7_lora", "baichuan_lora", "kimi_lora", "llama4_lora", "plamo2_lora"};
	static uint8_t zeros[256 << 10];
	if (n < 1)
		goto out;
	const uint8_t *cut = memchr(d + 1, 0, n - 1);
	size_t nc = cut ? (size_t)(cut - d - 1) : n - 1, nh = cut ? n - 2 - nc : 0;
	uint8_t *st = malloc(8 + nh + sizeof zeros);
	for (int i = 0; i < 8; i++)
		st[i] = (uint8_t)((uint64_t)nh >> 8 * i);
	memcpy(st + 8, cut ? cut + 1 : d, nh);
	memcpy(st + 8 + nh, zeros, sizeof zeros);
	put("adapter_config.json", d + 1, nc);
	const char *dir = put("adapters.safetensors", st, 8 + nh + sizeof zeros);
	free(st);
	char cfg[128], bdir[128];
	snprintf(bdir, sizeof bdir, "tests/golden-mlx/%s", base[d[0] % 5]);
	snprintf(cfg, sizeof cfg, "%s/config.json", bdir);
	static Plan p;   /* static: a failed read leaves it to the next input */
	plan_free(&p);
	memset(&p, 0, sizeof p);
	plan_read(&p, cfg, bdir, 0);
	adapter_read(&p, dir);
	adapter_free(&p);
#elif defined(TARGET_http)
	static lm_model m;
	static lm_serve_opts o;
	static Srv srv;
	if (!srv.m) {
		m.vocab = lm_tok_n_vocab(tok);
		o.samp = (lm_sampler){.temp = 0.7f, .top_p = 1, .repeat_penalty = 1};
		srv = (Srv){.m = &m, .o = &o, .ctx = 4096, .choose = m.vocab};
	}
	if (n < 1)
		goto out;
	parse_request(&srv, tok, d[0] & 1, (const char *)d + 1, n - 1);
#elif defined(TARGET_st) || defined(TARGET_index)
#if defined(TARGET_st)
	const char *dir = put("model.safetensors", d, n);
#else
	static const uint8_t shard[] = "\x0e\0\0\0\0\0\0\0{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
	const char *dir = put("model.safetensors.index.json", d, n);
	put("s1.safetensors", shard, sizeof shard - 1);
#endif
	lm_ck_close(lm_ck_open(dir));
#else   /* the tokenizer formats */
#if defined(TARGET_tokjson)
	const char *dir = put("tokenizer.json", d, n);
#elif defined(TARGET_tokrank)
	const char *dir = put("tokenizer.model", d, n);
#elif defined(TARGET_tokspm)
	const char *dir = put("tokenizer.model", d, n);
#else
	const char *dir = put("tokenizer.jsonl", d, n);
#endif
	lm_tok *t = lm_tok_open(dir);
	if (t) {
		int *ids = NULL;
		static const char text[] = "Hello, world! 123 こんにちは\n\t  <s>x</s>";
		lm_tok_encode(t, text, sizeof text - 1, 1, &ids);
		free(ids);
		lm_tok_free(t);
	}
#endif
	goto out;   /* every target ends here */
out:
	lm_err_pop(&err);
	return 0;
}
