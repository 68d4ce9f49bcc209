/* pcache.c: prompt caches on disk (see pcache.h).
 *
 * Layout, little-endian:
 *   "LMCCPC\r\n", u32 version, u32 0, u64 config hash, u64 weights hash,
 *   u64 adapter hash (0: none),
 *   i64 vocab, i64 n, i32 ids[n] (then zeros to a multiple of 8 bytes),
 *   f32 logits[vocab], i64 bytes, the state snapshot (state.c).
 * The snapshot checks itself against the model on restore; everything
 * before it is checked here. */
#define _GNU_SOURCE
#include "rt.h"
#include "pcache.h"
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { VERSION = 1 };
static const char MAGIC[8] = "LMCCPC\r\n";

lm_fp lm_fingerprint(const char *dir, const lm_ckpt *ck, const lm_ckpt *ad)
{
	char *path = lm_path(dir, "config.json");
	size_t len = 0;
	char *cfg = lm_read_file(path, &len);
	lm_fp fp = {lm_hash(0xcbf29ce484222325ull, cfg ? cfg : "", len),
	            lm_ck_fingerprint(ck), ad ? lm_ck_fingerprint(ad) : 0};
	free(cfg);
	free(path);
	return fp;
}

typedef struct { const char *p; size_t at, n; const char *path; } Rd;

static const void *rd(Rd *r, size_t n, const char *what)
{
	if (n > r->n - r->at)
		lm_fail(r->path, "prompt cache truncated in its %s", what);
	r->at += n;
	return r->p + r->at - n;
}

static int64_t rd64(Rd *r, const char *what)
{
	int64_t v;
	memcpy(&v, rd(r, 8, what), 8);
	return v;
}

long lm_pcache_load(const char *path, lm_fp fp, lm_state *s, long vocab,
                    const int *tok, long n, float *last)
{
	size_t size;
	char *buf = lm_read_file(path, &size);
	if (!buf) {
		if (errno != ENOENT)
			lm_fail(path, "cannot read the prompt cache: %s", strerror(errno));
		return 0;
	}
	Rd r = {buf, 0, size, path};
	if (memcmp(rd(&r, 8, "magic"), MAGIC, 8))
		lm_fail(path, "not an lmcc prompt cache");
	uint32_t ver;
	memcpy(&ver, rd(&r, 8, "version"), 4);
	if (ver != VERSION)
		lm_fail(path, "prompt cache version %u; this lmcc reads version %d", ver, VERSION);
	uint64_t cfg = (uint64_t)rd64(&r, "fingerprint"), w = (uint64_t)rd64(&r, "fingerprint");
	uint64_t ad = (uint64_t)rd64(&r, "fingerprint");
	if (cfg != fp.config)
		lm_fail(path, "prompt cache of another model: its config.json differs");
	if (w != fp.weights)
		lm_fail(path, "prompt cache of another model: its weights differ");
	if (ad != fp.adapter)
		lm_fail(path, "prompt cache of another model: %s", !ad ? "it was made without an adapter"
		        : !fp.adapter ? "it was made with an adapter" : "its adapter differs");
	if (rd64(&r, "vocab") != vocab)
		lm_fail(path, "prompt cache: vocab does not match the model's %ld", vocab);
	int64_t nc = rd64(&r, "token count");
	if (nc < 1 || nc > (int64_t)(size / 4))
		lm_fail(path, "prompt cache: token count %lld is impossible", (long long)nc);
	const int32_t *ids = rd(&r, (nc * 4 + 7) / 8 * 8, "token ids");
	const float *lg = rd(&r, vocab * sizeof(float), "logits");
	int64_t bytes = rd64(&r, "state size");
	if (bytes < 0 || (uint64_t)bytes != size - r.at)
		lm_fail(path, "prompt cache: state of %lld bytes in %zu left", (long long)bytes,
		        size - r.at);
	if (!lm_state_restore(s, 1, buf + r.at, (size_t)bytes)) {
		fprintf(stderr, "lmcc: %s: the prompt cache's state does not fit this run "
		        "(a shorter --ctx?): starting afresh\n", path);
		free(buf);
		lm_state_cut(s, 0);
		return 0;
	}
	long k = 0;
	while (k < nc && k < n && ids[k] == tok[k])
		k++;
	/* the logits after the last token held are known only when that is
	 * the cache's own last token; otherwise one token is fed again */
	long keep = k == n && k != nc ? k - 1 : k;
	if (keep < 0 || !lm_state_cut(s, keep)) {
		lm_state_cut(s, 0);
		keep = 0;
	}
	if (keep == n)
		memcpy(last, lg, vocab * sizeof(float));
	free(buf);
	return keep;
}

long lm_pcache_count(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char h[56];
	int64_t n = 0;
	if (f && fread(h, 1, sizeof h, f) == sizeof h && !memcmp(h, MAGIC, 8))
		memcpy(&n, h + 48, 8);
	if (f)
		fclose(f);
	return n > 0 && n < (1L << 30) ? (long)n : 0;
}

static void wr(FILE *f, const void *p, size_t n, const char *path)
{
	if (n && fwrite(p, 1, n, f) != n)
		lm_fail(path, "write error: %s", strerror(errno));
}

static void wr64(FILE *f, int64_t v, const char *path)
{
	wr(f, &v, 8, path);
}

void lm_pcache_save(const char *path, lm_fp fp, const lm_state *s, long vocab,
                    const int *tok, long n, const float *last)
{
	char *tmp;
	if (asprintf(&tmp, "%s.tmp%ld", path, (long)getpid()) < 0)
		lm_bug("out of memory");
	FILE *f = fopen(tmp, "wb");
	if (!f)
		lm_fail(tmp, "cannot write the prompt cache: %s", strerror(errno));
	uint32_t ver[2] = {VERSION, 0};
	wr(f, MAGIC, 8, tmp);
	wr(f, ver, 8, tmp);
	wr64(f, (int64_t)fp.config, tmp);
	wr64(f, (int64_t)fp.weights, tmp);
	wr64(f, (int64_t)fp.adapter, tmp);
	wr64(f, vocab, tmp);
	wr64(f, n, tmp);
	for (long i = 0; i < n; i++) {
		int32_t v = tok[i];
		wr(f, &v, 4, tmp);
	}
	wr(f, "\0\0\0\0", (n * 4 + 7) / 8 * 8 - n * 4, tmp);
	wr(f, last, vocab * sizeof(float), tmp);
	size_t bytes = lm_state_bytes(s, 1);
	char *st = lm_alloc(bytes);
	lm_state_save(s, 1, st);
	wr64(f, (int64_t)bytes, tmp);
	wr(f, st, bytes, tmp);
	free(st);
	if (fclose(f))
		lm_fail(tmp, "write error: %s", strerror(errno));
	if (rename(tmp, path))
		lm_fail(path, "cannot write the prompt cache: %s", strerror(errno));
	free(tmp);
}
