# lmcc: `make` builds ./lmcc and the runtime (static and shared);
# `make test` runs every test; `make demo` shows the main job end to end.
CC      ?= gcc
OPT     ?= -O2
# Baseline x86-64: the kernels carry AVX2 and AVX-512 versions under target
# attributes and choose at run time (runtime/isa.c), so one build runs on
# every x86-64 CPU.  Never -march=native.
ARCH    ?= -march=x86-64
CFLAGS  += $(OPT) $(ARCH) $(SAN) -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fPIC -Iruntime \
           -I/usr/include/x86_64-linux-gnu/openblas-pthread
LDLIBS_RT = -lopenblas -ljson-c -lpcre2-8 -lmicrohttpd -lpthread -lm

RT_SRC  := $(filter-out runtime/mpi.c,$(wildcard runtime/*.c runtime/text/*.c))
RT_OBJ  := $(RT_SRC:%.c=build/%.o)
CC_SRC  := $(wildcard compiler/*.c)
CC_OBJ  := $(CC_SRC:%.c=build/%.o)

all: deps.stamp lmcc runtime/liblmcc.a runtime/liblmcc.so

# Install what a fresh Debian 12 lacks (DESIGN.md): the packages below,
# with `apt-get update` first when the package lists are empty.
PKGS = libjson-c-dev libtcc-dev tcc libopenblas-dev libpcre2-dev libmicrohttpd-dev
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then \
	    $$SUDO apt-get update -q || exit 1; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing \
	  || { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	       apt-get install -y -q $$missing; } || exit 1; \
	fi; touch $@
endef
deps.stamp: Makefile
	$(call install_missing,$(PKGS))

# Pipeline stages over MPI ranks (runtime/stage.c): MPI=1 installs Open MPI
# and builds runtime/liblmcc-mpi.a, the runtime `lmcc build --mpi` links
# (runtime/mpi.c, compiled with mpicc, in place of mpi_none.c).  Where
# mpicc is already installed it is built too; nothing else changes.
MPI_PKGS = libopenmpi-dev openmpi-bin
MPI ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
all: runtime/liblmcc-mpi.a
endif
mpi.stamp:
	$(call install_missing,$(MPI_PKGS))
build/runtime/mpi.o: runtime/mpi.c build/flags | mpi.stamp deps.stamp
	@mkdir -p $(dir $@)
	mpicc $(CFLAGS) -MMD -MP -c $< -o $@
runtime/liblmcc-mpi.a: $(filter-out build/runtime/mpi_none.o,$(RT_OBJ)) build/runtime/mpi.o
	rm -f $@ && ar rcs $@ $^

# The version and the commit a build comes from (lmcc --version); the
# header changes only when they do.
VERSION = 0.1.0
build/version.h: FORCE
	@mkdir -p build; c=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	if [ "$$c" != unknown ] && ! git diff --quiet HEAD 2>/dev/null; then c="$$c-dirty"; fi; \
	printf '#define LMCC_VERSION "%s"\n#define LMCC_COMMIT "%s"\n' '$(VERSION)' "$$c" >$@.tmp; \
	if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
build/runtime/opt.o: build/version.h
build/runtime/opt.o: CFLAGS += -Ibuild
# A dequantized weight is (s * q) + b with two roundings, as MLX computes it:
# gcc must not fuse them into one FMA where the target has one.
$(patsubst %.c,build/%.o,$(wildcard runtime/qmat*.c)): CFLAGS += -ffp-contract=off
FORCE:

# An object depends on the headers it includes (gcc -MMD lists them in
# build/X.d) and on the build's flags as given on the command line
# (build/flags), so a header edit rebuilds only what includes it.  An
# object built before its .d existed depends on every header once, and
# before build/flags existed, on no flags (the file starts out dated
# 1970).  Editing CFLAGS in this file rebuilds nothing: make clean.
ALL_OBJ  = $(RT_OBJ) $(CC_OBJ) build/runtime/mpi.o
ALL_HDRS = $(wildcard runtime/*.h runtime/text/*.h compiler/*.h)
build/flags: FORCE
	@mkdir -p build; echo '$(CC) $(OPT) $(ARCH) $(SAN)' >$@.tmp; \
	if [ ! -f $@ ]; then mv $@.tmp $@; touch -d @0 $@; \
	elif cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

build/%.o: %.c build/flags | deps.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(wildcard $(ALL_OBJ:.o=.d))
$(foreach o,$(ALL_OBJ),$(if $(wildcard $(o:.o=.d)),,$(eval $(o): $(ALL_HDRS))))

runtime/liblmcc.a: $(RT_OBJ)
	rm -f $@ && ar rcs $@ $^

# The shared runtime: SONAME liblmcc.so.$(SOVERSION), only lm_ symbols.
SOVERSION = 0
runtime/liblmcc.so: $(RT_OBJ) runtime/liblmcc.map
	$(CC) $(SAN) -shared -Wl,-soname,liblmcc.so.$(SOVERSION) -Wl,--version-script=runtime/liblmcc.map \
	  -o $@ $(RT_OBJ) $(LDLIBS_RT)
	ln -sf liblmcc.so runtime/liblmcc.so.$(SOVERSION)

lmcc: $(CC_OBJ) runtime/liblmcc.a
	$(CC) $(SAN) -o $@ $(CC_OBJ) runtime/liblmcc.a -ltcc -ldl $(LDLIBS_RT)

# Unit-test programs: tests/unit/NAME.c -> tests/bin/NAME, against the
# static runtime.
TEST_SRC := $(wildcard tests/unit/*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=tests/bin/%)
tests/bin/%: tests/unit/%.c runtime/liblmcc.a $(wildcard runtime/*.h runtime/text/*.h tests/unit/*.h)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Iruntime $< runtime/liblmcc.a $(LDLIBS_RT) -o $@

# test_reopen opens models through the C API's JIT path too: the model
# tcc compiles takes every lm_ function from the program (-rdynamic).
tests/bin/test_reopen: tests/unit/test_reopen.c runtime/liblmcc.a $(wildcard runtime/*.h runtime/text/*.h tests/unit/*.h)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -rdynamic -Iruntime $< -Wl,--whole-archive runtime/liblmcc.a -Wl,--no-whole-archive \
	  $(LDLIBS_RT) -o $@

# The inputs the fuzzers found, replayed by make test (suite_fuzz) through
# the same targets built with gcc: tests/bin/replay_TARGET FILE...
REPLAY_BIN = $(patsubst tests/fuzz/found/%,tests/bin/replay_%,$(wildcard tests/fuzz/found/*))
tests/bin/replay_%: tests/fuzz/fuzz_target.c tests/fuzz/replay.c $(filter-out build/compiler/main.o build/compiler/bench.o,$(CC_OBJ)) runtime/liblmcc.a
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Iruntime -DTARGET_$* tests/fuzz/fuzz_target.c tests/fuzz/replay.c \
	  $(filter-out build/compiler/main.o build/compiler/bench.o,$(CC_OBJ)) runtime/liblmcc.a -ltcc -ldl $(LDLIBS_RT) -o $@

# The C API's example (examples/generate.c), against the shared runtime.
examples/generate: examples/generate.c runtime/liblmcc.so runtime/lmcc_api.h
	$(CC) $(CFLAGS) -Iruntime $< -Lruntime -llmcc -Wl,-rpath,'$$ORIGIN/../runtime' -o $@

# The tests' float64 oracles (tests/lora/qfuse.py, the quantized round
# trips) need numpy under Debian's python3; without it they are skipped.
TEST_PKGS = python3-numpy
test.stamp:
	$(call install_missing,$(TEST_PKGS))

# SUITES="tok serve": only those suites (tests/suite_NAME.sh)
test: all $(TEST_BIN) $(REPLAY_BIN) examples/generate | test.stamp
	@tests/run.sh $(SUITES)

# The whole suite on the portable kernels, as on a CPU with neither AVX2
# nor AVX-512 (suite_unit and suite_isa still try every path the CPU has).
test-portable: all $(TEST_BIN) $(REPLAY_BIN) examples/generate | test.stamp
	@LMCC_ISA=portable tests/run.sh

bench: all
	@sh tests/bench.sh

demo: all
	@sh tests/demo.sh

clean:
	rm -rf build lmcc runtime/liblmcc.a runtime/liblmcc-mpi.a mpi.stamp runtime/liblmcc.so runtime/liblmcc.so.$(SOVERSION) \
	  tests/bin tests/tmp out examples/generate

# make install PREFIX=/usr/local DESTDIR=: lmcc, the runtime (static and
# shared), its headers, the templates, a pkg-config file and lmcc(1).
PREFIX ?= /usr/local
BINDIR = $(DESTDIR)$(PREFIX)/bin
LIBDIR = $(DESTDIR)$(PREFIX)/lib
INCDIR = $(DESTDIR)$(PREFIX)/include/lmcc
SHAREDIR = $(DESTDIR)$(PREFIX)/share/lmcc
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man1
HEADERS = runtime/lmcc.h runtime/lmcc_api.h
install: all
	install -d $(BINDIR) $(LIBDIR)/pkgconfig $(INCDIR) $(SHAREDIR)/templates $(MANDIR)
	install -m 755 lmcc $(BINDIR)/lmcc
	install -m 644 runtime/liblmcc.a $(LIBDIR)/liblmcc.a
	[ ! -f runtime/liblmcc-mpi.a ] || install -m 644 runtime/liblmcc-mpi.a $(LIBDIR)/liblmcc-mpi.a
	install -m 755 runtime/liblmcc.so $(LIBDIR)/liblmcc.so.$(VERSION)
	ln -sf liblmcc.so.$(VERSION) $(LIBDIR)/liblmcc.so.$(SOVERSION)
	ln -sf liblmcc.so.$(SOVERSION) $(LIBDIR)/liblmcc.so
	install -m 644 $(HEADERS) $(INCDIR)/
	install -m 644 templates/*.c $(SHAREDIR)/templates/
	install -m 644 docs/lmcc.1 $(MANDIR)/lmcc.1
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: lmcc' 'Description: the lmcc runtime: run language models lmcc compiled' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -llmcc' \
	  'Libs.private: $(LDLIBS_RT)' 'Cflags: -I$${includedir}/lmcc' >$(LIBDIR)/pkgconfig/lmcc.pc

uninstall:
	rm -f $(BINDIR)/lmcc $(LIBDIR)/liblmcc.a $(LIBDIR)/liblmcc-mpi.a $(LIBDIR)/liblmcc.so $(LIBDIR)/liblmcc.so.$(SOVERSION) \
	  $(LIBDIR)/liblmcc.so.$(VERSION) $(LIBDIR)/pkgconfig/lmcc.pc $(MANDIR)/lmcc.1 \
	  $(addprefix $(INCDIR)/,$(notdir $(HEADERS))) $(SHAREDIR)/templates/*.c
	-rmdir $(SHAREDIR)/templates $(SHAREDIR) $(INCDIR) 2>/dev/null

.PHONY: all test test-portable bench demo clean install uninstall FORCE

# Tokenizer encoding speed per format (tests/unit/bench_tok.c), one core.
T = tests/tokenizers
bench-tok: tests/bin/bench_tok tests/bin/mk_hf_bytelevel
	@mkdir -p tests/tmp/hf_llama3
	@tests/bin/mk_hf_bytelevel $(T)/llama3 tests/tmp/hf_llama3/tokenizer.json
	@tests/bin/bench_tok 4 \
	  llama4=$(T)/llama4 kimi=$(T)/kimi_linear llama3=$(T)/llama3 \
	  hf-bytelevel=tests/tmp/hf_llama3 hf-spm-bpe=$(T)/afm7_standin_llama2 \
	  spm-bpe-baichuan=$(T)/baichuan_m1 spm-bpe-llama2=$(T)/afm7_standin_llama2/tokenizer.model \
	  spm-unigram=$(T)/plamo2_standin_llmjp/llm-jp-tokenizer-100k.ver3.1.model \
	  plamo=$(T)/plamo2_standin_llmjp

.PHONY: bench-tok

# Sanitizers (issue 15): every suite, golden cases included, through a
# copy of the tree built with -fsanitize=address (build-asan/) or
# -fsanitize=undefined (build-ubsan/): one sanitizer a build, since gcc 12
# would mix UBSan reports into the one-line messages the tests check.  The
# models lmcc builds link the sanitizer too (LMCC_CFLAGS); LMCC_SANITIZE
# tells the suites not to cap virtual memory, and LMCC_SLOW (SAN_SLOW) by
# how much to stretch a time bound.  Under ASan lmcc run reached its first
# logits 2.1 times slower than the plain build (171 against 82 ms on a
# loaded Zen 3); a loaded full run once took 13 s against the 1 s bound,
# so the factor is 20.
SAN_asan  = -fsanitize=address -fno-omit-frame-pointer
SAN_SLOW  = 20
SAN_ubsan = -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
test-asan test-ubsan: test-%: deps.stamp
	@rm -rf build-$* && mkdir -p build-$*/tree
	@git ls-files -co --exclude-standard | grep -v '^build-' | tar -cf - -T - | tar -xf - -C build-$*/tree
	cd build-$*/tree && $(MAKE) -j2 OPT="-O1" SAN="$(SAN_$*)" all && \
	  LMCC_SANITIZE=$* LMCC_SLOW=$(SAN_SLOW) LMCC_CFLAGS="$(SAN_$*)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1 $(MAKE) OPT="-O1" SAN="$(SAN_$*)" SUITES="$(SUITES)" test

# Fuzzing with libFuzzer (Debian's clang): one binary per target of
# tests/fuzz/fuzz_target.c (tests/tmp/libfuzzer/TARGET), each run
# FUZZ_SECONDS from a seed corpus made of the repository's own files;
# findings go to tests/tmp/libfuzzer/TARGET.out/.  With FUZZ_CPU_SECONDS=N
# instead, each target runs until it has used N seconds of CPU time, two
# at a time under nice (tests/fuzz/cpu.sh): wall time says little on a
# loaded machine.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = jinja config st index tokjson tokrank tokspm tokjsonl adapter http
FUZZ_CFLAGS = -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -Iruntime \
              -I/usr/include/x86_64-linux-gnu/openblas-pthread
# per target: the sources it reads with, instrumented; the rest from the
# runtime archive
FUZZ_jinja  = runtime/text/jinja*.c runtime/text/tok_util.c runtime/util.c
FUZZ_config = $(filter-out compiler/main.c compiler/bench.c,$(CC_SRC)) runtime/util.c
FUZZ_st     = runtime/st.c runtime/util.c
FUZZ_index  = $(FUZZ_st)
FUZZ_tok    = runtime/text/*.c runtime/util.c
FUZZ_tokjson = $(FUZZ_tok)
FUZZ_tokrank = $(FUZZ_tok)
FUZZ_tokspm = $(FUZZ_tok)
FUZZ_tokjsonl = $(FUZZ_tok)
FUZZ_adapter = $(FUZZ_config) runtime/lora.c runtime/st.c
FUZZ_http   = runtime/serve_api.c $(FUZZ_tok)
FUZZ_BIN = $(FUZZ_TARGETS:%=tests/tmp/libfuzzer/%)
$(FUZZ_BIN): tests/tmp/libfuzzer/%: tests/fuzz/fuzz_target.c runtime/liblmcc.a $(wildcard runtime/*.[ch] runtime/text/*.[ch] compiler/*.[ch])
	@command -v clang >/dev/null || { echo "fuzz: needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p tests/tmp/libfuzzer
	clang $(FUZZ_CFLAGS) -DTARGET_$* tests/fuzz/fuzz_target.c $(FUZZ_$*) runtime/liblmcc.a \
	  -ltcc -ldl $(LDLIBS_RT) -o $@
fuzz-build: $(FUZZ_BIN)
fuzz: all $(FUZZ_BIN)
ifdef FUZZ_CPU_SECONDS
	@bash tests/fuzz/cpu.sh $(FUZZ_CPU_SECONDS) $(FUZZ_TARGETS)
else
	@for t in $(FUZZ_TARGETS); do \
	  sh tests/fuzz/seeds.sh $$t tests/tmp/libfuzzer/$$t.seeds; \
	  mkdir -p tests/tmp/libfuzzer/$$t.corpus tests/tmp/libfuzzer/$$t.out; \
	  echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=0 tests/tmp/libfuzzer/$$t -max_total_time=$(FUZZ_SECONDS) -detect_leaks=0 \
	    -rss_limit_mb=3072 -max_len=65536 -timeout=20 -artifact_prefix=tests/tmp/libfuzzer/$$t.out/ \
	    -print_final_stats=1 tests/tmp/libfuzzer/$$t.corpus tests/tmp/libfuzzer/$$t.seeds 2>&1 \
	    | grep -E '^stat::number_of_executed_units|^==|SUMMARY|artifact'; \
	done
endif

.PHONY: test-asan test-ubsan fuzz fuzz-build
