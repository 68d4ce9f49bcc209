/* st.c: the safetensors checkpoint, mapped and checked.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON mapping each tensor name to {dtype, shape, data_offsets: [begin,
 * end]} (offsets relative to the data after the header), then the data.
 * Files come from the internet: every length, offset, dtype and shape is
 * checked before anything points into the mapping, and a bad file stops the
 * program with one line naming the file and the tensor.
 *
 * Weights stay in the mapping in their own dtype (lm_ck_mat); only small
 * vectors and derived matrices are converted to float32 copies, which the
 * checkpoint owns and frees with it. */
#define _GNU_SOURCE
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* The largest released checkpoints have headers of a few MB. */
enum { MAX_HEADER = 100 << 20, MAX_NDIM = 8, MAX_SHARDS = 4096 };
#define MAX_ELEMS (1L << 40)

typedef struct {
	char *name;
	int file, dtype, ndim;       /* dtype -1: a kind lmcc does not read */
	int shard;                   /* file -1: in this shard, not opened yet */
	int used;                    /* bound by the model */
	int filled;                  /* a copied file's: its bytes read in */
	int plain;                   /* views of it handed out as stored */
	int flipped;                 /* stored [..., B, A] at load (flip) */
	char dtype_name[12];         /* as the header names it */
	size_t bytes;
	long shape[MAX_NDIM];
	long numel;
	const unsigned char *data;
} Tensor;

typedef struct {
	char *path;
	unsigned char *map;
	size_t size;
	struct stat st;              /* as opened: a rewrite shows in lm_ck_close */
	int fd;                      /* a copy's source (its tensors read in as bound); -1: mapped */
} File;

struct lm_ckpt {
	char *where;                 /* the file that names the tensors */
	File *files;
	int nfiles;
	/* opened a part at a time (lm_ck_open_part): the shards the index
	 * names, the file each became once opened (-1 before), the index's
	 * hash, and stand-ins for tensors of shards left closed */
	char **shard;
	int nshard, *opened;
	int part;
	uint64_t index_fp;
	Tensor ph[4];
	int nph;
	Tensor *t;
	long nt, cap;                /* open-addressed table, cap a power of 2 */
	void **owned;                /* float32 copies handed out */
	long nowned;
	long serial;                 /* which open this is (lm_ck_serial) */
	/* while a header or the index is read: freed by release when the
	 * reading fails half-way */
	json_object *header, *index;
	void *ranges;
	char **shards;               /* the index's distinct shard names */
	int nshards;
	size_t copying;              /* bytes of the files copied, not mapped */
	double copy_time;            /* seconds spent reading them in */
	struct { void *p; size_t n; } *flips;   /* flipped tensors' memory */
	int nflips;
	size_t flip_bytes, flip_room;
	double flip_time;
};

static const char *dtype_name(int dtype)
{
	static const char *n[] = {"F32", "F16", "BF16", "?", "?", "?", "?", "?", "U32", "U8"};
	return dtype >= 0 && dtype <= LM_U8 ? n[dtype] : "not F32, F16, BF16, U32 or U8";
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static Tensor *slot(lm_ckpt *ck, const char *name)
{
	uint64_t i = hash(name) & (ck->cap - 1);
	while (ck->t[i].name && strcmp(ck->t[i].name, name))
		i = (i + 1) & (ck->cap - 1);
	return &ck->t[i];
}

static void grow(lm_ckpt *ck)
{
	Tensor *old = ck->t;
	long oldcap = ck->cap;
	ck->cap = oldcap ? oldcap * 2 : 1024;
	ck->t = lm_alloc(ck->cap * sizeof(Tensor));
	for (long i = 0; i < oldcap; i++)
		if (old[i].name)
			*slot(ck, old[i].name) = old[i];
	free(old);
}

static int parse_dtype(const char *s)
{
	if (!strcmp(s, "F32"))
		return LM_F32;
	if (!strcmp(s, "F16"))
		return LM_F16;
	if (!strcmp(s, "BF16"))
		return LM_BF16;
	if (!strcmp(s, "U32"))
		return LM_U32;
	if (!strcmp(s, "U8"))
		return LM_U8;
	return -1;
}

static size_t other_dtype_size(const char *s)
{
	static const struct { const char *n; size_t sz; } k[] = {
		{"F64", 8}, {"I64", 8}, {"U64", 8}, {"I32", 4},
		{"I16", 2}, {"U16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1},
		{"F8_E4M3", 1}, {"F8_E5M2", 1},
	};
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
		if (!strcmp(s, k[i].n))
			return k[i].sz;
	return 0;
}

/* A JSON integer that fits in [lo, hi], else -1 (the callers' bounds are
 * all >= 0). */
static long json_long(json_object *o, long lo, long hi)
{
	if (!o || !json_object_is_type(o, json_type_int))
		return -1;
	int64_t v = json_object_get_int64(o);
	if (v < lo || v > hi)
		return -1;
	return (long)v;
}

/* ---- files that change under a running model ----
 * The weights are used in place, in the mapping.  A file truncated under
 * it faults (SIGBUS): the handler names the file and exits 2.  A file
 * rewritten in place changes the weights silently: once a second (a
 * timer) and in lm_ck_close, each file is compared with what was opened,
 * and when the same inode has another size or mtime the run exits 2
 * saying its output may mix two checkpoints.  (A file replaced by a
 * rename leaves the mapped inode as it was: that run goes on.) */
static struct {
	const void *map;
	size_t size;
	const char *path;
	struct stat st;
} mapped[MAX_SHARDS];
static volatile sig_atomic_t nmapped;

static void put_err(const char *s)
{
	if (write(2, s, strlen(s)) < 0)
		return;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	const char *path = "a checkpoint file";
	(void)sig;
	(void)uc;
	for (int i = 0; i < nmapped; i++)
		if ((const char *)si->si_addr >= (const char *)mapped[i].map
		    && (const char *)si->si_addr < (const char *)mapped[i].map + mapped[i].size)
			path = mapped[i].path;
	put_err("lmcc: ");
	put_err(path);
	put_err(": the file shrank while the model was reading it (truncated under it)\n");
	_exit(2);
}

/* 0: as opened (or replaced by a rename); 1: rewritten in place; 2: shorter */
static int changed(const char *path, const struct stat *was)
{
	struct stat now;
	if (stat(path, &now) || now.st_ino != was->st_ino || now.st_dev != was->st_dev)
		return 0;
	if (now.st_size < was->st_size)
		return 2;
	return now.st_size != was->st_size || now.st_mtim.tv_sec != was->st_mtim.tv_sec
	       || now.st_mtim.tv_nsec != was->st_mtim.tv_nsec;
}

static void on_alarm(int sig)
{
	(void)sig;
	for (int i = 0; i < nmapped; i++) {
		int c = changed(mapped[i].path, &mapped[i].st);
		if (c) {
			put_err("lmcc: ");
			put_err(mapped[i].path);
			put_err(c == 2 ? ": the file shrank while the model was reading it (truncated under it)\n"
			        : ": the file was rewritten while the model ran: its output may mix the old and the new weights\n");
			_exit(2);
		}
	}
}

static void watch_mapping(const File *f)
{
	if (!nmapped) {
		struct sigaction sa = {0}, al = {0};
		struct itimerval every = {{1, 0}, {1, 0}};
		sa.sa_sigaction = on_sigbus;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, NULL);
		al.sa_handler = on_alarm;
		al.sa_flags = SA_RESTART;
		sigemptyset(&al.sa_mask);
		sigaction(SIGALRM, &al, NULL);
		setitimer(ITIMER_REAL, &every, NULL);
	}
	if (nmapped < MAX_SHARDS) {
		mapped[nmapped].map = f->map;
		mapped[nmapped].size = f->size;
		mapped[nmapped].path = f->path;
		mapped[nmapped].st = f->st;
		nmapped++;
	}
}

static void unwatch_mapping(const File *f)
{
	for (int i = 0; i < nmapped; i++)
		if (mapped[i].map == f->map) {
			mapped[i] = mapped[nmapped - 1];
			nmapped--;
			break;
		}
	if (!nmapped) {
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, NULL);
	}
}

