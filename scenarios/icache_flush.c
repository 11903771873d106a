/* icache_flush.c - what making new code visible to instruction fetch costs,
 * per method and per size of new code (64 B .. 1 MiB).
 *
 * One op: write size_bytes of new code, make it visible with the variant's
 * method, call it and check the value it returns. The code is size_bytes/64
 * stubs of 64 bytes (no-ops, then "return v"), all rewritten with a new v
 * every op; the op calls one of them, a different one each op (a stride that
 * visits every stub), so every flush is verified and the call costs the same
 * at every size. The write and the call are inside the timed loop; `none`
 * (the same loop with no flush, where that is correct) is the baseline to
 * subtract.
 *
 *   none        nothing: x86 instruction fetch is coherent with the same
 *               thread's stores (not correct on arm64: unsupported there)
 *   builtin     __builtin___clear_cache (nothing on x86; dc cvau/ic ivau on
 *               arm64 Linux; sys_icache_invalidate on macOS)
 *   manual      aarch64 Linux: dc cvau by D-line (unless CTR_EL0.IDC), dsb ish,
 *               ic ivau by I-line (unless CTR_EL0.DIC), dsb ish, isb, with the
 *               line sizes CTR_EL0 reports (icache_ops.h)
 *   cpuid       x86: a CPUID after the write (serialising; a VM exit in a guest)
 *   serialize   x86: the SERIALIZE instruction, where CPUID says it exists
 *   membarrier  builtin, then membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE):
 *               every running thread of the process serialises, as a JIT
 *               needs before other threads run code it patched; swept over
 *               0..ncpu-1 spinning victim threads (that is whom it interrupts).
 *               The victims only spin; the new code is verified on the
 *               measuring thread. As in every scenario with victims, a row
 *               whose victims made no progress or held their CPU for less
 *               than a quarter of the timed loop is `failed`.
 *   sys_icache_invalidate  macOS: the libkern call (the __APPLE__ blocks below)
 *
 * Strategies: the question is about the flush, so it is timed on memory that
 * needs no permission change between the write and the call - rwx (one view)
 * and dualmap (written through one view, run through the other; on arm64 the
 * data lines are cleaned by the write address and the instruction lines
 * invalidated by the execute address). Strategies that must switch are rows
 * `unsupported: question does not apply`; toggle_latency measures the switch.
 * That includes the strategies writable only inside write_code
 * (mapjit_callback).
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/app/scenario.h"
#include "../bench/core/icache_ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__APPLE__)
#include <libkern/OSCacheControl.h>
#endif

enum { M_NONE, M_BUILTIN, M_MANUAL, M_CPUID, M_SERIALIZE, M_MEMBARRIER, M_SYS_ICACHE };
static const char *const ic_variants[] = {"none",      "builtin",    "manual", "cpuid",
                                          "serialize", "membarrier", "sys_icache_invalidate", NULL};

#define UNIT 64u            /* bytes per stub */
#define CALL_STRIDE 40503u  /* odd: visits every stub of a power-of-two count */
#define FIRST_VALUE 1u

/* Everything one case needs. */
typedef struct ic_state {
    size_t size;              /* bytes of code written and flushed per op */
    size_t nunits;            /* stubs in it */
    wx_region r;              /* the code memory */
    int mapped;               /* r is mapped */
    uint64_t ctr;             /* CTR_EL0 (manual) */
    uint32_t value;           /* value the newest code returns */
    uint64_t op;              /* ops done */
    unsigned char unit[UNIT]; /* one stub, written size/UNIT times per op */
    unsigned char *stage;     /* size bytes: the staging buffer of wx_code_begin */
} ic_state;

/* ---------------------------------------------------------------------------
 * Which methods run here, and why not
 * ------------------------------------------------------------------------ */

/* membarrier's state for this process: probed and registered once, before
 * any thread of the process starts (registering later is slow). */
static int g_membarrier = -1; /* 1 registered, 0 not available */
static char g_membarrier_why[WX_REASON_LEN];

static void membarrier_probe(void)
{
    if (g_membarrier >= 0)
        return;
    g_membarrier = 0;
#if defined(__linux__)
    g_membarrier = wx_membarrier_sync_core_setup(g_membarrier_why, sizeof g_membarrier_why);
#else
    snprintf(g_membarrier_why, sizeof g_membarrier_why, "needs Linux membarrier(2); this OS has none");
#endif
}

