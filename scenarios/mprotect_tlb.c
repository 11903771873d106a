/* mprotect_tlb.c - what one protection change costs as the address space
 * gets busy: region size swept in pages, with 0..ncpu-1 victims running
 * beside the measuring thread (LATR's shootdown microbenchmark; will-it-scale's
 * threads-vs-processes contrast).
 *
 *   flip                   begin_write then end_write on a region whose every
 *                          page was written; victims are threads of this
 *                          process                 op = one RW->RX round trip
 *   noop                   end_write twice while executable: the same number
 *                          of calls, no change     op = two requests for the state in force
 *   flip_victim_processes  flip, the victims being forked processes, each in
 *                          its own address space   op = one RW->RX round trip
 *
 * A strategy with a write_code hook (mapjit_callback; the test build's
 * test_hook) is writable only inside that call: its flip is one
 * write_code(r, 0, NULL, 0) - writable and executable again, nothing copied -
 * and noop does not exist for it (there is no request for the state in
 * force: every call switches to writable and back), so noop is `unsupported`.
 *
 * tlb_shootdowns_per_op is the machine-wide TLB-shootdown interrupt count
 * (x86 Linux, /proc/interrupts) over the timed loop, per op.
 *
 * The victims. Victim k is pinned to the (k+1)-th allowed CPU (index 0 is the
 * measuring thread's), waits at a start barrier with the others, and then
 * spins - never sleeps - over the region, one page per step:
 *   1. it reads the constant of the stub on that page (a data load: its data
 *      TLB holds the page), and checks it;
 *   2. it calls code and checks the value returned. Calling into the region
 *      is only safe while the region is executable for the victim throughout
 *      the timed loop: for strategies whose switch is per thread (pkey,
 *      mapjit: the victim's own view stays executable) or absent (dualmap,
 *      whose executable view never changes), and in `noop`. Under mprotect's
 *      `flip` the timing thread makes the whole region RW for everyone, and a
 *      victim fetching an instruction from it in that window would fault, so
 *      there the victim calls an identical stub on a page of its own that is
 *      always executable (the same work per step) and only reads the region.
 *      That is enough for the question: x86 Linux sends a shootdown IPI to
 *      every CPU currently running a thread of the address space, whatever
 *      the thread touches; what the reads add is the victim's refill of the
 *      entries it loses.
 * Each victim counts its steps and reports its CPU time; a row whose victims
 * made no step during the timed loop, or spent less than a quarter of it on
 * their CPU (preempted by other work: then they receive no shootdowns
 * either), is `failed`, not a number (threads.h: WX_VICTIM_MIN_RUNNING); the
 * loop starts once the victims have held their CPUs for 2 ms (waiting up to
 * 50 ms), so that it does not begin in another program's time slice.
 * Process victims do the same over a region of their own (mapped, written
 * and made executable in the child): they receive no shootdowns for the
 * measuring process's changes.
 *
 * Each case runs for a quarter of the run's --min-time (at least 10 ms with
 * victims, 2 ms without), so that every reported timed loop is long enough to
 * show whether the victims ran; regions of 256 pages and more are timed one
 * op per batch.
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/threads.h"
#include "../bench/wx.h"
#include "stub_pages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

enum { V_FLIP, V_NOOP, V_PROC };
static const char *const tlb_variants[] = {"flip", "noop", "flip_victim_processes", NULL};

#define SETTLE_WINDOW_NS 2000000ull     /* victims must have held their CPU for this long ... */
#define SETTLE_MAX_WAIT_NS 50000000ull /* ... waiting at most this long, before a timed loop */
extern const wx_strategy wx_strategy_mprotect;

#define VSTUB_VALUE 0x5eu /* the victims' own always-executable stub */

/* One victim's private state (its own cache line). */
typedef struct vstate {
    _Alignas(128) size_t cursor; /* next page */
    uint64_t done;               /* steps done */
    unsigned char *own;          /* process victims: their own region */
} vstate;

/* Everything one case needs. */
typedef struct tlb_ctx {
    const wx_strategy *s;  /* strategy under test */
    int variant;           /* V_* */
    size_t page, pages;    /* page size, region pages */
    wx_region r;           /* the region whose protection changes */
    int mapped;            /* r is mapped */
    int exec_region;       /* victims may call the region's stubs during the timed loop */
    wx_region vstub;       /* victims' always-executable stub page (mapped if vstub.exec) */
    int stall;             /* test: victims stop stepping after their first step */
    int nvictims;          /* victims to start */
    vstate *vs;            /* one per victim */
    wx_victims *v;         /* running victims */
} tlb_ctx;

