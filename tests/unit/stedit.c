/* stedit: make a damaged copy of a safetensors file, for the command-line
 * tests.
 *
 *   stedit IN OUT header OLD NEW   replace the first OLD in the JSON header
 *                                  with NEW (the length is fixed up)
 *   stedit IN OUT truncate N       keep only the first N bytes
 *   stedit IN OUT hlen N           set the header-length field to N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(*n + 1);
	if (fread(b, 1, *n, f) != *n)
		exit(1);
	fclose(f);
	return b;
}

static void put_len(unsigned char *p, unsigned long long v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: stedit IN OUT header OLD NEW | truncate N | hlen N\n");
		return 2;
	}
	size_t n;
	unsigned char *b = slurp(argv[1], &n);
	FILE *o = fopen(argv[2], "wb");
	if (!o) {
		perror(argv[2]);
		return 1;
	}
	if (!strcmp(argv[3], "truncate")) {
		size_t k = strtoul(argv[4], NULL, 10);
		fwrite(b, 1, k < n ? k : n, o);
	} else if (!strcmp(argv[3], "hlen")) {
		put_len(b, strtoull(argv[4], NULL, 10));
		fwrite(b, 1, n, o);
	} else if (!strcmp(argv[3], "header") && argc == 6) {
		unsigned long long h = 0;
		for (int i = 7; i >= 0; i--)
			h = h << 8 | b[i];
		char *hdr = malloc(h + 1);
		memcpy(hdr, b + 8, h);
		hdr[h] = 0;
		char *at = strstr(hdr, argv[4]);
		if (!at) {
			fprintf(stderr, "stedit: '%s' not in the header\n", argv[4]);
			return 1;
		}
		size_t lo = strlen(argv[4]), ln = strlen(argv[5]);
		unsigned char len[8];
		put_len(len, h - lo + ln);
		fwrite(len, 1, 8, o);
		fwrite(hdr, 1, at - hdr, o);
		fwrite(argv[5], 1, ln, o);
		fwrite(at + lo, 1, h - (at - hdr) - lo, o);
		fwrite(b + 8 + h, 1, n - 8 - h, o);
	} else {
		fprintf(stderr, "stedit: unknown edit '%s'\n", argv[3]);
		return 2;
	}
	return fclose(o) != 0;
}