/* 1 if method m runs here; else 0 with why[]. */
static int method_available(int m, char *why, size_t len)
{
    switch (m) {
    case M_NONE:
#if defined(__x86_64__)
        return 1;
#else
        snprintf(why, len, "arm64 needs at least dsb ish + isb between writing code and running it, even where "
                           "CTR_EL0.IDC and DIC are set: there is no flush-free baseline");
        return 0;
#endif
    case M_BUILTIN:
        return 1;
    case M_MANUAL:
#if defined(WX_HAVE_MANUAL_FLUSH)
        return 1;
#elif defined(__aarch64__)
        snprintf(why, len, "CTR_EL0 is not readable from user space on this OS; use its cache API");
        return 0;
#else
        snprintf(why, len, "needs aarch64 (DC CVAU / IC IVAU by the line sizes in CTR_EL0)");
        return 0;
#endif
    case M_CPUID:
#if defined(__x86_64__)
        return 1;
#else
        snprintf(why, len, "needs x86_64 (CPUID)");
        return 0;
#endif
    case M_SERIALIZE:
#if defined(__x86_64__)
        if (wx_has_serialize())
            return 1;
        snprintf(why, len, "this CPU lacks SERIALIZE (CPUID.(EAX=7,ECX=0):EDX[14] = 0); "
                           "cpuid is the serialising instruction measured instead");
        return 0;
#else
        snprintf(why, len, "needs x86_64 (SERIALIZE)");
        return 0;
#endif
    case M_MEMBARRIER:
        membarrier_probe();
        if (g_membarrier == 1)
            return 1;
        snprintf(why, len, "%s", g_membarrier_why);
        return 0;
    case M_SYS_ICACHE:
#if defined(__APPLE__)
        return 1;
#else
        snprintf(why, len, "needs macOS (sys_icache_invalidate, <libkern/OSCacheControl.h>)");
        return 0;
#endif
    }
    snprintf(why, len, "unknown method");
    return 0;
}

/* ---------------------------------------------------------------------------
 * The op
 * ------------------------------------------------------------------------ */

/* Make the new code visible with the case's method: 0, or -1 with j->why. */
static int make_visible(wx_job *j, ic_state *x)
{
    char *exec = x->r.exec;
    switch ((int)j->c->param) {
    case M_NONE:
        return 0;
    case M_BUILTIN:
        __builtin___clear_cache(exec, exec + x->size);
        return 0;
#if defined(WX_HAVE_MANUAL_FLUSH)
    case M_MANUAL:
        (void)wx_flush_manual(x->r.write, exec, x->size, x->ctr);
        return 0;
#endif
#if defined(__x86_64__)
    case M_CPUID:
        wx_serialize_cpuid();
        return 0;
    case M_SERIALIZE:
        wx_serialize_insn();
        return 0;
#endif
#if defined(__linux__)
    case M_MEMBARRIER:
        __builtin___clear_cache(exec, exec + x->size);
        if (wx_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0) != 0)
            return wx_job_errno(j, "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)", errno);
        return 0;
#endif
#if defined(__APPLE__)
    case M_SYS_ICACHE:
        sys_icache_invalidate(exec, x->size);
        return 0;
#endif
    }
    return wx_job_fail(j, "method %s is not compiled for this platform", ic_variants[j->c->param]);
}

/* n ops: write all the code with a new value, make it visible, call one
 * stub, check. */
static int ic_ops(wx_job *j, uint64_t n)
{
    ic_state *x = j->state;
    unsigned char *e = x->r.exec;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t v = ++x->value;
        wx_emit_stub(x->unit, UNIT, v);
        int err;
        unsigned char *w = wx_code_begin(j->s, &x->r, 0, x->stage, &err);
        if (err == 0) {
            for (size_t u = 0; u < x->nunits; u++)
                memcpy(w + u * UNIT, x->unit, UNIT);
            err = wx_code_end(j->s, &x->r, 0, x->stage, x->size);
        }
        if (err)
            return wx_job_errno(j, "begin_write/end_write", err);
        if (make_visible(j, x) != 0)
            return -1;
        size_t k = (size_t)((x->op++ * CALL_STRIDE) % x->nunits);
        uint32_t got = wx_stub_at(e + k * UNIT)();
        if (got != v)
            return wx_job_fail(j, "verification failed: after %s the stub at offset %zu returned %u, expected %u",
                               ic_variants[j->c->param], k * UNIT, got, v);
    }
    return 0;
}

