/* strategy.h - strategies (ways to get memory a JIT can write and then
 * execute), the strategy table, baseline memory, and the one path every
 * piece of code is written through (wx_code_begin/wx_code_end for timed
 * writes, wx_write_code for set-ups). Part of the C core: no Google
 * Benchmark. */
#ifndef WX_STRATEGY_H
#define WX_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length of every buffer that carries a human-readable reason. */
#define WX_REASON_LEN 256

/* Flags describing what a strategy's permission change affects. */
enum {
    WX_PER_THREAD = 1u << 0,      /* begin/end_write change only the calling thread's view */
    WX_WRITABLE_ALIAS = 1u << 1,  /* a writable view of the code exists permanently */
    WX_ALWAYS_RWX = 1u << 2,      /* memory is writable and executable at once, never switched */
    WX_NO_SWITCH = 1u << 3,       /* begin/end_write do nothing (rwx, dualmap) */
    WX_JIT_TOGGLE = 1u << 4,      /* MAP_JIT memory under Apple's per-thread JIT write protection (mapjit,
                                     mapjit_callback): where the toggle is not enforced (platform.h,
                                     wx_jit_toggle_enforced) its rows say so */
};

/* One region of code memory handed out by a strategy. */
typedef struct wx_region {
    void *write;        /* where code is written (valid while writable) */
    void *exec;         /* where code is executed (valid while executable) */
    size_t size;        /* bytes, a multiple of the page size */
    int fd;             /* file descriptor behind a shared mapping, or -1 */
    int key;            /* protection key, or -1 */
    void *priv;         /* strategy-private pointer */
} wx_region;

/* A strategy: one way to get writable-then-executable memory.
 * Every function returns 0 on success or an errno value; begin_write and
 * end_write always perform the change they stand for (no state tracking),
 * so a caller can time redundant requests. A freshly mapped region is in the
 * executable state.
 *
 * A strategy that cannot exist in this build (another OS or CPU) sets
 * `unavailable` to the reason and leaves every function NULL: nothing calls
 * them then (wx_strategy_supported answers with the reason). */
typedef struct wx_strategy {
    const char *name;          /* as used on the command line and in results.csv */
    const char *summary;       /* one line: how it works */
    unsigned flags;            /* WX_* flags above */
    const char *unavailable;   /* non-NULL: why this build has no such strategy (functions NULL) */
    /* 1 if the strategy can run here; else 0 with why[] filled in. */
    int (*supported)(char *why, size_t len);
    /* Map a region of at least size bytes; on failure why[] says which call failed. */
    int (*map)(wx_region *r, size_t size, char *why, size_t len);
    /* Make the region writable for the calling thread (code may not run). */
    int (*begin_write)(wx_region *r);
    /* Make the region executable for the calling thread (code may not be written). */
    int (*end_write)(wx_region *r);
    /* Release everything map() acquired. */
    void (*unmap)(wx_region *r);
    /* Optional; NULL for every strategy where a memcpy between begin_write
     * and end_write writes code. Where set (mapjit_callback), the region is
     * writable only inside this call: it becomes writable for the calling
     * thread, len bytes are copied from src to offset off of r->write, and it
     * is executable again when the call returns (len 0: the round trip with
     * nothing copied). begin_write then returns ENOTSUP and end_write does
     * nothing. Code is written through wx_code_begin/wx_code_end or
     * wx_write_code, which hide the difference. Returns 0 or an errno. */
    int (*write_code)(wx_region *r, size_t off, const void *src, size_t len);
} wx_strategy;

/* The five functions of a strategy whose functions are p_supported, p_map,
 * p_begin_write, p_end_write and p_unmap, for its descriptor. */
#define WX_FUNCTIONS(p)                                                                                        \
    .supported = p##_supported, .map = p##_map, .begin_write = p##_begin_write, .end_write = p##_end_write,    \
    .unmap = p##_unmap

/* Every strategy compiled in (strategies/strategies.def), in display order,
 * NULL-terminated; entries whose `unavailable` is set are listed too. */
extern const wx_strategy *const wx_strategies[];
/* The strategy called name, or NULL. */
const wx_strategy *wx_strategy_find(const char *name);
/* Number of strategies in wx_strategies. */
size_t wx_strategy_count(void);
/* 1 if s can run here; else 0 with why[] filled (its `unavailable` reason,
 * or what its supported() found). */
int wx_strategy_supported(const wx_strategy *s, char *why, size_t len);

/* The strategy whose memory baseline loops run on: plain RWX memory (rwx),
 * or on Apple silicon, where W+X memory is refused, a dual mapping (dualmap)
 * whose views never change protection. */
const wx_strategy *wx_baseline_strategy(void);
/* 1 if the baseline memory works here (checked once per process); else 0
 * with why[] saying so. */
int wx_baseline_available(char *why, size_t len);
/* Map size bytes of baseline memory; ENOTSUP with why[] where there is none. */
int wx_baseline_map(wx_region *r, size_t size, char *why, size_t len);
/* Release a region from wx_baseline_map. */
void wx_baseline_unmap(wx_region *r);

/* Map a region with strategy s, write every page (so no page is untouched
 * when timing starts), put a stub returning value at its start, make it
 * executable, call it and check the value. Returns 0, or an errno / -1 with
 * why[] saying which step failed (nothing is left mapped). The region is
 * left executable. */
int wx_region_prepare(const wx_strategy *s, wx_region *r, size_t size, uint32_t value, char *why, size_t len);

