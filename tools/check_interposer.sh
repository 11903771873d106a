#!/bin/sh
# check_interposer.sh FILE TARGET - check that FILE is a Mach-O dylib for
# TARGET whose __interpose section replaces the calls `wxbench trace`
# records on macOS (mmap, munmap, mprotect, madvise, sys_icache_invalidate,
# mach_vm_remap, vm_protect, mach_vm_protect, pthread_jit_write_protect_np;
# on macOS 12 targets pthread_jit_write_with_callback_np too).
set -u
f=$1 target=$2
fail() { echo "check_interposer: $f: $*" >&2; exit 1; }
[ -f "$f" ] || fail "missing"
magic=$(od -An -tx1 -N4 "$f" | tr -d ' \n')
[ "$magic" = cffaedfe ] || fail "not a 64-bit Mach-O (magic $magic)"
ftype=$(od -An -tx1 -j12 -N4 "$f" | tr -d ' \n')
[ "$ftype" = 06000000 ] || fail "not a dylib (filetype $ftype)"
grep -aq "__interpose" "$f" || fail "no __interpose section"
need="_mmap _munmap _mprotect _madvise _sys_icache_invalidate _mach_vm_remap _vm_protect _mach_vm_protect
_pthread_jit_write_protect_np"
case $target in
    *macos.11.*) ;;
    *) need="$need _pthread_jit_write_with_callback_np" ;;
esac
for sym in $need; do
    grep -aq "$sym" "$f" || fail "does not reference $sym"
done
echo "check_interposer: $f: Mach-O dylib $target, __interpose section with the W^X calls"