/* In the victim, before the start barrier. */
static int victim_prepare(void *arg, int k, char *why, size_t len)
{
    tlb_ctx *x = arg;
    if (x->variant == V_PROC) {
        /* Its own region in its own address space: written, then executable. */
        size_t size = x->page * x->pages;
        unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if ((void *)p == MAP_FAILED)
            return wx_why_errno(why, len, "mmap(victim process region)", errno);
        for (size_t i = 0; i < x->pages; i++) {
            memset(p + i * x->page, 0, x->page);
            wx_emit_stub(wx_page_stub(p, i, x->page), wx_stub_size(), WX_PAGE_STUB_VALUE(i));
        }
        if (mprotect(p, size, PROT_READ | PROT_EXEC) != 0)
            return wx_why_errno(why, len, "mprotect(victim process region, PROT_READ|PROT_EXEC)", errno);
        wx_icache_flush(p, p, size);
        x->vs[k].own = p; /* this process's copy of x */
        return 0;
    }
    if (x->s->flags & WX_PER_THREAD) {
        /* The victim's own view of the region: executable (readable). */
        int e = x->s->end_write(&x->r);
        if (e != 0)
            return wx_why_errno(why, len, "end_write in the victim thread", e);
    }
    return 0;
}

/* One step: read the stub constant on the next page, call code, check both. */
static int victim_step(void *arg, int k, char *why, size_t len)
{
    tlb_ctx *x = arg;
    vstate *vs = &x->vs[k];
    if (x->stall && vs->done >= 1)
        return WX_STEP_IDLE; /* test: a victim that stopped running */
    size_t i = vs->cursor;
    const unsigned char *base = x->variant == V_PROC ? vs->own : (const unsigned char *)x->r.exec;
    const unsigned char *p = wx_page_stub((void *)base, i, x->page);
    const uint32_t want = WX_PAGE_STUB_VALUE(i);
    uint32_t seen = wx_stub_value(p, wx_stub_size());
    if (seen != want) {
        snprintf(why, len, "victim %d read %#x in the stub on page %zu, expected %#x", k, seen, i, want);
        return WX_STEP_ERROR;
    }
    int in_region = x->variant == V_PROC || x->exec_region;
    uint32_t got = in_region ? wx_page_stub_call(p) : wx_page_stub_call(x->vstub.exec);
    uint32_t expect = in_region ? want : VSTUB_VALUE;
    if (got != expect) {
        snprintf(why, len, "victim %d: a stub returned %#x, expected %#x", k, got, expect);
        return WX_STEP_ERROR;
    }
    vs->cursor = i + 1 == x->pages ? 0 : i + 1;
    vs->done++;
    return WX_STEP_DONE;
}

static void tlb_teardown(tlb_ctx *x, char *why, size_t len, int *failed)
{
    char w[WX_REASON_LEN] = "";
    if (wx_victims_stop(x->v, w, sizeof w) != 0 && failed && !*failed) {
        snprintf(why, len, "%s", w);
        *failed = 1;
    }
    x->v = NULL;
    if (x->mapped)
        x->s->unmap(&x->r);
    x->mapped = 0;
    if (x->vstub.exec)
        wx_strategy_mprotect.unmap(&x->vstub);
    x->vstub.exec = NULL;
    free(x->vs);
    x->vs = NULL;
}

static int tlb_setup(tlb_ctx *x, const wx_strategy *s, const wx_case *c, char *why, size_t len)
{
    memset(x, 0, sizeof *x);
    x->s = s;
    x->variant = (int)c->param;
    x->page = (size_t)sysconf(_SC_PAGESIZE);
    x->pages = (size_t)c->size_bytes / x->page;
    x->nvictims = c->victims;
    x->stall = wx_test_inject("victims_stall");
    x->exec_region = (s->flags & (WX_PER_THREAD | WX_NO_SWITCH)) != 0 || x->variant == V_NOOP;
    if (x->nvictims > 0) {
        x->vs = aligned_alloc(_Alignof(vstate), sizeof(vstate) * (size_t)x->nvictims);
        if (!x->vs) {
            snprintf(why, len, "out of memory");
            return -1;
        }
        memset(x->vs, 0, sizeof(vstate) * (size_t)x->nvictims);
    }
    /* Process victims are forked before the region exists, so fork shares
     * none of its pages with them. */
    if (x->variant == V_PROC) {
        x->v = wx_victims_start(WX_VICTIM_PROCESSES, x->nvictims, victim_prepare, victim_step, x, why, len);
        if (!x->v)
            return -1;
    }
    if (wx_page_stubs_prepare(s, &x->r, x->page, x->pages, why, len) != 0)
        return -1;
    x->mapped = 1;
    if (x->variant != V_PROC) {
        /* A page of plain memory holding one stub, read+execute for good,
         * its value checked by a call before any victim uses it. */
        if (x->nvictims > 0 && !x->exec_region &&
            wx_region_prepare(&wx_strategy_mprotect, &x->vstub, x->page, VSTUB_VALUE, why, len) != 0)
            return -1;
        x->v = wx_victims_start(WX_VICTIM_THREADS, x->nvictims, victim_prepare, victim_step, x, why, len);
        if (!x->v)
            return -1;
    }
    return 0;
}

/* n ops of flip for a strategy writable only inside write_code: one
 * write_code call copying nothing per op (writable, then executable again).
 * 0 or the errno of the failing call. */
