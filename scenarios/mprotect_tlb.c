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
 * A strategy writable only inside write_code (mapjit_callback; the test
 * build's test_hook): its flip is one write_code call copying nothing, and
 * noop does not exist for it (there is no request for the state in force),
 * so noop is `unsupported`.
 *
 * tlb_shootdowns_per_op is the machine-wide TLB-shootdown interrupt count
 * (x86 Linux, /proc/interrupts) over the timed loop, per op.
 *
 * The victims (the harness starts, settles, checks and stops them; see
 * scenario.h and threads.h). Victim k spins over the region, one page per
 * step: it reads the constant of the stub on that page (a data load: its
 * data TLB holds the page) and checks it, then calls code and checks the
 * value returned. Calling into the region is only safe while the region is
 * executable for the victim throughout the timed loop: for strategies whose
 * switch is per thread (pkey, mapjit) or absent (dualmap), and in `noop`.
 * Under mprotect's `flip` the timing thread makes the whole region RW for
 * everyone, so there the victim calls an identical stub on a page of its
 * own that is always executable (the same work per step) and only reads the
 * region. That is enough for the question: x86 Linux sends a shootdown IPI
 * to every CPU currently running a thread of the address space, whatever
 * the thread touches; what the reads add is the victim's refill of the
 * entries it loses. Process victims do the same over a region of their own
 * (mapped, written and made executable in the child): they receive no
 * shootdowns for the measuring process's changes.
 *
 * Regions of 256 pages and more are timed one op per step.
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/app/scenario.h"
#include "../bench/core/stub_pages.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

enum { V_FLIP, V_NOOP, V_PROC };
static const char *const tlb_variants[] = {"flip", "noop", "flip_victim_processes", NULL};

#define VSTUB_VALUE 0x5eu /* the victims' own always-executable stub */

/* One case's region. */
typedef struct tlb_state {
    size_t page, pages;    /* page size, region pages */
    wx_region r;           /* the region whose protection changes */
    int mapped;            /* r is mapped */
    int exec_region;       /* victims may call the region's stubs during the timed loop */
    wx_region vstub;       /* victims' always-executable stub page (mapped if vstub.exec) */
} tlb_state;

/* One victim's own state. */
typedef struct tlb_victim {
    size_t cursor;         /* next page */
    unsigned char *own;    /* process victims: their own region */
} tlb_victim;

static size_t page_of(const wx_job *j)
{
    return (size_t)j->run->page_size;
}

static int tlb_setup(wx_job *j)
{
    tlb_state *x = j->state;
    x->page = page_of(j);
    x->pages = (size_t)j->c->size_bytes / x->page;
    x->exec_region = (j->s->flags & (WX_PER_THREAD | WX_NO_SWITCH)) != 0 || j->c->param == V_NOOP;
    j->step = x->pages >= 256 ? 1 : 16;
    if (wx_page_stubs_prepare(j->s, &x->r, x->page, x->pages, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    /* Thread victims under a process-wide switch: a page of plain memory
     * holding one stub, read+execute for good, checked before any victim
     * uses it. */
    if (j->c->param != V_PROC && j->c->victims > 0 && !x->exec_region) {
        extern const wx_strategy wx_strategy_mprotect;
        if (wx_region_prepare(&wx_strategy_mprotect, &x->vstub, x->page, VSTUB_VALUE, j->why, sizeof j->why) != 0)
            return WX_FAILED;
    }
    return WX_OK;
}

static void tlb_teardown(wx_job *j)
{
    tlb_state *x = j->state;
    extern const wx_strategy wx_strategy_mprotect;
    if (x->mapped)
        j->s->unmap(&x->r);
    if (x->vstub.exec)
        wx_strategy_mprotect.unmap(&x->vstub);
}

static int tlb_verify(wx_job *j)
{
    tlb_state *x = j->state;
    return wx_page_stubs_verify(&x->r, x->page, 0, x->pages, "after the timed loop", j->why, sizeof j->why);
}

/* n round trips of the whole region. */
static int tlb_flip(wx_job *j, uint64_t n)
{
    tlb_state *x = j->state;
    int e = 0;
    for (uint64_t i = 0; i < n && !e; i++)
        e = wx_code_flip(j->s, &x->r);
    return e ? wx_job_errno(j, j->s->write_code ? "write_code" : "begin_write/end_write", e) : 0;
}

/* n pairs of requests for the state in force. */
static int tlb_noop(wx_job *j, uint64_t n)
{
    tlb_state *x = j->state;
    int e = 0;
    for (uint64_t i = 0; i < n && !e; i++)
        if ((e = j->s->end_write(&x->r)) == 0)
            e = j->s->end_write(&x->r);
    return e ? wx_job_errno(j, "end_write", e) : 0;
}

/* In the victim, before the start barrier. */
static int victim_prepare(wx_job *j, int k, void *mine, char *why, size_t len)
{
    (void)k;
    tlb_victim *vs = mine;
    const size_t page = page_of(j), pages = (size_t)j->c->size_bytes / page;
    if (j->c->param == V_PROC) {
        /* Its own region in its own address space: written, then executable. */
        size_t size = page * pages;
        unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if ((void *)p == MAP_FAILED)
            return wx_why_errno(why, len, "mmap(victim process region)", errno);
        memset(p, 0, size);
        for (size_t i = 0; i < pages; i++)
            wx_emit_stub(wx_page_stub(p, i, page), wx_stub_size(), WX_PAGE_STUB_VALUE(i));
        if (mprotect(p, size, PROT_READ | PROT_EXEC) != 0)
            return wx_why_errno(why, len, "mprotect(victim process region, PROT_READ|PROT_EXEC)", errno);
        wx_icache_flush(p, p, size);
        vs->own = p;
        return 0;
    }
    if (j->s->flags & WX_PER_THREAD) {
        /* The victim's own view of the region: executable (readable). */
        tlb_state *x = j->state;
        int e = j->s->end_write(&x->r);
        if (e != 0)
            return wx_why_errno(why, len, "end_write in the victim thread", e);
    }
    return 0;
}

/* One step: read the stub constant on the next page, call code, check both. */
static int victim_step(wx_job *j, int k, void *mine, char *why, size_t len)
{
    tlb_victim *vs = mine;
    const tlb_state *x = j->state;
    const int proc = j->c->param == V_PROC;
    const size_t page = page_of(j), pages = (size_t)j->c->size_bytes / page;
    size_t i = vs->cursor;
    const unsigned char *base = proc ? vs->own : (const unsigned char *)x->r.exec;
    const unsigned char *p = wx_page_stub((void *)base, i, page);
    const uint32_t want = WX_PAGE_STUB_VALUE(i);
    uint32_t seen = wx_stub_value(p, wx_stub_size());
    if (seen != want) {
        snprintf(why, len, "victim %d read %#x in the stub on page %zu, expected %#x", k, seen, i, want);
        return WX_STEP_ERROR;
    }
    int in_region = proc || x->exec_region;
    uint32_t got = in_region ? wx_page_stub_call(p) : wx_page_stub_call(x->vstub.exec);
    uint32_t expect = in_region ? want : VSTUB_VALUE;
    if (got != expect) {
        snprintf(why, len, "victim %d: a stub returned %#x, expected %#x", k, got, expect);
        return WX_STEP_ERROR;
    }
    vs->cursor = i + 1 == pages ? 0 : i + 1;
    return WX_STEP_DONE;
}

#define TLB_KERNEL(fn, extra)                                                                                     \
    {.state_size = sizeof(tlb_state), .flags = WX_K_SHORT | WX_K_SIZED_BATCH | (extra), .setup = tlb_setup,      \
     .ops = (fn),                                                                                                 \
     .verify = tlb_verify, .teardown = tlb_teardown, .victim_size = sizeof(tlb_victim),                           \
     .victim_prepare = victim_prepare, .victim_step = victim_step}

static const wx_kernel k_flip = TLB_KERNEL(tlb_flip, 0);
static const wx_kernel k_noop = TLB_KERNEL(tlb_noop, 0);
static const wx_kernel k_proc = TLB_KERNEL(tlb_flip, WX_K_VICTIM_PROCESSES);

static void tlb_register(const wx_run *run)
{
    const wx_strategy *s = run->strategy;
    if (s->flags & WX_ALWAYS_RWX) {
        for (int v = 0; tlb_variants[v]; v++) {
            wx_case c = {.variant = tlb_variants[v]};
            wx_add_unsupported(&c, "question does not apply: rwx never changes protection "
                                   "(dualmap is this plot's no-switch contrast)");
        }
        return;
    }
    static const uint64_t full_pages[] = {1, 4, 16, 64, 256, 1024, 4096};
    static const uint64_t quick_pages[] = {1, 1024};
    const wx_axis pages = WX_AXIS_Q(run, full_pages, quick_pages);
    uint64_t sizes[16], victims[16];
    for (size_t i = 0; i < pages.n; i++)
        sizes[i] = pages.v[i] * (uint64_t)run->page_size;
    const wx_axis size_axis = {sizes, pages.n};
    const wx_axis victim_axis = wx_victim_axis(run, victims);

    wx_case c = {.variant = "flip", .param = V_FLIP};
    wx_add_product(&c, &k_flip, size_axis, victim_axis, WX_AXIS_NONE, WX_AXIS_NONE, 0);

    c = (wx_case){.variant = "noop", .param = V_NOOP};
    if (s->write_code)
        wx_add_unsupported(&c, "no request for the state in force exists: outside write_code "
                               "(pthread_jit_write_with_callback_np) the region is always executable, and every "
                               "call switches to writable and back (timed by flip)");
    else
        wx_add_product(&c, &k_noop, size_axis, victim_axis, WX_AXIS_NONE, WX_AXIS_NONE, 0);

    /* With no victims, flip_victim_processes is flip: from 1 victim on. */
    const wx_axis some_victims = {victim_axis.v + 1, victim_axis.n - 1};
    c = (wx_case){.variant = "flip_victim_processes", .param = V_PROC};
    if (some_victims.n > 0)
        wx_add_product(&c, &k_proc, size_axis, some_victims, WX_AXIS_NONE, WX_AXIS_NONE, 0);
}

const wx_scenario wx_scenario_mprotect_tlb = {
    .name = "mprotect_tlb", .variants = tlb_variants, .register_cases = tlb_register,
    .question = "what does one protection change cost as the address space gets busy (size, victim threads)?",
    .op = "flip/flip_victim_processes: one writable->executable round trip of the whole region; "
          "noop: two requests for the executable state while executable",
};
