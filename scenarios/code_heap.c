/* code_heap.c - what one verified patch costs when the patched page lives in
 * a code heap, laid out as real JITs lay out code, per strategy.
 *
 * Every layout is one mapping made by the strategy's map() with a guard page
 * (PROT_NONE) at each end, every page written and holding a stub (stub_pages.h);
 * the op is the same in every variant: make the page writable, write a new stub
 * on it, make it executable, flush, call it and check the value it returns.
 *
 *   isolated        [guard][page][guard]: the page is a mapping of its own
 *                   (what toggle_latency/patch measures)
 *   neighbour       [guard][16 writable pages][page][guard]: the page comes
 *                   right after writable data of the same anonymous memory;
 *                   under mprotect making it writable merges it with the data
 *                   mapping and making it executable splits them again
 *   reserved        [guard][heap of size_bytes][guard], the page in the
 *                   middle of the heap, every other page executable code:
 *                   under mprotect writable splits the heap in three,
 *                   executable merges it back
 *   page_then_heap  reserved's layout; the page is made writable, then the
 *                   whole heap is made executable (end_write on the heap)
 *   mappings        [guard][page][guard][page]...[guard]: the process holds N
 *                   separate one-page code mappings; op k patches mapping
 *                   k mod N (round robin over all of them)
 *
 * Columns: size_bytes is the heap (reserved, page_then_heap: 64 KiB .. 128 MiB,
 * every page populated), the page (isolated, neighbour), or N x page size
 * (mappings: N = size_bytes / page_size code mappings, 1 .. 10,000); batch is 1
 * (one page patched per writable window); victims is 0.
 *
 * Strategies that switch without mprotect (rwx, dualmap, pkey, mapjit) run the
 * same ops on the same layouts: their begin_write/end_write get the page (or
 * the heap) as a region of its own, so the layout is all that differs between
 * rows. rwx switches nothing: its rows are the baseline (the patch, the flush,
 * the call, and the layout's cache and TLB misses). Strategies writable only
 * inside write_code (mapjit_callback) do the window in one write_code call on
 * the page; page_then_heap is reserved for them (there is no separate
 * "make the heap executable").
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/app/scenario.h"
#include "../bench/core/stub_pages.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { L_ISOLATED, L_NEIGHBOUR, L_RESERVED, L_PAGE_THEN_HEAP, L_MAPPINGS };
static const char *const ch_variants[] = {"isolated", "neighbour", "reserved", "page_then_heap", "mappings", NULL};

#define NEIGHBOUR_PAGES 16u     /* writable data pages before the page (neighbour) */
#define OPS_PER_STEP 16u
#define FIXED_OPS 2048u         /* ops per repetition where set-up is long (big heaps, many mappings) */
#define FIXED_FROM_BYTES (16u << 20)
#define FIXED_FROM_MAPPINGS 1000u

/* One case's memory. Page indices are into map (guards included). */
typedef struct ch_state {
    size_t page;
    wx_region map;      /* the strategy's mapping */
    int mapped;
    wx_region heap;     /* the heap's pages as a region (page_then_heap's end_write) */
    size_t npages;      /* pages of map */
    size_t nwin;        /* patched pages: 1, or N (mappings) */
    size_t win0, wstep; /* patched page w is win0 + w * wstep */
    uint32_t *cur;      /* what the stub of each patched page returns now */
    size_t next;        /* mappings: next mapping to patch */
    unsigned char stage[64];
} ch_state;

static size_t win_page(const ch_state *x, size_t w)
{
    return x->win0 + w * x->wstep;
}

/* Pages [first, first + n) of r as a region of their own. */
static wx_region sub_region(const wx_region *r, size_t first, size_t n, size_t page)
{
    wx_region s = *r;
    s.write = (char *)r->write + first * page;
    s.exec = (char *)r->exec + first * page;
    s.size = n * page;
    return s;
}

