/* tok_cli: the `lmcc tokenize` / `lmcc detokenize` commands on their own,
 * for the tests (lmcc's main is not needed to run them):
 *   tok_cli tokenize DIR [TEXT]     tok_cli detokenize DIR IDS */
#include "text/tok.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: tok_cli tokenize|detokenize ...\n");
		return 2;
	}
	return lm_tok_cli(argc - 1, argv + 1);
}