static int ic_setup(wx_job *j)
{
    ic_state *x = j->state;
    x->size = (size_t)j->c->size_bytes;
    x->nunits = x->size / UNIT;
#if defined(WX_HAVE_MANUAL_FLUSH)
    x->ctr = wx_read_ctr_el0();
#endif
    if (!(x->stage = malloc(x->size)))
        return wx_job_fail(j, "out of memory"), WX_FAILED;
    size_t page = (size_t)j->run->page_size;
    size_t map = (x->size + page - 1) / page * page;
    /* Every stub returns FIRST_VALUE before the first op. */
    unsigned char *img = calloc(1, map);
    if (!img)
        return wx_job_fail(j, "out of memory"), WX_FAILED;
    wx_emit_stub(x->unit, UNIT, FIRST_VALUE);
    for (size_t u = 0; u < x->nunits; u++)
        memcpy(img + u * UNIT, x->unit, UNIT);
    int e = j->s->map(&x->r, map, j->why, sizeof j->why);
    if (e == 0) {
        x->mapped = 1;
        if ((e = wx_write_code(j->s, &x->r, 0, img, map)) != 0)
            wx_job_errno(j, "begin_write/end_write", e);
    }
    free(img);
    if (e != 0)
        return WX_FAILED;
    wx_icache_flush(x->r.write, x->r.exec, x->size);
    uint32_t got = wx_stub_at(x->r.exec)();
    if (got != FIRST_VALUE)
        return wx_job_fail(j, "verification failed: the first stub returned %u, expected %u", got, FIRST_VALUE),
               WX_FAILED;
    x->value = FIRST_VALUE;
    return WX_OK;
}

static void ic_teardown(wx_job *j)
{
    ic_state *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->r);
    free(x->stage);
}

/* A victim step: spin, counting (the harness counts the step). */
static int spin_step(wx_job *j, int k, void *mine, char *why, size_t len)
{
    (void)j, (void)k, (void)why, (void)len;
    ++*(volatile uint64_t *)mine;
    return WX_STEP_DONE;
}

static const wx_kernel k_flush = {.state_size = sizeof(ic_state), .step = 16, .flags = WX_K_SHORT,
                                  .setup = ic_setup, .ops = ic_ops, .teardown = ic_teardown,
                                  .victim_size = sizeof(uint64_t), .victim_step = spin_step};

/* ---------------------------------------------------------------------------
 * Cases
 * ------------------------------------------------------------------------ */

static void ic_register(const wx_run *run)
{
    const wx_strategy *s = run->strategy;
    char why[WX_REASON_LEN];
    /* Before any thread of this process exists (the victims). */
    membarrier_probe();

    if (!(s->flags & WX_NO_SWITCH)) {
        snprintf(why, sizeof why,
                 "question does not apply: %s must change permissions between writing and running code "
                 "(toggle_latency measures that); the flush is timed on rwx and dualmap memory",
                 s->name);
        for (int m = 0; ic_variants[m]; m++) {
            wx_case c = {.variant = ic_variants[m]};
            wx_add_unsupported(&c, why);
        }
        return;
    }

    static const uint64_t full_sizes[] = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};
    static const uint64_t quick_sizes[] = {64, 4096, 1048576};
    uint64_t victims[16];
    const wx_axis victim_axis = wx_victim_axis(run, victims);
    for (int m = 0; ic_variants[m]; m++) {
        wx_case c = {.variant = ic_variants[m], .param = (uintptr_t)m};
        if (!method_available(m, why, sizeof why))
            wx_add_unsupported(&c, why);
        else
            wx_add_product(&c, &k_flush, WX_AXIS_Q(run, full_sizes, quick_sizes),
                           m == M_MEMBARRIER ? victim_axis : WX_AXIS_NONE, WX_AXIS_NONE, WX_AXIS_NONE, 0);
    }
}

const wx_scenario wx_scenario_icache_flush = {
    .name = "icache_flush", .variants = ic_variants, .register_cases = ic_register,
    .question = "what does making new code visible to instruction fetch cost, per method and size?",
    .op = "write size_bytes of code, make it visible with the variant's method, call it and check the value "
          "(none: the same without a flush, to subtract)",
};
