#!/bin/sh
# `make demo`: the main job end to end on a small AFM-7 made by lmcc init.
set -e
cd "$(dirname "$0")/.."
run() { echo "\$ $*"; "$@"; echo; }
run ./lmcc init tests/configs/demo_afm7.json -o out/demo --seed 1 --force
run ./lmcc plan out/demo
run ./lmcc build out/demo
run out/demo/demo --tokens 1,2,3,4,5,6,7,8 -n 16
run ./lmcc run out/demo --tokens 1,2,3,4,5,6,7,8 -n 16
