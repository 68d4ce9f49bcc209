#!/bin/sh
# lmcc quantize: MLX's affine rule against a direct implementation of it,
# and against MLX's own quantized checkpoints (tests/golden-mlx, written by
# the real mlx_lm.convert: dequantized and quantized again, every group
# that spans all levels must come back bit for bit).
cd "$(dirname "$0")/.." || exit 1
T=tests/tmp/quantize
rm -rf $T
mkdir -p $T
if ! make -s tests/bin/test_affine >$T/build.log 2>&1; then
	echo "FAIL quantize: test_affine does not build: $(head -c 300 $T/build.log)"
	exit 0
fi
tests/bin/test_affine || echo "FAIL quantize: test_affine exited $?"
tests/bin/test_affine tests/golden-mlx/*_q4g64* || echo "FAIL quantize: test_affine on golden-mlx exited $?"
