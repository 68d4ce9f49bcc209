/* sample.h: next-token choice (sample.c). */
#ifndef LM_SAMPLE_H
#define LM_SAMPLE_H
#include <stdint.h>

typedef struct {
	float temp;      /* <= 0: greedy */
	float top_p;     /* 1: off */
	long top_k;      /* 0: off */
	/* Used by lm_sample_hist only (0 or 1 where off, as noted): */
	float min_p;     /* keep p >= min_p * p_max (untempered); 0: off */
	float repeat_penalty;       /* 1: off */
	float presence_penalty;     /* 0: off */
	float frequency_penalty;    /* 0: off */
	long repeat_last_n;         /* the window of the three penalties */
	int nbias;                  /* logit_bias: bias[i] added to id bias_id[i] */
	const int *bias_id;
	const float *bias;
} lm_sampler;

int lm_argmax(const float *x, long n);
int lm_sample(const float *logits, long n, const lm_sampler *s, uint64_t *rng);
/* lm_sample after the logit processors, in mlx-lm's order: logit bias, then
 * the repetition penalty (a logit l of a token among the last
 * repeat_last_n of hist becomes l * penalty if l < 0, else l / penalty,
 * once per distinct token), the presence penalty (minus the penalty, once
 * per distinct token), the frequency penalty (minus the penalty per
 * occurrence); then min_p masks tokens whose logit is below
 * max + log(min_p).  logits is not changed. */
int lm_sample_hist(const float *logits, long n, const lm_sampler *s,
                   const int *hist, long nhist, uint64_t *rng);
#endif