static int tlb_hook_ops(void *ctx, uint64_t n)
{
    tlb_ctx *x = ctx;
    const wx_strategy *s = x->s;
    int e = 0;
    for (uint64_t i = 0; i < n && !e; i++)
        e = s->write_code(&x->r, 0, NULL, 0);
    return e;
}

/* n ops of the case: 0 or the errno of the failing call. */
static int tlb_ops(void *ctx, uint64_t n)
{
    tlb_ctx *x = ctx;
    const wx_strategy *s = x->s;
    int e = 0;
    if (x->variant == V_NOOP) {
        for (uint64_t i = 0; i < n && !e; i++)
            if ((e = s->end_write(&x->r)) == 0)
                e = s->end_write(&x->r);
    } else {
        for (uint64_t i = 0; i < n && !e; i++)
            if ((e = s->begin_write(&x->r)) == 0)
                e = s->end_write(&x->r);
    }
    return e;
}

static void tlb_body(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    tlb_ctx x;
    char why[WX_REASON_LEN] = "";
    int failed = 0;
    if (tlb_setup(&x, s, c, why, sizeof why) != 0) {
        wx_bench_fail(b, "setup: %s", why);
        tlb_teardown(&x, why, sizeof why, NULL);
        return;
    }
    wx_victims_mark before;
    const uint64_t batch = x.pages >= 256 ? 1 : 16;
    int err = 0;
    /* Start timing at a moment the victims hold their CPUs (bounded wait). */
    (void)wx_victims_settle(x.v, SETTLE_WINDOW_NS, SETTLE_MAX_WAIT_NS);
    wx_bench_counters_begin(b);
    wx_victims_mark_now(x.v, &before);
    if (s->write_code) {
        while (wx_bench_keep_running(b, batch))
            if ((err = tlb_hook_ops(&x, batch)) != 0)
                break;
    } else {
        while (wx_bench_keep_running(b, batch))
            if ((err = tlb_ops(&x, batch)) != 0)
                break;
    }
    int idle = wx_victims_check(x.v, &before, (uint64_t)(c->min_time * 1e9), why, sizeof why);
    wx_bench_counters_end(b);
    if (err) {
        snprintf(why, sizeof why, "%s failed: %s (errno %d)",
                 s->write_code ? "write_code" : x.variant == V_NOOP ? "end_write" : "begin_write/end_write",
                 strerror(err), err);
        failed = 1;
    } else if (idle) {
        failed = 1;
    } else if (wx_page_stubs_verify(&x.r, x.page, x.pages, "after the timed loop", why, sizeof why) != 0) {
        failed = 1;
    }
    tlb_teardown(&x, why, sizeof why, &failed);
    if (failed)
        wx_bench_fail(b, "%s", why);
}

static void tlb_register(const wx_run *run)
{
    const wx_strategy *s = run->strategy;
    if (s->flags & WX_ALWAYS_RWX) {
        for (int v = 0; tlb_variants[v]; v++) {
            wx_case c = {.variant = tlb_variants[v], .threads = 1, .batch = 1};
            wx_add_unsupported(&c, "question does not apply: rwx never changes protection "
                                   "(dualmap is this plot's no-switch contrast)");
        }
        return;
    }
    static const size_t full_pages[] = {1, 4, 16, 64, 256, 1024, 4096};
    static const size_t quick_pages[] = {1, 1024};
    const size_t *pages = run->quick ? quick_pages : full_pages;
    size_t npages = run->quick ? sizeof quick_pages / sizeof *quick_pages : sizeof full_pages / sizeof *full_pages;
    int victims[16];
    int nv = wx_victim_counts(run->ncpu, run->quick, victims, 16);

    for (int variant = 0; tlb_variants[variant]; variant++) {
        if (variant == V_NOOP && s->write_code) {
            wx_case c = {.variant = tlb_variants[variant], .threads = 1, .batch = 1};
            wx_add_unsupported(&c, "no request for the state in force exists: outside write_code "
                                   "(pthread_jit_write_with_callback_np) the region is always executable, and every "
                                   "call switches to writable and back (timed by flip)");
            continue;
        }
        for (size_t p = 0; p < npages; p++) {
            for (int k = 0; k < nv; k++) {
                if (variant == V_PROC && victims[k] == 0)
                    continue; /* identical to flip with no victims */
                wx_case c = {
                    .variant = tlb_variants[variant],
                    .threads = 1,
                    .victims = victims[k],
                    .size_bytes = (uint64_t)pages[p] * (uint64_t)run->page_size,
                    .batch = 1,
                    .param = (uintptr_t)variant,
                    .min_time = wx_victim_case_min_time(run->min_time, victims[k]),
                };
                wx_add_case(&c, tlb_body);
            }
        }
    }
}

const wx_scenario wx_scenario_mprotect_tlb = {
    .name = "mprotect_tlb",
    .question = "what does one protection change cost as the address space gets busy (size, victim threads)?",
    .op = "flip/flip_victim_processes: one writable->executable round trip of the whole region; "
          "noop: two requests for the executable state while executable",
    .variants = tlb_variants,
    .strategy_free = 0,
    .register_cases = tlb_register,
};
