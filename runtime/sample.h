/* sample.h: next-token choice (sample.c). */
#ifndef LM_SAMPLE_H
#define LM_SAMPLE_H
#include <stdint.h>

typedef struct {
	float temp;      /* <= 0: greedy */
	float top_p;     /* 1: off */
	long top_k;      /* 0: off */
} lm_sampler;

int lm_argmax(const float *x, long n);
int lm_sample(const float *logits, long n, const lm_sampler *s, uint64_t *rng);
#endif
