/* wxtrace_format.h - the raw files the interposer (wxtrace.c) writes while a
 * traced program runs, and `wxbench trace` reads when it has ended.
 *
 * Each image of a traced process (the command, every fork child, every
 * program an exec started) writes one file, DIR/raw/<pid>-<start ns>.wxt:
 * a header page, then fixed-size records, one per intercepted call (and, at
 * the end of the image, one per run of resident pages of each code region).
 * The interposer writes records in batches (and always before an exec, a
 * fork and at the image's end: exit, _exit, exit_group); the header's count
 * says how many of the file's records are whole. A process killed by a
 * signal loses the records not written yet. Records carry raw values; names,
 * filtering (only code regions) and CSV are the reader's job. */
#ifndef WXTRACE_FORMAT_H
#define WXTRACE_FORMAT_H

#include <stdint.h>

#define WXT_MAGIC 0x31435254584bu /* "WXTRC1" in the header */
#define WXT_VALID 0xc0deu         /* set last in a complete record */
#define WXT_HEADER_BYTES 4096u
#define WXT_ENV_DIR "WXTRACE_DIR" /* where raw/ lives; set by `wxbench trace` */

/* The intercepted calls (record.call). */
enum wxt_call {
    WXT_MMAP = 1,
    WXT_MUNMAP,
    WXT_MREMAP,
    WXT_MPROTECT,
    WXT_PKEY_MPROTECT,
    WXT_PKEY_ALLOC,
    WXT_PKEY_FREE,
    WXT_MEMFD_CREATE,
    WXT_MEMBARRIER,
    WXT_MADVISE,
    WXT_JIT_WRITE_PROTECT,   /* macOS pthread_jit_write_protect_np(detail) */
    WXT_JIT_WRITE_CALLBACK,  /* macOS pthread_jit_write_with_callback_np */
    WXT_ICACHE_INVALIDATE,   /* macOS sys_icache_invalidate */
    WXT_MACH_VM_REMAP,       /* macOS mach_vm_remap */
    WXT_VM_PROTECT,          /* macOS vm_protect / mach_vm_protect (detail: set_maximum) */
    WXT_RESIDENT,            /* not a call: a run of resident pages of a code region at the image's end */
    WXT_NCALLS
};

/* Protection values in records: PROT_* bits (read 1, write 2, exec 4), or: */
#define WXT_PROT_UNKNOWN (-1)  /* memory the interposer did not see mapped */
#define WXT_PROT_MIXED (-2)    /* the range has pages of different protections */
#define WXT_PROT_NONE_YET (-3) /* nothing mapped (before mmap, after munmap) */

/* Record flags. */
#define WXT_F_JIT 0x1          /* the region was mapped MAP_JIT (macOS) */
#define WXT_F_SYNTHETIC 0x2    /* the region was first seen in this call (mapped before tracing or by others) */
#define WXT_F_SYSCALL 0x4      /* the call came through syscall(2) */

/* One record: 96 bytes. */
typedef struct wxt_record {
    uint64_t t0;          /* CLOCK_MONOTONIC ns when the call started */
    uint64_t dur;         /* ns in the call */
    uint32_t tid;         /* OS thread id */
    uint16_t call;        /* enum wxt_call */
    uint16_t valid;       /* WXT_VALID once complete */
    uint32_t region;      /* region id in this process (0: none) */
    uint32_t flags;       /* WXT_F_* */
    uint64_t off;         /* bytes from the region's start */
    uint64_t len;         /* bytes the call covers */
    uint64_t region_size; /* the region's size after the call (mremap: the new size) */
    int32_t prot_before;  /* of the range, before */
    int32_t prot_after;   /* of the range, after (what was asked where the call failed) */
    int64_t detail;       /* call-specific: mmap flags, madvise advice, membarrier cmd, pkey, enabled... */
    int64_t result;       /* return value (mmap-like calls: 0 on success) */
    int32_t err;          /* errno when the call failed, else 0 */
    int32_t pad;
    uint32_t adj_below;   /* mmap: the region ending where this one starts (0: none known) */
    uint32_t adj_above;   /* mmap: the region starting where this one ends (0: none known) */
} wxt_record;

/* How the image's process came to be traced. */
enum { WXT_START_EXEC = 0, WXT_START_FORK = 1 };

/* The header page. */
typedef struct wxt_header {
    uint64_t magic;
    uint32_t version;      /* 1 */
    uint32_t record_size;  /* sizeof(wxt_record) */
    int32_t pid, ppid;
    uint32_t started;      /* WXT_START_* */
    uint32_t page_size;
    uint64_t start_ns;     /* CLOCK_MONOTONIC at the image's start (fork: at the fork) */
    uint64_t end_ns;       /* at its end: exit handlers, _exit, exit_group (0: it never reached one: exec, killed) */
    volatile uint64_t count; /* records written */
    uint32_t lost;         /* records that could not be written (file could not grow) */
    uint32_t pad;
    char exe[1024];        /* /proc/self/exe (or argv[0]) */
} wxt_header;

#endif /* WXTRACE_FORMAT_H */