/* ---- the weights in 2 MB pages ----
 * Decoding reads every weight once a token, and in 4 KB pages the page
 * walks cost it a third of the read rate on some machines (bench_matmul
 * prints the bound in both).  A file is mapped at a 2 MB boundary with
 * MADV_HUGEPAGE: a file the page cache does not hold yet is then read in
 * 2 MB folios where the filesystem has them, which the kernel maps a 2 MB
 * page at a time; a file already cached in 4 KB pages stays in them.
 * With --no-mmap (lm_set_mmap(0)), each file is instead an anonymous
 * region in 2 MB pages, into which a tensor is read when the model binds
 * it on this rank (so a rank reads only its tensors, and untouched parts
 * cost no memory).  That costs the read at load, and the memory is the
 * process's own; it is immune to later changes of the file.  When memory
 * is short or the kernel gives no huge pages, the file is mapped instead. */
static int copy_files;

void lm_set_mmap(int on)
{
	copy_files = !on;
}

unsigned char *lm_map_aligned(size_t size, int fd)
{
	size_t big = 2 << 20, pad = size + big, page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *r = mmap(NULL, pad, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return r;
	unsigned char *a = (unsigned char *)(((uintptr_t)r + big - 1) & ~(uintptr_t)(big - 1));
	void *m = fd >= 0 ? mmap(a, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0)
	          : mmap(a, size, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	if (m == MAP_FAILED) {
		munmap(r, pad);
		return m;
	}
	unsigned char *end = a + (size + page - 1) / page * page;
	if (a > r)
		munmap(r, a - r);
	if (end < r + pad)
		munmap(end, r + pad - end);
	return a;
}

/* A field of /proc/meminfo in bytes, or -1. */
static long meminfo(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long kb = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			kb = atol(line + n + 1);
			break;
		}
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* Why a file of size bytes cannot be copied in 2 MB pages, or NULL. */
static const char *no_copy(const lm_ckpt *ck, size_t size, unsigned char **map)
{
	static char why[160];
	char thp[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f) {
		if (!fgets(thp, sizeof thp, f))
			thp[0] = 0;
		fclose(f);
	}
	if (!f || strstr(thp, "[never]"))
		return "the kernel gives no transparent huge pages";
	long avail = meminfo("MemAvailable");
	if (avail < 0 || ck->copying + size + (512L << 20) > (size_t)avail) {
		char a[32], b[32];
		snprintf(why, sizeof why, "%s of memory available, %s wanted",
		         lm_bytes_str(a, sizeof a, avail < 0 ? 0 : avail),
		         lm_bytes_str(b, sizeof b, (long)(ck->copying + size)));
		return why;
	}
	*map = lm_map_aligned(size, -1);
	if (*map == MAP_FAILED)
		return "no address space";
	if (madvise(*map, size, MADV_HUGEPAGE)) {
		munmap(*map, size);
		return "madvise(MADV_HUGEPAGE) failed";
	}
	return NULL;
}

/* Bytes [at, at + n) of a copied file into its region; what (a tensor's
 * name, or NULL: the header) for messages. */
static void read_in(const File *f, size_t at, size_t n, const char *what)
{
	for (size_t done = 0; done < n;) {
		ssize_t k = pread(f->fd, f->map + at + done, n - done, (off_t)(at + done));
		if (k <= 0)
			lm_fail(f->path, "%s%s%scannot read it: %s", what ? "tensor '" : "", what ? what : "",
			        what ? "': " : "", k ? strerror(errno) : "the file shrank (truncated under it)");
		done += (size_t)k;
	}
}

/* A copied file's tensor, read in when first bound: a file rewritten in
 * place meanwhile (the tensors would mix the two) is an error. */
static void fill(lm_ckpt *ck, Tensor *t)
{
	File *f = &ck->files[t->file];
	if (f->fd < 0 || t->filled || !t->bytes)
		return;
	double t0 = lm_now();
	read_in(f, (size_t)(t->data - f->map), t->bytes, t->name);
	if (changed(f->path, &f->st))
		lm_fail(f->path, "the file was rewritten while its weights were read in");
	t->filled = 1;
	ck->copy_time += lm_now() - t0;
}

/* Tensors of one file whose bytes overlap another's: refused (a crafted
 * header could alias a norm onto a matrix). */
typedef struct { long b, e; const char *name; } Range;

static int by_begin(const void *a, const void *b)
{
	const Range *x = a, *y = b;
	return x->b < y->b ? -1 : x->b > y->b;
}

static void check_overlaps(const char *path, Range *r, long n)
{
	qsort(r, n, sizeof *r, by_begin);
	for (long i = 1; i < n; i++)
		if (r[i].b < r[i - 1].e)
			lm_fail(path, "tensors '%s' and '%s' overlap (data_offsets [%ld, %ld] and [%ld, %ld])",
			        r[i - 1].name, r[i].name, r[i - 1].b, r[i - 1].e, r[i].b, r[i].e);
}

static int add_file(lm_ckpt *ck, const char *path)
{
	/* O_NONBLOCK: a FIFO in place of a shard must not block the open */
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	struct stat st;
	if (fd < 0)
		lm_fail(path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		lm_fail(path, "not a regular file");
	size_t size = (size_t)st.st_size;
	unsigned char *map = NULL;
	const char *why = copy_files && size >= 8 ? no_copy(ck, size, &map) : "";
	if (why && *why)
		fprintf(stderr, "lmcc: %s: --no-mmap: %s: the weights stay in the file's mapping\n",
		        path, why);
	if (why && size > 0) {
		map = lm_map_aligned(size, fd);
		if (map == MAP_FAILED)
			lm_fail(path, "cannot map: %s", strerror(errno));
		madvise(map, size, MADV_HUGEPAGE);    /* a hint: no huge pages is no error */
	}
	if (why) {
		close(fd);
		fd = -1;
	} else
		ck->copying += size;
	int fi = ck->nfiles++;
	ck->files = lm_realloc(ck->files, ck->nfiles * sizeof(File));
	ck->files[fi] = (File){lm_strdup(path), map, size, st, fd};
	if (fd < 0)
		watch_mapping(&ck->files[fi]);
	if (size < 8)
		lm_fail(path, "truncated: %zu bytes, shorter than the 8-byte header length", size);
	if (fd >= 0)
		read_in(&ck->files[fi], 0, 8, NULL);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | map[i];
	if (hlen > MAX_HEADER)
		lm_fail(path, "header length %llu: more than the %d MB lmcc reads of a header",
		        (unsigned long long)hlen, MAX_HEADER >> 20);
	if (hlen < 2 || hlen > size - 8)
		lm_fail(path, "header length %llu does not fit the file (%zu bytes): truncated or not safetensors",
		        (unsigned long long)hlen, size);
	if (fd >= 0)
		read_in(&ck->files[fi], 8, hlen, NULL);
	size_t dlen = size - 8 - hlen;
	const unsigned char *data = map + 8 + hlen;

	json_tokener *tok = json_tokener_new_ex(64);
	json_object *root = ck->header = json_tokener_parse_ex(tok, (const char *)map + 8, (int)hlen);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object))
		lm_fail(path, "header is not a JSON object%s%s",
		        jerr != json_tokener_success ? ": " : "",
		        jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "");

	Range *ranges = ck->ranges = lm_alloc((json_object_object_length(root) + 1) * sizeof *ranges);
	long nr = 0;

	json_object_object_foreach(root, name, val) {
		if (!strcmp(name, "__metadata__"))
			continue;
		json_object *jd, *js, *jo;
		if (!json_object_is_type(val, json_type_object)
		    || !json_object_object_get_ex(val, "dtype", &jd)
		    || !json_object_is_type(jd, json_type_string)
		    || !json_object_object_get_ex(val, "shape", &js)
		    || !json_object_is_type(js, json_type_array)
		    || !json_object_object_get_ex(val, "data_offsets", &jo)
		    || !json_object_is_type(jo, json_type_array)
		    || json_object_array_length(jo) != 2)
			lm_fail(path, "tensor '%s': needs dtype, shape and data_offsets [begin, end]", name);
		const char *ds = json_object_get_string(jd);
		int dtype = parse_dtype(ds);
		size_t esize = dtype >= 0 ? lm_dtype_size(dtype) : other_dtype_size(ds);
		if (!esize)
			lm_fail(path, "tensor '%s': unknown dtype '%.20s'", name, ds);
		int ndim = (int)json_object_array_length(js);
		if (ndim > MAX_NDIM)
			lm_fail(path, "tensor '%s': %d dimensions, at most %d", name, ndim, MAX_NDIM);
		Tensor t = {.file = fi, .dtype = dtype, .ndim = ndim, .numel = 1};
		for (int d = 0; d < ndim; d++) {
			long v = json_long(json_object_array_get_idx(js, d), 0, MAX_ELEMS);
			if (v < 0)
				lm_fail(path, "tensor '%s': shape[%d] is not an integer in [0, 2^40]", name, d);
			t.shape[d] = v;
			t.numel *= v;
			if (t.numel > MAX_ELEMS)
				lm_fail(path, "tensor '%s': more than 2^40 elements", name);
		}
		long b = json_long(json_object_array_get_idx(jo, 0), 0, MAX_ELEMS * 8);
		long e = json_long(json_object_array_get_idx(jo, 1), 0, MAX_ELEMS * 8);
		if (b < 0 || e < 0 || b > e)
			lm_fail(path, "tensor '%s': data_offsets are not integers 0 <= begin <= end", name);
		if ((size_t)e > dlen)
			lm_fail(path, "tensor '%s': data_offsets [%ld, %ld] past the end of the data (%zu bytes): truncated file?",
			        name, b, e, dlen);
		if ((size_t)(e - b) != (size_t)t.numel * esize)
			lm_fail(path, "tensor '%s': %ld bytes for %ld elements of %s", name, e - b, t.numel, ds);
		t.data = data + b;
		if (e > b)
			ranges[nr++] = (Range){b, e, NULL};
		t.bytes = (size_t)(e - b);
		snprintf(t.dtype_name, sizeof t.dtype_name, "%s", ds);
		if (2 * (ck->nt + 1) > ck->cap)
			grow(ck);
		Tensor *s = slot(ck, name);
		if (s->name && s->file >= 0)
			lm_fail(path, "tensor '%s' appears twice", name);
		if (s->name) {           /* named by the index, found here */
			t.used = s->used;
			t.name = s->name;
		} else {
			t.name = lm_strdup(name);
			ck->nt++;
		}
		*s = t;
		if (e > b)
			ranges[nr - 1].name = t.name;
	}
	check_overlaps(path, ranges, nr);
	free(ranges);
	json_object_put(root);
	ck->ranges = NULL;
	ck->header = NULL;
	return fi;
}

/* A shard name from the index: a plain file name in the same directory. */
static int safe_shard_name(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 255)
		return 0;
	for (; *s; s++)
		if (*s == '/' || *s == '\\')
			return 0;
	return 1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Shards without an index, as mlx-lm finds them: every model*.safetensors
 * of the directory, in name order.  Their paths are kept in ck->shards
 * while the shards open, so release() frees them if one fails. */
static int shard_name(const char *name)
{
	size_t len = strlen(name);
	return !strncmp(name, "model", 5) && len >= 17 && !strcmp(name + len - 12, ".safetensors");
}

static void shard_paths(lm_ckpt *ck, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		lm_fail(dir, "cannot open: %s", strerror(errno));
	for (struct dirent *e; (e = readdir(d));) {
		if (!shard_name(e->d_name))
			continue;
		if (ck->nshards >= MAX_SHARDS) {
			closedir(d);
			lm_fail(dir, "more than %d model*.safetensors files", MAX_SHARDS);
		}
		ck->shards = lm_realloc(ck->shards, (ck->nshards + 1) * sizeof *ck->shards);
		ck->shards[ck->nshards++] = lm_path(dir, e->d_name);
	}
	closedir(d);
	if (ck->nshards)
		qsort(ck->shards, ck->nshards, sizeof *ck->shards, by_name);
}

static lm_ckpt *open_glob(lm_ckpt *ck, const char *dir)
{
	shard_paths(ck, dir);
	if (!ck->nshards)
		lm_fail(dir, "no model.safetensors, no model.safetensors.index.json and no model*.safetensors shards");
	ck->where = lm_strdup(ck->shards[0]);
	for (int i = 0; i < ck->nshards; i++)
		add_file(ck, ck->shards[i]);
	for (int i = 0; i < ck->nshards; i++)
		free(ck->shards[i]);
	free(ck->shards);
	ck->shards = NULL;   /* the field names an index's shards */
	ck->nshards = 0;
	return ck;
}

static void release(lm_ckpt *ck);

/* OPEN(ck, arg) filling a new checkpoint; when it fails, what it mapped
 * is unmapped and no longer watched before the error goes on: under the
 * C API the process lives on, and a stale watch would end it the next
 * time that file changed. */
static lm_ckpt *opened(void (*open)(lm_ckpt *, const char *), const char *arg)
{
	static long opens;
	lm_ckpt *ck = lm_alloc(sizeof *ck);
	ck->serial = __atomic_add_fetch(&opens, 1, __ATOMIC_RELAXED);
	lm_err err;
	if (lm_catch(&err)) {
		release(ck);
		lm_err_raise(&err);
	}
	open(ck, arg);
	lm_err_pop(&err);
	return ck;
}

static void open_one(lm_ckpt *ck, const char *path)
{
	ck->where = lm_strdup(path);
	grow(ck);                    /* a table even for a file of no tensor */
	add_file(ck, path);
}

lm_ckpt *lm_ck_open_file(const char *path)
{
	return opened(open_one, path);
}

lm_ckpt *lm_ck_try(const char *dir)
{
	static const char *const files[] = {"model.safetensors", "model.safetensors.index.json"};
	struct stat st;
	int found = 0;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return NULL;
	for (int i = 0; i < 2 && !found; i++) {
		char *f = lm_path(dir, files[i]);
		found = access(f, F_OK) == 0;
		free(f);
	}
	DIR *d = found ? NULL : opendir(dir);
	for (struct dirent *e; d && !found && (e = readdir(d));)
		found = shard_name(e->d_name);
	if (d)
		closedir(d);
	if (!found)
		return NULL;
	return lm_ck_open(dir);
}

/* A header of {} or only __metadata__, or an empty weight_map: nothing to
 * look a tensor up in. */
static void nonempty(lm_ckpt *ck)
{
	if (!ck->nt)
		lm_fail(ck->where, "the checkpoint holds no tensor");
}

/* A tensor the index names in shard i, which is not opened yet. */
static void add_pending(lm_ckpt *ck, const char *name, int i)
{
	if (2 * (ck->nt + 1) > ck->cap)
		grow(ck);
	Tensor *s = slot(ck, name);
	if (s->name)
		return;
	*s = (Tensor){.name = lm_strdup(name), .file = -1, .dtype = -1, .shard = i};
	ck->nt++;
}

static void open_dir(lm_ckpt *ck, const char *dir, int part)
{
	char *single = lm_path(dir, "model.safetensors");
	char *index = lm_path(dir, "model.safetensors.index.json");
	if (access(single, F_OK) == 0) {
		free(index);
		ck->where = single;
		add_file(ck, single);
		nonempty(ck);
		return;
	}
	free(single);
	size_t len;
	char *text = lm_read_text(index, &len);
	if (!text) {
		free(index);
		nonempty(open_glob(ck, dir));
		return;
	}
	ck->where = index;
	ck->part = part;
	ck->index_fp = lm_hash(0xcbf29ce484222325ull, text, len);
	json_object *root = ck->index = json_tokener_parse(text), *map;
	free(text);
	if (!root || !json_object_object_get_ex(root, "weight_map", &map)
	    || !json_object_is_type(map, json_type_object))
		lm_fail(index, "field 'weight_map': missing or not an object");
	/* Each distinct shard once, in the order the index first names it. */
	json_object_object_foreach(map, name, val) {
		if (!json_object_is_type(val, json_type_string))
			lm_fail(index, "field 'weight_map.%s': not a file name", name);
		const char *f = json_object_get_string(val);
		if (!safe_shard_name(f))
			lm_fail(index, "field 'weight_map.%s': '%.64s' is not a file name in the model directory", name, f);
		int i;
		for (i = 0; i < ck->nshards && strcmp(ck->shards[i], f); i++)
			;
		if (i == ck->nshards) {
			if (ck->nshards >= MAX_SHARDS)
				lm_fail(index, "more than %d shards", MAX_SHARDS);
			ck->shards = lm_realloc(ck->shards, (ck->nshards + 1) * sizeof *ck->shards);
			ck->shards[ck->nshards++] = lm_strdup(f);
		}
		if (part)
			add_pending(ck, name, i);
	}
	json_object_put(root);
	ck->index = NULL;
	ck->nshard = ck->nshards;
	ck->shard = lm_alloc((ck->nshard + 1) * sizeof *ck->shard);
	ck->opened = lm_alloc((ck->nshard + 1) * sizeof *ck->opened);
	for (int i = 0; i < ck->nshard; i++)
		ck->shard[i] = lm_path(dir, ck->shards[i]);
	for (int i = 0; i < ck->nshard; i++)
		ck->opened[i] = part ? -1 : add_file(ck, ck->shard[i]);
	nonempty(ck);
}

static void open_whole(lm_ckpt *ck, const char *dir)
{
	open_dir(ck, dir, 0);
}

static void open_part(lm_ckpt *ck, const char *dir)
{
	open_dir(ck, dir, 1);
}

lm_ckpt *lm_ck_open(const char *dir)
{
	return opened(open_whole, dir);
}

lm_ckpt *lm_ck_open_part(const char *dir)
{
	return opened(open_part, dir);
}

/* The tensor `name` (its slot: no name if absent).  One the index places
 * in a shard not opened yet is found by opening that shard when the part
 * being bound is this rank's; for another rank's part it stays pending
 * (file -1), and no byte of its shard is read here. */
static Tensor *find(lm_ckpt *ck, const char *name)
{
	Tensor *t = slot(ck, name);
	if (!t->name || t->file >= 0 || !lm_stage_mine())
		return t;
	int i = t->shard;
	if (ck->opened[i] < 0) {
		ck->opened[i] = add_file(ck, ck->shard[i]);
		t = slot(ck, name);
	}
	if (t->file < 0)
		lm_fail(ck->shard[i], "tensor '%s' is not in this shard, where %s places it", name,
		        ck->where);
	return t;
}

/* For a pending tensor of another rank's part: a stand-in of the shape
 * and dtype the binding asks for, without data (that rank never runs the
 * part); the real tensor's checks are the other rank's. */
static Tensor *stand_in(lm_ckpt *ck, Tensor *t, int dtype, int ndim, const long *shape)
{
	Tensor *p = &ck->ph[ck->nph++ % 4];
	t->used = 1;
	*p = (Tensor){.name = t->name, .file = -1, .dtype = dtype, .ndim = ndim, .numel = 1};
	for (int d = 0; d < ndim; d++)
		p->numel *= p->shape[d] = shape[d];
	return p;
}

/* Unmapped and forgotten, whether or not it opened whole. */
static void release(lm_ckpt *ck)
{
	for (int i = 0; i < ck->nfiles; i++) {
		unwatch_mapping(&ck->files[i]);
		munmap(ck->files[i].map, ck->files[i].size);
		if (ck->files[i].fd >= 0)
			close(ck->files[i].fd);
		free(ck->files[i].path);
	}
	for (long i = 0; i < ck->cap; i++)
		free(ck->t[i].name);
	for (int i = 0; i < ck->nshard; i++)
		free(ck->shard[i]);
	free(ck->shard);
	free(ck->opened);
	for (long i = 0; i < ck->nowned; i++)
		free(ck->owned[i]);
	free(ck->owned);
	for (int i = 0; i < ck->nflips; i++)
		munmap(ck->flips[i].p, ck->flips[i].n);
	free(ck->flips);
	free(ck->files);
	free(ck->t);
	free(ck->where);
	if (ck->header)
		json_object_put(ck->header);
	if (ck->index)
		json_object_put(ck->index);
	free(ck->ranges);
	for (int i = 0; i < ck->nshards; i++)
		free(ck->shards[i]);
	free(ck->shards);
	free(ck);
}

void lm_ck_close(lm_ckpt *ck)
{
	char was[PATH_MAX] = "";
	if (!ck)
		return;
	for (int i = 0; i < ck->nfiles && !was[0]; i++)     /* a copy is immune */
		if (ck->files[i].fd < 0 && changed(ck->files[i].path, &ck->files[i].st))
			snprintf(was, sizeof was, "%s", ck->files[i].path);
	release(ck);
	if (was[0])
		lm_fail(was, "the file was rewritten while the model ran: "
		        "its output may mix the old and the new weights");
}

int lm_ck_info(lm_ckpt *ck, const char *name, int *ndim, long *shape)
{
	Tensor *t = find(ck, name);
	if (!t->name || t->file < 0)
		return -1;
	if (ndim)
		*ndim = t->ndim;
	if (shape)
		memcpy(shape, t->shape, t->ndim * sizeof(long));
	return t->dtype < 0 ? -2 : t->dtype;
}

void lm_shape_str(char *buf, size_t n, int ndim, const long *shape)
{
	size_t k = snprintf(buf, n, "[");
	for (int d = 0; d < ndim && k < n; d++)
		k += snprintf(buf + k, n - k, "%s%ld", d ? ", " : "", shape[d]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

/* The tensor the model needs, with exactly this shape, in any dtype
 * lmcc reads. */
static Tensor *lookup(lm_ckpt *ck, const char *name, int ndim, const long *shape)
{
	Tensor *t = find(ck, name);
	char want[256], got[256];
	if (!t->name)
		lm_fail(ck->where, "tensor '%s' is missing", name);
	if (t->file < 0)
		return stand_in(ck, t, LM_F32, ndim, shape);
	if (t->dtype < 0)
		lm_fail(ck->files[t->file].path, "tensor '%s': dtype is not F32, F16 or BF16 (nor U32 or U8, quantized)", name);
	int same = t->ndim == ndim;
	for (int d = 0; same && d < ndim; d++)
		same = t->shape[d] == shape[d];
	if (!same) {
		lm_shape_str(want, sizeof want, ndim, shape);
		lm_shape_str(got, sizeof got, t->ndim, t->shape);
		lm_fail(ck->files[t->file].path, "tensor '%s': shape %s, expected %s", name, got, want);
	}
	t->used = 1;
	if (lm_stage_mine())
		fill(ck, t);
	return t;
}

/* The same, holding floats. */
static Tensor *need(lm_ckpt *ck, const char *name, int ndim, const long *shape)
{
	Tensor *t = find(ck, name);
	if (t->name && t->dtype == LM_U32)
		lm_fail(ck->files[t->file].path, "tensor '%s': dtype U32 (packed quantized), but this "
		        "tensor is read as floats: its module has no .scales or the config does not quantize it", name);
	if (t->name && t->dtype == LM_U8)
		lm_fail(ck->files[t->file].path, "tensor '%s': dtype U8 (the scales of an FP quantization "
		        "mode), but this tensor is read as floats", name);
	return lookup(ck, name, ndim, shape);
}

static void *own(lm_ckpt *ck, size_t bytes)
{
	void *p = lm_alloc_aligned(bytes);
	ck->owned = lm_realloc(ck->owned, (ck->nowned + 1) * sizeof(void *));
	ck->owned[ck->nowned++] = p;
	return p;
}

/* A header whose length is not a multiple of the element size leaves the
 * data misaligned: then the tensor is copied, once for all the views of
 * it (the experts of a stack). */
static void align_data(lm_ckpt *ck, Tensor *t)
{
	size_t es = lm_dtype_size(t->dtype);
	if ((uintptr_t)t->data % es && lm_stage_mine()) {
		unsigned char *c = own(ck, t->numel * es);
		memcpy(c, t->data, t->numel * es);
		t->data = c;
	}
}

/* The last element a view touches must lie inside the tensor. */
static void check_view(lm_ckpt *ck, Tensor *t, long off, int tr, long rows,
                       long cols, long ld)
{
	long inner = tr ? rows : cols, outer = tr ? cols : rows;
	if (off < 0 || rows < 1 || cols < 1 || ld < inner
	    || off + (outer - 1) * ld + inner > t->numel)
		lm_bug("view of '%s' out of bounds (off %ld, %ldx%ld, ld %ld, numel %ld)",
		       t->name, off, rows, cols, ld, t->numel);
}

/* ---- weights stored [in, out] ----
 * Hugging Face stores Llama 4's experts [E, in, out], so a view of one is
 * tr, and every kernel reads tr worse than [out, in]: decoding sums
 * columns into partial outputs, and prefill gathers each panel from rows
 * of the stored matrix a multiple of 4 KB apart, which share a few cache
 * sets.  mlx-lm's sanitize transposes them at load; so does lmcc, once
 * per tensor (flip), into memory of the checkpoint's own in 2 MB pages,
 * giving the file's pages back.  The copies are bounded by half the
 * memory available at the first one; a tensor past that stays in the
 * file, read as tr.  So does one that was already handed out as stored
 * (plain).  On an Intel Xeon family 6 model 207 (2 threads) the load
 * took 1.25 s more for the bench model's 3.8 GB of experts, most of it
 * the kernel zeroing the new pages, and its prefill of 256 tokens 0.8 s
 * less (1.22 times as fast), decoding 1.05 times as fast. */

/* The view (off, tr, rows, cols, ld) of a tensor [..., A, B] stored
 * [..., B, A] instead: the same elements, tr flipped, ld A.  Only a view
 * that steps whole rows of B (ld == B) inside one matrix has one. */
static int flipped_view(const Tensor *t, long *off, int *tr, long rows, long cols, long *ld)
{
	long A = t->shape[t->ndim - 2], B = t->shape[t->ndim - 1];
	long i = *off / (A * B), a0 = *off % (A * B) / B, b0 = *off % B;
	long na = *tr ? cols : rows, nb = *tr ? rows : cols;
	if (*ld != B || a0 + na > A || b0 + nb > B)
		return 0;
	*off = i * A * B + b0 * A + a0;
	*tr = !*tr;
	*ld = A;
	return 1;
}

/* Whether t is stored flipped, flipping it now if it may be. */
static int flip(lm_ckpt *ck, Tensor *t)
{
	if (t->flipped || t->plain || !t->data || t->file < 0 || t->ndim < 2 || t->dtype > LM_BF16
	    || !lm_stage_mine())
		return t->flipped;
	if (!ck->flip_room) {
		long a = meminfo("MemAvailable");
		ck->flip_room = a > 0 ? (size_t)a / 2 : 1;
	}
	if (ck->flip_bytes + t->bytes > ck->flip_room)
		return 0;
	unsigned char *d = lm_map_aligned(t->bytes, -1);
	if (d == MAP_FAILED)
		return 0;
	madvise(d, t->bytes, MADV_HUGEPAGE);    /* before the first touch */
	double t0 = lm_now();
	long A = t->shape[t->ndim - 2], B = t->shape[t->ndim - 1];
	lm_transpose(d, t->data, t->numel / (A * B), A, B, (int)lm_dtype_size(t->dtype));
	/* the file's pages (not align_data's copy); a neighbour may share the ends */
	char *lo;
	size_t k = lm_inner_pages(t->data, t->bytes, &lo);
	for (int i = 0; i < ck->nfiles && k; i++)
		if (t->data >= ck->files[i].map && t->data < ck->files[i].map + ck->files[i].size)
			madvise(lo, k, MADV_DONTNEED);
	ck->flips = lm_realloc(ck->flips, (ck->nflips + 1) * sizeof *ck->flips);
	ck->flips[ck->nflips].p = d;
	ck->flips[ck->nflips++].n = t->bytes;
	ck->flip_bytes += t->bytes;
	ck->flip_time += lm_now() - t0;
	t->data = d;
	return t->flipped = 1;
}

void lm_ck_flip_room(lm_ckpt *ck, size_t bytes)
{
	ck->flip_room = bytes ? bytes : 1;
}

/* A reader of t as stored (not through a view). */
static void as_stored(Tensor *t)
{
	if (t->flipped)
		lm_bug("tensor '%s' read as stored after it was transposed for a view", t->name);
	t->plain = 1;
}

lm_mat lm_ck_mat(lm_ckpt *ck, const char *name, int ndim, const long *shape,
                 long off, int tr, long rows, long cols, long ld)
{
	Tensor *t = need(ck, name, ndim, shape);
	check_view(ck, t, off, tr, rows, cols, ld);
	size_t es = lm_dtype_size(t->dtype);
	align_data(ck, t);
	long o = off, l = ld;
	int f = tr;
	if (t->ndim >= 2 && flipped_view(t, &o, &f, rows, cols, &l)
	    && (t->flipped || (tr && flip(ck, t)))) {
		off = o;
		tr = f;
		ld = l;
	} else {
		as_stored(t);
	}
	return (lm_mat){.data = t->data ? t->data + off * es : NULL, .dtype = t->dtype, .tr = tr,
	                .rows = rows, .cols = cols, .ld = ld};
}

const float *lm_ck_vec(lm_ckpt *ck, const char *name, int ndim,
                       const long *shape, float add)
{
	Tensor *t = need(ck, name, ndim, shape);
	as_stored(t);
	float *v = own(ck, t->numel * sizeof(float));
	/* another pipeline stage's: checked, not read (zeros it never uses) */
	for (long i = 0; i < t->numel && lm_stage_mine(); i++)
		v[i] = lm_load_f32(t->data, t->dtype, i) + add;
	return v;
}

typedef struct {
	const Tensor *t;
	long off, cols, ld;
	float eps, *s;
} RowScale;

static void row_scale(void *ctx, long r0, long r1)
{
	const RowScale *j = ctx;
	for (long r = r0; r < r1; r++) {
		double ss = 0;
		for (long c = 0; c < j->cols; c++) {
			double w = lm_load_f32(j->t->data, j->t->dtype, j->off + r * j->ld + c);
			ss += w * w;
		}
		j->s[r] = (float)(1 / (sqrt(ss) + j->eps));
	}
}

const float *lm_ck_row_scale(lm_ckpt *ck, const char *name, int ndim,
                            const long *shape, long off, long rows, long cols,
                            long ld, float eps)
{
	Tensor *t = need(ck, name, ndim, shape);
	check_view(ck, t, off, 0, rows, cols, ld);
	as_stored(t);
	RowScale j = {t, off, cols, ld, eps, own(ck, rows * sizeof(float))};
	if (lm_stage_mine())
		lm_parallel(rows, 64, row_scale, &j);
	return j.s;
}

const char *lm_ck_next(lm_ckpt *ck, long *i)
{
	while (*i < ck->cap && !ck->t[*i].name)
		++*i;
	return *i < ck->cap ? ck->t[(*i)++].name : NULL;
}

long lm_ck_serial(const lm_ckpt *ck)
{
	return ck->serial;
}

long lm_ck_count(lm_ckpt *ck)
{
	return ck->nt;
}

const char *lm_ck_where(lm_ckpt *ck)
{
	return ck->where;
}

const void *lm_ck_raw(lm_ckpt *ck, const char *name, const char **dtype, size_t *bytes)
{
	Tensor *t = slot(ck, name);
	if (!t->name)
		lm_bug("lm_ck_raw: no tensor '%s'", name);
	*dtype = t->dtype_name;
	*bytes = t->bytes;
	as_stored(t);
	if (t->file >= 0)
		fill(ck, t);
	return t->data;
}

long lm_ck_unused(lm_ckpt *ck, const char *const *drops, const char **first,
                  const char **file)
{
	long n = 0;
	*first = *file = NULL;
	for (long i = 0; i < ck->cap; i++) {
		const Tensor *t = &ck->t[i];
		if (!t->name || t->used)
			continue;
		int k = 0;
		while (drops && drops[k] && fnmatch(drops[k], t->name, 0))
			k++;
		if (drops && drops[k])
			continue;
		if (!*first || strcmp(t->name, *first) < 0) {
			*first = t->name;
			*file = t->file < 0 ? ck->shard[t->shard] : ck->files[t->file].path;
		}
		n++;
	}
	return n;
}

/* Names from a ring of buffers, so that one call can take a few (a
 * product and its adapter's two tensors).  A pattern holds at most two
 * conversions and each is %ld: one from elsewhere is a bug, not a format
 * to follow. */
const char *lm_name2(const char *pattern, long i, long j)
{
	static char ring[4][512];
	static int k;
	char *buf = ring[k++ % 4];
	int conv = 0;
	for (const char *c = strchr(pattern, '%'); c; c = strchr(c + 3, '%'))
		if (strncmp(c, "%ld", 3) || ++conv > 2)
			lm_bug("name pattern '%.100s' is not made of %%ld indices", pattern);
	if (snprintf(buf, sizeof ring[0], pattern, i, j) >= (int)sizeof ring[0])
		lm_bug("name pattern '%.100s' makes a name too long", pattern);
	return buf;
}

const char *lm_name(const char *pattern, long i)
{
	return lm_name2(pattern, i, 0);
}

/* FNV-1a, 64 bits: a fingerprint, not a defence against forgery. */
uint64_t lm_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Every header (names, dtypes, shapes, offsets) and 16 samples of 4 KB of
 * the data: weights that differ only in their values (another seed of
 * lmcc init) differ there. */
static uint64_t file_fp(uint64_t h, const File *f)
{
	uint64_t hlen = 0;
	for (int j = 7; j >= 0; j--)
		hlen = hlen << 8 | f->map[j];
	h = lm_hash(h, f->map, 8 + hlen);
	size_t data = f->size - 8 - hlen, piece = data < 4096 ? data : 4096;
	/* the samples are read from the file, not through the mapping: there
	 * they would stay resident in a rank that holds none of their
	 * tensors, each a whole huge page where the page cache keeps them so */
	int fd = open(f->path, O_RDONLY | O_NONBLOCK);
	unsigned char buf[4096];
	for (int s = 0; s < 16 && piece; s++) {
		size_t at = 8 + hlen + (data - piece) / 15 * s;
		if (fd >= 0 && pread(fd, buf, piece, (off_t)at) == (ssize_t)piece)
			h = lm_hash(h, buf, piece);
		else
			h = lm_hash(h, f->map + at, piece);
	}
	if (fd >= 0)
		close(fd);
	return h;
}

uint64_t lm_ck_fingerprint(const lm_ckpt *ck)
{
	if (ck->part)                /* the same on every rank, whatever it opened */
		return ck->index_fp;
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < ck->nfiles; i++)
		h = file_fp(h, &ck->files[i]);
	return h;
}

int lm_ck_shards(const lm_ckpt *ck)
{
	return ck->part ? ck->nshard : 0;
}

const char *lm_ck_shard(const lm_ckpt *ck, int i, uint64_t *fp)
{
	int f = ck->opened[i];
	*fp = f < 0 ? 0 : file_fp(0xcbf29ce484222325ull, &ck->files[f]) | 1;
	return ck->shard[i];
}

/* ---- quantized modules (MLX's group formats, lm_mat LM_Q) ---- */

static const char *const mode_names[] = {"affine", "mxfp4", "nvfp4", "mxfp8"};

const char *lm_qmode_name(int mode)
{
	return mode >= 0 && mode <= LM_MXFP8 ? mode_names[mode] : "?";
}

int lm_qmode_parse(const char *name)
{
	for (int m = 0; m <= LM_MXFP8; m++)
		if (!strcmp(name, mode_names[m]))
			return m;
	return -1;
}

int lm_q_bad(int bits, int group, int mode)
{
	if (mode != LM_AFFINE) {
		if (bits != (mode == LM_MXFP8 ? 8 : 4))
			return 1;
		return group != (mode == LM_NVFP4 ? 16 : 32) ? 2 : 0;
	}
	if (bits < 2 || bits > 8 || bits == 7)
		return 1;
	if (group != 32 && group != 64 && group != 128)
		return 2;
	return 0;
}

/* "<path>.<field>" in buf. */
static const char *field(char *buf, size_t n, const char *path, const char *f)
{
	if ((size_t)snprintf(buf, n, "%s.%s", path, f) >= n)
		lm_bug("tensor name too long: %s", path);
	return buf;
}

/* The module's tensors, with every shape and dtype as the format requires
 * for a logical [..., out, in] weight of `bits` bits in groups of `group`:
 * weight U32 [..., out, in * bits / 32], scales [..., out, in / group],
 * and in affine mode biases of the scales' shape and float dtype; the FP
 * modes have U8 scales and no biases (MLX refuses them). */
static void qtensors(lm_ckpt *ck, const char *path, int ndim, const long *shape,
                     int bits, int group, int mode, const char *why, Tensor **w,
                     Tensor **s, Tensor **b)
{
	const char *sep = why ? " (" : "", *end = why ? ")" : "";
	why = why ? why : "";
	char wn[320], sn[320], bn[320];
	long in = shape[ndim - 1], ps[MAX_NDIM];
	field(wn, sizeof wn, path, "weight");
	field(sn, sizeof sn, path, "scales");
	field(bn, sizeof bn, path, "biases");
	if (ndim < 2 || ndim > MAX_NDIM)
		lm_bug("quantized '%s' of %d dimensions", path, ndim);
	if (lm_q_bad(bits, group, mode))
		lm_bug("quantized '%s': %d bits, group %d, mode %d", path, bits, group, mode);
	const char *mn = lm_qmode_name(mode);
	find(ck, wn);                /* opening a shard moves the slots: then look */
	find(ck, sn);
	find(ck, bn);
	Tensor *t = slot(ck, wn), *st = slot(ck, sn), *bt = slot(ck, bn);
	if (!t->name)
		lm_fail(ck->where, "tensor '%s' is missing", wn);
	if (t->file < 0 || (st->name && st->file < 0) || (bt->name && bt->file < 0)) {
		/* another rank's, whose shards stay closed here */
		memcpy(ps, shape, ndim * sizeof(long));
		ps[ndim - 1] = in * bits / 32;
		*w = stand_in(ck, t, LM_U32, ndim, ps);
		ps[ndim - 1] = in / group;
		if (!st->name)
			lm_fail(ck->where, "tensor '%s' is missing", sn);
		*s = stand_in(ck, st, mode == LM_AFFINE ? LM_F32 : LM_U8, ndim, ps);
		*b = mode == LM_AFFINE && bt->name ? stand_in(ck, bt, LM_F32, ndim, ps) : NULL;
		return;
	}
	if (t->dtype != LM_U32)
		lm_fail(ck->files[t->file].path, "tensor '%s': dtype %s, but a quantized module's "
		        "weight is U32 (%d-bit values packed in 32-bit words)%s%s%s", wn,
		        dtype_name(t->dtype), bits, sep, why, end);
	if (!slot(ck, sn)->name)
		lm_fail(ck->where, "tensor '%s' is missing: module '%s' is quantized (%s, %d bits, group "
		        "%d) and needs scales%s%s%s%s", sn, path, mn, bits, group,
		        mode == LM_AFFINE ? " and biases" : "", sep, why, end);
	if (in * bits % 32)
		lm_fail(ck->files[t->file].path, "tensor '%s': %ld inputs of %d bits do not fill whole "
		        "32-bit words%s%s%s", wn, in, bits, sep, why, end);
	if (in % group)
		lm_fail(ck->files[t->file].path, "tensor '%s': %ld inputs are not a multiple of the "
		        "group size %d%s%s%s", wn, in, group, sep, why, end);
	memcpy(ps, shape, ndim * sizeof(long));
	ps[ndim - 1] = in * bits / 32;
	if (t->ndim == ndim && t->shape[ndim - 1] != ps[ndim - 1]) {
		long got = t->shape[ndim - 1];
		char other[64] = "";
		if (got * 32 % in == 0)
			snprintf(other, sizeof other, ": packed at %ld bits", got * 32 / in);
		lm_fail(ck->files[t->file].path, "tensor '%s': shape[-1] is %ld words per row, but %ld "
		        "inputs at %d bits take %ld%s%s%s%s", wn, got, in, bits, ps[ndim - 1], other,
		        sep, why, end);
	}
	*w = lookup(ck, wn, ndim, ps);
	ps[ndim - 1] = in / group;
	*b = NULL;
	if (mode == LM_AFFINE) {
		*s = need(ck, sn, ndim, ps);
		*b = need(ck, bn, ndim, ps);
		if ((*b)->dtype != (*s)->dtype)
			lm_fail(ck->files[(*b)->file].path, "tensor '%s': dtype %s, but its scales are %s",
			        bn, dtype_name((*b)->dtype), dtype_name((*s)->dtype));
		return;
	}
	if (bt->name)
		lm_fail(ck->files[bt->file].path, "tensor '%s': mode %s has no biases (MLX refuses "
		        "them)%s%s%s", bn, mn, sep, why, end);
	if (st->dtype != LM_U8)
		lm_fail(ck->files[st->file].path, "tensor '%s': dtype %s, but the scales of mode %s "
		        "are U8 (one %s byte per group of %d)%s%s%s", sn, st->dtype_name, mn,
		        mode == LM_NVFP4 ? "FP8 E4M3" : "E8M0", group, sep, why, end);
	*s = lookup(ck, sn, ndim, ps);
}

void lm_ck_qcheck(lm_ckpt *ck, const char *path, int ndim, const long *shape,
                  int bits, int group, int mode, const char *why)
{
	Tensor *w, *s, *b;
	qtensors(ck, path, ndim, shape, bits, group, mode, why, &w, &s, &b);
}

lm_mat lm_ck_qmat(lm_ckpt *ck, const char *path, int ndim, const long *shape,
                  long off, long rows, long cols, int bits, int group, int mode)
{
	Tensor *w, *s, *b;
	qtensors(ck, path, ndim, shape, bits, group, mode, NULL, &w, &s, &b);
	long in = shape[ndim - 1], total = 1;
	for (int d = 0; d < ndim - 1; d++)
		total *= shape[d];
	if (cols != in || off % in || rows < 1 || off / in + rows > total)
		lm_bug("view of quantized '%s' out of bounds (off %ld, %ldx%ld of [%ld, %ld])",
		       path, off, rows, cols, total, in);
	align_data(ck, w);
	align_data(ck, s);
	if (b)
		align_data(ck, b);
	long r0 = off / in, ld = in * bits / 32, sld = in / group;
	size_t es = lm_dtype_size(s->dtype);
	if (!w->data || !s->data)    /* another rank's */
		return (lm_mat){.dtype = LM_Q, .rows = rows, .cols = cols, .ld = ld, .bits = bits,
		                .group = group, .sdtype = s->dtype, .mode = mode, .sld = sld};
	return (lm_mat){.data = w->data + r0 * ld * 4, .dtype = LM_Q, .tr = 0, .rows = rows,
	                .cols = cols, .ld = ld, .bits = bits, .group = group,
	                .sdtype = s->dtype, .mode = mode, .scales = s->data + r0 * sld * es,
	                .biases = b ? b->data + r0 * sld * es : NULL, .sld = sld};
}

const char *lm_ck_file(lm_ckpt *ck, const char *name)
{
	Tensor *t = name ? slot(ck, name) : NULL;
	return !t || !t->name ? ck->where : t->file < 0 ? ck->shard[t->shard] : ck->files[t->file].path;
}

/* Of the weights resident now, the fraction in 2 MB pages (-1: none
 * resident, or no /proc/self/smaps): for the bound a speed figure is
 * divided by, which must be read over the pages the weights use. */
double lm_ck_huge(const lm_ckpt *ck)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	long rss = 0, huge = 0, kb;
	int in = 0;
	uintptr_t b, e;
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx ", &b, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = 0;
			for (int i = 0; i < ck->nfiles && !in; i++)
				in = ck->files[i].size && b < (uintptr_t)ck->files[i].map + ck->files[i].size
				     && e > (uintptr_t)ck->files[i].map;
			for (int i = 0; i < ck->nflips && !in; i++)
				in = b < (uintptr_t)ck->flips[i].p + ck->flips[i].n && e > (uintptr_t)ck->flips[i].p;
		} else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
			rss += kb;
		else if (in && (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1
		                || sscanf(line, "FilePmdMapped: %ld kB", &kb) == 1))
			huge += kb;
	}
	if (f)
		fclose(f);
	return rss ? (double)huge / rss : -1;
}

/* "weights copied in 2.10 s, 100% in 2 MB pages" or "weights mapped,
 * 3% in 2 MB pages", with the transposed tensors' share, for the stats
 * line. */
void lm_ck_pages(const lm_ckpt *ck, char *s, size_t n)
{
	int copied = 0;
	for (int i = 0; i < ck->nfiles; i++)
		copied += ck->files[i].fd >= 0;
	int k = copied ? snprintf(s, n, "weights copied in %.2f s", ck->copy_time)
	               : snprintf(s, n, "weights mapped");
	if (copied && copied < ck->nfiles && k >= 0 && (size_t)k < n)
		k += snprintf(s + k, n - k, " (%d of %d files)", copied, ck->nfiles);
	char b[32];
	if (ck->nflips && k >= 0 && (size_t)k < n)
		k += snprintf(s + k, n - k, ", %s stored [in, out] transposed in %.2f s",
		              lm_bytes_str(b, sizeof b, (long)ck->flip_bytes), ck->flip_time);
	double h = lm_ck_huge(ck);
	if (h >= 0 && k >= 0 && (size_t)k < n)
		snprintf(s + k, n - k, ", %.0f%% in 2 MB pages", 100 * h);
}
