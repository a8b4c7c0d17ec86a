#!/usr/bin/env bash
# packaging/build-deb.sh - `make deb`: build the Debian package from a clean copy of the tree.
#
# Copies the source files (git ls-files: tracked and untracked-but-not-ignored files, minus
# build output; outside git, the tree minus build directories) to a temporary directory, puts
# packaging/debian there as debian/, runs `dpkg-buildpackage -us -uc -b`, then lintian.  The
# results (mxsane_VERSION_ARCH.deb, .buildinfo, .changes, the build log) go to OUT (default
# build/deb).  Fails when the Makefile's VERSION and debian/changelog disagree, when the build
# fails, or when lintian reports an error or a warning.  LINTIAN=0 skips lintian.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
OUT=${OUT:-$TOP/build/deb}
case $OUT in /*) ;; *) OUT=$TOP/$OUT ;; esac

for c in dpkg-buildpackage dpkg-parsechangelog dh; do
	command -v "$c" >/dev/null || {
		echo "build-deb: $c not found: apt-get install dpkg-dev debhelper" >&2
		exit 1
	}
done

version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
mkversion=$(sed -n 's/^VERSION *:= *//p' Makefile)
if [ "$version" != "$mkversion" ]; then
	echo "build-deb: packaging/debian/changelog says $version, the Makefile's VERSION $mkversion:" \
		"add a changelog entry (dch -v $mkversion)" >&2
	exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mxsane-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/mxsane-$version
mkdir "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked files that exist (a file deleted but not yet committed is left out).
	# Tracked and untracked-but-not-ignored files, without build output: what a clean
	# checkout would have once the work in progress is committed.
	git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
		case $f in build/* | build-*/* | debian/*) continue ;; esac
		[ -e "$f" ] && printf '%s\0' "$f"
	done | tar --null -T - -cf - | tar -C "$src" -xf -
else
	tar -C "$TOP" --exclude='./build*' --exclude=./debian -cf - . | tar -C "$src" -xf -
fi
rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"

echo "== dpkg-buildpackage -us -uc -b in $src"
mkdir -p "$OUT"
log=$OUT/mxsane_${version}_${arch}.build
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
	tail -n 60 "$log" >&2
	echo "build-deb: dpkg-buildpackage failed; full log: $log" >&2
	exit 1
fi
base=mxsane_${version}_${arch}
# the .deb, the -dbgsym .deb, .buildinfo and .changes
rm -f "$OUT"/mxsane*_"${version}"_*.deb
cp "$tmp"/mxsane*_"${version}"_* "$OUT/"
echo "built $OUT/$base.deb (log: $log)"

# Debian's hardening flags must reach every compiler and linker command.  --debian: PIE is
# the compiler's default on Debian, so no -fPIE is expected on the command lines.
if command -v blhc >/dev/null; then
	echo "== blhc (hardening flags in the build log)"
	blhc --debian --all "$log"
	echo "blhc: every command has the hardening flags"
fi

if [ "${LINTIAN:-1}" = 1 ]; then
	if command -v lintian >/dev/null; then
		echo "== lintian $base.changes"
		# --fail-on: an error or a warning fails `make deb` (info/pedantic are shown only)
		lintian --fail-on error,warning --info "$OUT/$base.changes"
		echo "lintian: no errors, no warnings"
	else
		echo "build-deb: lintian not installed: not checked (apt-get install lintian)" >&2
	fi
fi
