/* icache_ops.h - the ways icache_flush.c makes freshly written code visible
 * to instruction fetch, one small function each, kept in a header of their
 * own so that tests/cross/icache_manual.c can run the aarch64 one under
 * qemu-aarch64 without Google Benchmark. Every function is static inline;
 * each is compiled only where it exists.
 */
#ifndef WX_ICACHE_OPS_H
#define WX_ICACHE_OPS_H

#include <stddef.h>
#include <stdint.h>

#if defined(__aarch64__) && !defined(__APPLE__)
/* aarch64 Linux: CTR_EL0 is readable from user space (the kernel reports the
 * system-wide safe values where cores differ). */
#define WX_HAVE_MANUAL_FLUSH 1

/* CTR_EL0: cache type register. */
static inline uint64_t wx_read_ctr_el0(void)
{
    uint64_t v;
    __asm__ __volatile__("mrs %0, ctr_el0" : "=r"(v));
    return v;
}

/* Smallest data cache line, bytes (CTR_EL0.DminLine: log2 of words). */
static inline size_t wx_ctr_dline(uint64_t ctr)
{
    return (size_t)4 << ((ctr >> 16) & 0xf);
}

/* Smallest instruction cache line, bytes (CTR_EL0.IminLine). */
static inline size_t wx_ctr_iline(uint64_t ctr)
{
    return (size_t)4 << (ctr & 0xf);
}

/* Make len bytes of code written at write visible to instruction fetch at
 * exec (the same bytes; two views for a dual mapping), the architected way:
 * clean data lines to the point of unification unless CTR_EL0.IDC says that
 * is not needed, dsb ish, invalidate instruction lines unless CTR_EL0.DIC
 * says that is not needed (then dsb ish), isb. Uses the line sizes in ctr.
 * Returns the number of maintenance instructions issued (dc + ic). */
static inline size_t wx_flush_manual(void *write, void *exec, size_t len, uint64_t ctr)
{
    size_t ops = 0;
    if (!((ctr >> 28) & 1)) { /* IDC == 0 */
        const uintptr_t line = wx_ctr_dline(ctr);
        const uintptr_t end = (uintptr_t)write + len;
        for (uintptr_t a = (uintptr_t)write & ~(line - 1); a < end; a += line, ops++)
            __asm__ __volatile__("dc cvau, %0" : : "r"(a) : "memory");
    }
    __asm__ __volatile__("dsb ish" : : : "memory");
    if (!((ctr >> 29) & 1)) { /* DIC == 0 */
        const uintptr_t line = wx_ctr_iline(ctr);
        const uintptr_t end = (uintptr_t)exec + len;
        for (uintptr_t a = (uintptr_t)exec & ~(line - 1); a < end; a += line, ops++)
            __asm__ __volatile__("ic ivau, %0" : : "r"(a) : "memory");
        __asm__ __volatile__("dsb ish" : : : "memory");
    }
    __asm__ __volatile__("isb" : : : "memory");
    return ops;
}
#endif /* aarch64 Linux */

#if defined(__x86_64__)
#include <cpuid.h>

/* 1 if the CPU has the SERIALIZE instruction (CPUID.(EAX=7,ECX=0):EDX[14]). */
static inline int wx_has_serialize(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    (void)a;
    (void)b;
    (void)c;
    return (int)((d >> 14) & 1);
}

/* CPUID leaf 0: architecturally serialising on every x86_64 (and a VM exit
 * under a hypervisor). */
static inline void wx_serialize_cpuid(void)
{
    unsigned a = 0, b, c = 0, d;
    __asm__ __volatile__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d) : : "memory");
}

/* SERIALIZE (0F 01 E8), spelled as bytes for assemblers that lack it. Only
 * where wx_has_serialize() says so. */
static inline void wx_serialize_insn(void)
{
    __asm__ __volatile__(".byte 0x0f, 0x01, 0xe8" : : : "memory");
}
#endif /* x86_64 */

#if defined(__linux__)
#include "wx.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* membarrier(2); glibc has no wrapper. Returns what the system call does. */
static inline int wx_membarrier(int cmd, unsigned flags)
{
    return (int)syscall(__NR_membarrier, cmd, flags, 0);
}

/* Query membarrier for PRIVATE_EXPEDITED_SYNC_CORE and register this process
 * for it (call before any thread exists: registering later is slow).
 * Returns 1, or 0 with why[] naming the call that failed. */
static inline int wx_membarrier_sync_core_setup(char *why, size_t len)
{
    int mask = wx_membarrier(MEMBARRIER_CMD_QUERY, 0);
    if (mask < 0) {
        wx_why_errno(why, len, "membarrier(MEMBARRIER_CMD_QUERY)", errno);
        return 0;
    }
    if (!(mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)) {
        snprintf(why, len, "this kernel lacks MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE (MEMBARRIER_CMD_QUERY = %#x)",
                 mask);
        return 0;
    }
    if (wx_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0) != 0) {
        wx_why_errno(why, len, "membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE)", errno);
        return 0;
    }
    return 1;
}
#endif /* Linux */

#endif /* WX_ICACHE_OPS_H */
