/* npy.h: reading and writing NumPy .npy arrays (npy.c). */
#ifndef LM_NPY_H
#define LM_NPY_H
#include <stdio.h>

enum { LM_NPY_I32, LM_NPY_I64, LM_NPY_F32 };
typedef struct {
	int type, ndim;
	long shape[4];
	size_t count;
	void *data;           /* count elements of type, malloc'd */
} lm_npy;

/* The whole array; any malformation is lm_fail naming the file. */
lm_npy lm_npy_read(const char *path);
/* A file with a float32 header for shape; the caller writes the data in
 * C order and closes it. */
FILE *lm_npy_create_f32(const char *path, int ndim, const long *shape);
#endif
