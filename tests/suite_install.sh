#!/bin/sh
# make install into a temporary DESTDIR: the installed lmcc builds and runs
# a model from another directory, finding its templates, headers and
# runtime relative to its prefix; the pkg-config file builds a program on
# the C API; the man page covers every RUN OPTION; make uninstall removes
# every file.
cd "$(dirname "$0")/.." || exit 1
R=$(pwd)
T=$R/tests/tmp/install
rm -rf $T
mkdir -p $T/away
D=$T/dest
P=/usr/local
if ! make -s install PREFIX=$P DESTDIR=$D >$T/log 2>&1; then
	echo "FAIL install: make install: $(tail -c 300 $T/log)"
	exit 0
fi
L=$D$P/bin/lmcc
G=$R/tests/golden/afm7
for f in bin/lmcc lib/liblmcc.a lib/liblmcc.so lib/liblmcc.so.0 include/lmcc/lmcc.h \
         include/lmcc/lmcc_api.h share/lmcc/templates/model.c lib/pkgconfig/lmcc.pc share/man/man1/lmcc.1; do
	[ -e $D$P/$f ] || echo "FAIL install: $P/$f is not installed"
done
if objdump -p $D$P/lib/liblmcc.so.0 | grep -q "SONAME *liblmcc.so.0"; then
	echo "PASS install the shared runtime, with its SONAME"
else
	echo "FAIL install: the installed liblmcc.so.0 lacks its SONAME"
fi

cd $T/away || exit 1
want=$($R/lmcc run $G --tokens 5,9,17 -n 6 2>/dev/null)
if $L build $G -o m 2>$T/err && [ "$(./m/afm7 --tokens 5,9,17 -n 6 2>>$T/err)" = "$want" ] \
   && ./m/afm7 --check $G >/dev/null 2>>$T/err; then
	echo "PASS install the installed lmcc builds a model from another directory ($want)"
else
	echo "FAIL install lmcc build from another directory: $(head -c 300 $T/err)"
fi
if [ "$($L run $G --tokens 5,9,17 -n 6 2>$T/err)" = "$want" ]; then
	echo "PASS install the installed lmcc runs a model (JIT) from another directory"
else
	echo "FAIL install lmcc run from another directory: $(head -c 300 $T/err)"
fi
if command -v pkg-config >/dev/null 2>&1; then
	pc="env PKG_CONFIG_PATH=$D$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D pkg-config"
	if cc $LMCC_CFLAGS $($pc --cflags lmcc) $R/examples/generate.c $($pc --libs lmcc) -Wl,-rpath,$D$P/lib \
	      -o gen 2>$T/err && [ "$(LMCC=$L ./gen $G 5,9,17 2>>$T/err | head -1)" = "$($R/lmcc run $G --tokens 5,9,17 -n 8 2>/dev/null)" ]; then
		echo "PASS install pkg-config builds a program on the installed C API, which runs"
	else
		echo "FAIL install pkg-config program: $(head -c 300 $T/err)"
	fi
else
	echo "install: no pkg-config here; the .pc file is not tried"
fi
cd $R

# the man page names every option of every command's --help
miss=""
for c in $(./lmcc --help | sed -n 's/^  lmcc \([a-z]*\) .*/\1/p' | sort -u); do
	grep -q "^\.B lmcc $c" docs/lmcc.1 || miss="$miss command:$c"
	for o in $(./lmcc $c --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" docs/lmcc.1 || miss="$miss $c:$o"
	done
done
if [ -z "$miss" ]; then
	echo "PASS install lmcc(1) covers every subcommand's options and every RUN OPTION"
else
	echo "FAIL install lmcc(1) lacks:$miss"
fi

make -s uninstall PREFIX=$P DESTDIR=$D >$T/log 2>&1
left=$(find $D -type f -o -type l | head -5)
if [ -z "$left" ]; then
	echo "PASS install make uninstall removes every file"
else
	echo "FAIL install make uninstall leaves: $left"
fi