/* Write len bytes of code from src at offset off of r and leave r
 * executable: s->write_code where the strategy has one, else begin_write,
 * memcpy, end_write. For set-ups (never injected with test faults). The
 * instruction cache is not touched: call wx_icache_flush afterwards. */
int wx_write_code(const wx_strategy *s, wx_region *r, size_t off, const void *src, size_t len);

/* For strategies' map(): r becomes size bytes written through write and
 * run through exec (the same address for a single view), no fd, no key. */
void wx_region_set(wx_region *r, void *write, void *exec, size_t size);
/* For strategies' unmap(): munmap r's views (exec too where it differs)
 * and clear them; nothing mapped, nothing done. */
void wx_region_munmap(wx_region *r);
/* For strategies' supported(): 1 when map() gives a region of size bytes
 * (then unmapped), else 0 with why[] from map(). */
int wx_region_try(int (*map)(wx_region *, size_t, char *, size_t), void (*unmap)(wx_region *), size_t size,
                  char *why, size_t len);
#if defined(__APPLE__)
/* macOS: map size bytes of MAP_JIT memory (RWX in the page tables, each
 * thread switching its own view with the JIT write-protect state) into r.
 * 0, or an errno with why[] naming the call and the cause that errno and
 * the situation point to (wx_map_jit_failure). */
int wx_mmap_jit(wx_region *r, size_t size, char *why, size_t len);
#endif
struct wx_signing;
/* The reason wx_mmap_jit gives when mmap(MAP_JIT) failed with err: the call
 * and errno, then the cause chosen by errno and by the situation s
 * describes (platform.h): Lockdown Mode, MAP_JIT turned off system-wide, a
 * refusal of the code-signing monitor (EPERM), the hardened runtime without
 * com.apple.security.cs.allow-jit, or none identified. Portable, so every
 * case is unit-tested anywhere. */
void wx_map_jit_failure(int err, const struct wx_signing *s, char *why, size_t len);

/* Format "call: strerror(err) (errno N)" into why; returns err. */
int wx_why_errno(char *why, size_t len, const char *call, int err);

/* ---------------------------------------------------------------------------
 * Test injections (test builds, -DWX_TESTING, only; always off otherwise)
 * ------------------------------------------------------------------------ */

/* Faults a test can ask for in WXBENCH_TEST_INJECT (comma-separated names). */
enum {
    WX_INJ_SKIP_WRITE = 1u << 0,     /* "skip_write": timed code writes never land */
    WX_INJ_CORRUPT_STUB = 1u << 1,   /* "corrupt_stub": one op writes a wrong constant */
    WX_INJ_VICTIMS_STALL = 1u << 2,  /* "victims_stall": victims stop after their first step */
    WX_INJ_MAP_EXHAUST = 1u << 3,    /* "map_exhaust": the mapping count is exhausted before timing */
    WX_INJ_CORRUPT_LAST_PAGE = 1u << 4, /* "corrupt_last_page": the stub of a stub-pages region's last page
                                           returns a wrong value from the start of the timed loop */
    WX_INJ_INTERFERE = 1u << 5,      /* "interfere": every timed case with victims is spoiled by "other work" */
    WX_INJ_INTERFERE_ONCE = 1u << 6, /* "interfere_once": the same, in a repetition's first try only */
};

#ifdef WX_TESTING
/* The WX_INJ_* bits asked for, read from the environment once at start. */
extern unsigned wx_inject_bits;
#define wx_injected(bit) ((wx_inject_bits & (bit)) != 0)
#else
#define wx_injected(bit) 0
#endif
/* 1 if the named fault is asked for (any name, test builds only; 0 otherwise). */
int wx_test_inject(const char *fault);

/* ---------------------------------------------------------------------------
 * The code-write path of timed loops
 * ------------------------------------------------------------------------ */

/* Open a write of code at offset off of r and return where to put the bytes:
 * r->write + off for strategies switched by begin_write (called here; *err
 * gets its errno, and nothing may be written when it is not 0), or stage for
 * strategies writable only inside write_code (*err = 0). stage is a buffer
 * of the caller's, at least as long as the write; for an in-place patch of
 * existing code it must hold that code's current bytes (a shadow kept by
 * the caller). Test builds: under skip_write the bytes go to stage and never
 * reach the region. */
static inline void *wx_code_begin(const wx_strategy *s, wx_region *r, size_t off, void *stage, int *err)
{
    if (s->write_code) {
        *err = 0;
        return stage;
    }
    *err = s->begin_write(r);
    return wx_injected(WX_INJ_SKIP_WRITE) ? stage : (char *)r->write + off;
}

/* Close the write opened by wx_code_begin: the len bytes are at off of r
 * and r is executable for the calling thread (write_code copies stage in;
 * the others end_write). 0 or an errno value. */
static inline int wx_code_end(const wx_strategy *s, wx_region *r, size_t off, const void *stage, size_t len)
{
    if (s->write_code)
        return s->write_code(r, off, stage, wx_injected(WX_INJ_SKIP_WRITE) ? 0 : len);
    return s->end_write(r);
}

/* One writable -> executable round trip with nothing written. 0 or the
 * errno of the first call that failed. */
static inline int wx_code_flip(const wx_strategy *s, wx_region *r)
{
    if (s->write_code)
        return s->write_code(r, 0, NULL, 0);
    int e = s->begin_write(r);
    int f = s->end_write(r);
    return e ? e : f;
}

#ifdef __cplusplus
}
#endif

#endif /* WX_STRATEGY_H */
