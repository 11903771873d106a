#!/bin/sh
# hardened.sh - `make bench HARDENED=1`: the suite as a JIT shipped with the
# hardened runtime meets it (macOS only).
#
#   hardened.sh check
#       exit 0 on macOS with codesign; else say why and exit 2 (the Makefile
#       runs this before it installs, builds or measures anything).
#   hardened.sh bench BUILD_DIR "FLAGS" "ALLOWLIST_FLAGS"
#       1. copy BUILD_DIR/wxbench to BUILD_DIR/hardened/wxbench, sign the copy
#          ad hoc with the hardened runtime and the entitlements of
#          tools/entitlements/allow-jit.plist (com.apple.security.cs.allow-jit),
#          run the suite with FLAGS (tools/bench.sh: figures and report too);
#       2. the same with tools/entitlements/jit-write-allowlist.plist (allow-jit
#          and com.apple.security.cs.jit-write-allowlist) into
#          BUILD_DIR/hardened-allowlist/wxbench, run with ALLOWLIST_FLAGS (the
#          MAP_JIT strategies): mapjit_callback where the allow-list is
#          enforced, and mapjit refused there.
#       Each run's directory ends in -hardened / -hardened-allowlist and its
#       meta.json says "hardened_runtime": true (wxbench reads its own
#       signature); `wxbench --probe` of each signing goes to probe.txt and
#       `codesign -d` to signing.txt in the run's directory. build/wxbench
#       itself keeps the linker's signature (make test uses it).
#       Exits with the worse of the two runs' statuses.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
ent="$here/tools/entitlements"

refuse() {
    echo "make bench HARDENED=1: $*" >&2
    echo "make bench HARDENED=1: nothing was built or measured; run make bench without HARDENED here" >&2
    exit 2
}

check() {
    os=$(uname -s)
    [ "$os" = Darwin ] || refuse "the hardened runtime is a macOS code-signing mode (codesign --options runtime);" \
                                 "this is $os $(uname -m), where binaries are not signed"
    command -v codesign >/dev/null 2>&1 || refuse "codesign is missing (install the Xcode command line tools:" \
                                                  "xcode-select --install)"
    for f in allow-jit.plist jit-write-allowlist.plist; do
        [ -f "$ent/$f" ] || refuse "the entitlements file tools/entitlements/$f is missing"
    done
}

# sign SRC DST PLIST: a copy of SRC at DST, signed ad hoc with the hardened
# runtime and PLIST's entitlements.
sign() {
    mkdir -p "$(dirname "$2")" || return 1
    cp -f "$1" "$2" || return 1
    codesign --force --sign - --options runtime --entitlements "$3" "$2" || return 1
    echo "hardened.sh: signed $2 (ad hoc, hardened runtime, entitlements $(basename "$3"))"
}

# run BINARY FLAGS: the suite through tools/bench.sh; probe.txt and
# signing.txt into the run's directory. Returns wxbench's status.
run() {
    bin=$1
    out=$(mktemp)
    rcfile=$(mktemp)
    # shellcheck disable=SC2086 # FLAGS are words
    { MAKE=${MAKE:-make} "$here/tools/bench.sh" "$bin" $2; echo $? >"$rcfile"; } | tee "$out"
    rc=$(cat "$rcfile")
    dir=$(sed -n 's/^run: //p' "$out" | tail -1)
    rm -f "$out" "$rcfile"
    if [ -n "$dir" ] && [ -d "$dir" ]; then
        "$bin" --probe >"$dir/probe.txt" 2>&1
        codesign -d --entitlements - --verbose=2 "$bin" >"$dir/signing.txt" 2>&1
        echo "hardened.sh: $dir/probe.txt, $dir/signing.txt"
    fi
    return "${rc:-1}"
}

case ${1:-} in
check)
    check
    ;;
bench)
    check
    b=$2 flags=$3 allow_flags=$4
    [ -x "$b/wxbench" ] || refuse "$b/wxbench is not built"
    worst=0
    sign "$b/wxbench" "$b/hardened/wxbench" "$ent/allow-jit.plist" || exit 1
    run "$b/hardened/wxbench" "$flags"
    rc=$?
    [ $rc -gt $worst ] && worst=$rc
    sign "$b/wxbench" "$b/hardened-allowlist/wxbench" "$ent/jit-write-allowlist.plist" || exit 1
    run "$b/hardened-allowlist/wxbench" "$allow_flags"
    rc=$?
    [ $rc -gt $worst ] && worst=$rc
    exit $worst
    ;;
*)
    echo "usage: hardened.sh check | bench BUILD_DIR FLAGS ALLOWLIST_FLAGS" >&2
    exit 2
    ;;
esac