/* mprotect pages [first, first + n) of every view of the map. */
static int protect_pages(ch_state *x, size_t first, size_t n, int prot)
{
    if (mprotect((char *)x->map.exec + first * x->page, n * x->page, prot) != 0)
        return errno;
    if (x->map.write != x->map.exec && mprotect((char *)x->map.write + first * x->page, n * x->page, prot) != 0)
        return errno;
    return 0;
}

static int ch_setup(wx_job *j)
{
    ch_state *x = j->state;
    const wx_case *c = j->c;
    const size_t page = (size_t)j->run->page_size;
    size_t heap_first = 1, heap_pages = 1;
    x->page = page;
    x->nwin = 1;
    x->wstep = 1;
    switch (c->param) {
    case L_ISOLATED:
        x->npages = 3;
        x->win0 = 1;
        break;
    case L_NEIGHBOUR:
        x->npages = NEIGHBOUR_PAGES + 3;
        x->win0 = NEIGHBOUR_PAGES + 1;
        heap_first = x->win0;
        break;
    case L_RESERVED:
    case L_PAGE_THEN_HEAP:
        heap_pages = (size_t)c->size_bytes / page;
        x->npages = heap_pages + 2;
        x->win0 = 1 + heap_pages / 2;
        break;
    default: /* L_MAPPINGS */
        x->nwin = (size_t)c->size_bytes / page;
        x->npages = 2 * x->nwin + 1;
        x->win0 = 1;
        x->wstep = 2;
        heap_pages = 2 * x->nwin - 1;
        break;
    }
    x->cur = calloc(x->nwin, sizeof *x->cur);
    if (!x->cur)
        return wx_job_fail(j, "out of memory for %zu stub values", x->nwin), WX_FAILED;
    /* Map, write every page (a stub on each), verify. */
    if (wx_page_stubs_prepare(j->s, &x->map, page, x->npages, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    x->heap = sub_region(&x->map, heap_first, heap_pages, page);
    for (size_t w = 0; w < x->nwin; w++)
        x->cur[w] = WX_PAGE_STUB_VALUE(win_page(x, w));
    /* Guards: page 0, the last page, and (mappings) every page between two code pages. */
    for (size_t p = 0; p < x->npages; p += (c->param == L_MAPPINGS ? 2 : x->npages - 1)) {
        int e = protect_pages(x, p, 1, PROT_NONE);
        if (e != 0) {
            char call[96];
            snprintf(call, sizeof call, "mprotect(guard page %zu, PROT_NONE)", p);
            wx_why_errno(j->why, sizeof j->why, call, e);
            return WX_UNSUPPORTED;
        }
        if (p == x->npages - 1)
            break;
    }
    if (c->param == L_NEIGHBOUR) {
        int e = protect_pages(x, 1, NEIGHBOUR_PAGES, PROT_READ | PROT_WRITE);
        if (e != 0) {
            wx_why_errno(j->why, sizeof j->why, "mprotect(neighbour pages, PROT_READ|PROT_WRITE)", e);
            return WX_UNSUPPORTED;
        }
    }
    return WX_OK;
}

static void ch_teardown(wx_job *j)
{
    ch_state *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->map);
    free(x->cur);
}

/* Patch the stub of patched page w: writable, new stub, executable (the page,
 * or the heap for page_then_heap), flush, call, check. */
static int patch(wx_job *j, ch_state *x, size_t w)
{
    const wx_strategy *s = j->s;
    const size_t p = win_page(x, w), page = x->page, stub = wx_stub_size();
    const size_t off = wx_page_stub_off(p, page);
    wx_region one = sub_region(&x->map, p, 1, page);
    const uint32_t v = x->cur[w] + 1;
    int err;
    void *dst = wx_code_begin(s, &one, off, x->stage, &err);
    if (err == 0) {
        wx_emit_stub(dst, stub, v);
        wx_region *close = j->c->param == L_PAGE_THEN_HEAP && !s->write_code ? &x->heap : &one;
        err = wx_code_end(s, close, off, x->stage, stub);
    }
    if (err)
        return wx_job_errno(j, s->write_code ? "write_code" : "begin_write/end_write", err);
    unsigned char *exec = (unsigned char *)one.exec + off;
    wx_icache_flush((unsigned char *)one.write + off, exec, stub);
    uint32_t got = wx_page_stub_call(exec);
    if (got != v)
        return wx_job_fail(j, "verification failed: the patched stub on page %zu returned %#x, expected %#x", p, got,
                           v);
    x->cur[w] = v;
    return 0;
}

static int ch_ops(wx_job *j, uint64_t n)
{
    ch_state *x = j->state;
    for (uint64_t i = 0; i < n; i++) {
        if (patch(j, x, x->next) != 0)
            return -1;
        if (++x->next == x->nwin)
            x->next = 0;
    }
    return 0;
}

/* Every code page returns what it should: its own value, or its last patch
 * (the neighbour's data pages and the guards hold no code to call). */
static int ch_verify(wx_job *j)
{
    ch_state *x = j->state;
    const int param = (int)j->c->param;
    for (size_t p = 1; p + 1 < x->npages; p++) {
        if ((param == L_MAPPINGS && p % 2 == 0) || (param == L_NEIGHBOUR && p != x->win0))
            continue;
        uint32_t want = WX_PAGE_STUB_VALUE(p);
        if (p >= x->win0 && (p - x->win0) % x->wstep == 0 && (p - x->win0) / x->wstep < x->nwin)
            want = x->cur[(p - x->win0) / x->wstep];
        uint32_t got = wx_page_stub_call(wx_page_stub(x->map.exec, p, x->page));
        if (got != want)
            return wx_job_fail(j, "verification failed after the timed loop: the stub on page %zu returned %#x, "
                               "expected %#x", p, got, want);
    }
    return 0;
}

static const wx_kernel k_heap = {.state_size = sizeof(ch_state), .step = OPS_PER_STEP, .flags = WX_K_SHORT,
                                 .setup = ch_setup, .ops = ch_ops, .verify = ch_verify, .teardown = ch_teardown};

static void ch_register(const wx_run *run)
{
    const uint64_t page = (uint64_t)run->page_size;
    wx_case c = {.variant = "isolated", .size_bytes = page, .param = L_ISOLATED};
    wx_add(&c, &k_heap);
    c = (wx_case){.variant = "neighbour", .size_bytes = page, .param = L_NEIGHBOUR};
    wx_add(&c, &k_heap);

    static const uint64_t full_sizes[] = {64u << 10, 256u << 10, 1u << 20, 16u << 20, 128u << 20};
    static const uint64_t quick_sizes[] = {256u << 10, 16u << 20};
    const wx_axis sizes = WX_AXIS_Q(run, full_sizes, quick_sizes);
    for (int v = L_RESERVED; v <= L_PAGE_THEN_HEAP; v++)
        for (size_t i = 0; i < sizes.n; i++) {
            if (sizes.v[i] % page != 0 || sizes.v[i] / page < 3)
                continue;
            c = (wx_case){.variant = ch_variants[v], .size_bytes = sizes.v[i], .param = (uintptr_t)v};
            if (sizes.v[i] >= FIXED_FROM_BYTES)
                c.iterations = FIXED_OPS;
            wx_add(&c, &k_heap);
        }

    static const uint64_t full_counts[] = {1, 10, 100, 1000, 10000};
    static const uint64_t quick_counts[] = {1, 1000};
    const wx_axis counts = WX_AXIS_Q(run, full_counts, quick_counts);
    for (size_t i = 0; i < counts.n; i++) {
        c = (wx_case){.variant = "mappings", .size_bytes = counts.v[i] * page, .param = L_MAPPINGS};
        if (counts.v[i] >= FIXED_FROM_MAPPINGS)
            c.iterations = FIXED_OPS;
        wx_add(&c, &k_heap);
    }
}

const wx_scenario wx_scenario_code_heap = {
    .name = "code_heap", .variants = ch_variants, .register_cases = ch_register,
    .question = "what does one patch cost when the page lives in a code heap (layout, heap size, mappings held)?",
    .op = "one verified patch of one page: writable, new stub, executable (page_then_heap: the whole heap), flush, "
          "call, check",
};
