/* fuzz_target.c: libFuzzer targets for the files lmcc reads from the
 * internet, one per build (-DTARGET=...):
 *
 *   jinja   a chat template, parsed and rendered with a small conversation
 *   config  config.json, read into a plan (compiler/, every model_type)
 *   st      a safetensors header and data (model.safetensors)
 *   index   model.safetensors.index.json naming shards
 *   tokjson tokenizer.json; tokrank a tiktoken rank file; tokspm a
 *           SentencePiece .model; tokjsonl PLaMo's tokenizer.jsonl
 *
 * Bad input ends in lm_fail, which exits; here an lm_err catches it
 * instead, so one process runs millions of inputs.  What a failed input
 * allocated is lost (run with -detect_leaks=0); a crash, a hang or a
 * sanitizer report is a finding. */
#include "rt.h"
#include "text/jinja.h"
#include "text/tok.h"
#include "../../compiler/plan.h"

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	lm_err err;
	lm_err_push(&err);
	if (setjmp(err.jb))
		return 0;   /* bad input, said so: popped already */
#if defined(TARGET_jinja)
	static const char ctx_text[] = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
		"{\"role\": \"user\", \"content\": \"Hi <b>there</b>\"}, {\"role\": \"assistant\", \"content\": \"Hello.\"}],"
		"\"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}";
	static struct json_object *ctx;
	char *src = malloc(n + 1);
	memcpy(src, d, n);
	src[n] = 0;
	if (!ctx)
		ctx = json_tokener_parse(ctx_text);
	/* a small budget, so that a slow input is a finding of seconds, not minutes */
	free(lm_jinja_render_limited("fuzz.jinja", src, ctx, 64 << 20, 2000000));
	free(src);
#elif defined(TARGET_config)
	Plan p;
	const char *dir = put("config.json", d, n);
	char path[160];
	snprintf(path, sizeof path, "%s/config.json", dir);
	plan_read(&p, path, dir, 0);
	plan_free(&p);
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
	lm_err_pop(&err);
	return 0;
}
