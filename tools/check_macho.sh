#!/bin/sh
# check_macho.sh FILE TARGET - check that FILE is a Mach-O executable for
# TARGET's architecture and that the macOS code paths were compiled in (not
# their "unsupported" stubs): it must import the JIT, Mach VM, sysctl, QoS,
# code-signing and cache calls wxbench uses, name the sysctls it reads for
# them, and for macOS 12 targets the JIT write callback and its allow-list
# section.
set -u
f=$1 target=$2
fail() { echo "check_macho: $f: $*" >&2; exit 1; }
[ -f "$f" ] || fail "missing"
magic=$(od -An -tx1 -N4 "$f" | tr -d ' \n')
[ "$magic" = cffaedfe ] || fail "not a 64-bit Mach-O (magic $magic)"
cpu=$(od -An -tx1 -j4 -N4 "$f" | tr -d ' \n')
case $target in
    aarch64-*) [ "$cpu" = 0c000001 ] || fail "cputype $cpu is not arm64" ;;
    x86_64-*) [ "$cpu" = 07000001 ] || fail "cputype $cpu is not x86_64" ;;
    *) fail "unknown target $target" ;;
esac
need="_pthread_jit_write_protect_np _pthread_jit_write_protect_supported_np _mach_vm_remap _vm_protect
_sysctlbyname _sys_icache_invalidate _pthread_cpu_number_np _pthread_set_qos_class_self_np _dlopen
_pthread_attr_set_qos_class_np _csops _fork
security.codesigning.config hw.tbfrequency security.mac.lockdown_mode_state sysctl.proc_translated
com.apple.security.cs.allow-jit com.apple.security.cs.jit-write-allowlist"
case $target in
    *macos.11.*) ;;
    *) need="$need _pthread_jit_write_with_callback_np __pth_jit_func" ;;
esac
for sym in $need; do
    grep -aqF "$sym" "$f" || fail "does not reference $sym (a macOS code path was not compiled in)"
done
echo "check_macho: $f: Mach-O $target, macOS code paths linked"
