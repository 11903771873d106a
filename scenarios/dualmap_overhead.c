/* dualmap_overhead.c - what the second view costs: creating and destroying
 * regions, patching without any permission change, and running code spread
 * over many pages, for dualmap against the single-view strategies.
 *
 *   setup      create a region of size_bytes (4 KiB .. 16 MiB), make it
 *              writable, write one byte on every page through the write view,
 *              write a stub, make it executable, flush, read the stub back
 *              through the executable view, call it and check the value,
 *              destroy the region. dualmap: memfd_create + ftruncate + two
 *              mmaps ... two munmaps; mprotect: mmap + mprotect(RX) +
 *              mprotect(RW) + mprotect(RX) ... munmap; rwx: mmap ... munmap.
 *                                          op = one verified create+destroy
 *   steady     the verified patch cycle on a one-page region: begin_write,
 *              write a stub, end_write, flush, call, check (dualmap changes
 *              no permission at all)       op = one verified patch
 *   exec_span  size_bytes/page pages (1 .. 4096), one stub per page (at
 *              offset (i*64) % page, so the stubs spread over cache sets);
 *              the ops call the stubs round-robin through the executable view
 *              and check each value; a repetition is a fixed number of calls
 *              that visits every page 16 times (at least 100,000 calls)
 *                                          op = one call of one page's stub
 *
 * A strategy writable only inside write_code (mapjit_callback; the test
 * build's test_hook) writes through its staging buffer (wx_code_begin): in
 * setup that is an image of the whole region, copied in whole - size_bytes
 * copied, where the others store one byte per page.
 *
 * Running out of mappings (vm.max_map_count; every dual-mapped region costs
 * two) is a `failed` row with the errno text and the limit, never a crash;
 * the test build's map_exhaust fills the address space with mappings until
 * mmap fails and frees one, leaving room for exactly one more, before timing
 * setup.
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

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

static const char *const do_variants[] = {"setup", "steady", "exec_span", NULL};

#define FIRST_VALUE 7u
#define SPAN_VISITS 16u         /* exec_span: calls per page in one timed loop ... */
#define SPAN_MIN_CALLS 100000u  /* ... and at least this many calls */
#define HOG_LIMIT 1048576L /* map_exhaust refuses to fill more mappings than this */

/* vm.max_map_count, or -1 where there is none to read. */
static long max_map_count(void)
{
    long v = -1;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Mappings held to exhaust the address space's mapping count (map_exhaust). */
typedef struct hog {
    void **maps; /* one page each */
    size_t n;    /* held */
    size_t page; /* their size */
} hog;

/* Everything one case needs. */
typedef struct do_state {
    size_t page;             /* page size */
    size_t pages;            /* exec_span: pages */
    size_t cursor;           /* exec_span: next page */
    wx_region r;             /* steady, exec_span: the region */
    int mapped;              /* r is mapped */
    uint32_t value;          /* setup, steady: value of the newest stub */
    uint64_t done;           /* ops completed */
    unsigned char *img;      /* setup: the staging buffer (the region's bytes) */
    unsigned char stage[64]; /* steady: the new stub */
    hog h;                   /* map_exhaust */
} do_state;

/* Fill: 0 with h holding every mapping it could make but one, or -1 with
 * why[]. Neighbouring mappings alternate PROT_READ and PROT_NONE so that the
 * kernel cannot merge them into one. */
static int hog_fill(hog *h, size_t page, char *why, size_t len)
{
    memset(h, 0, sizeof *h);
    long limit = max_map_count();
    if (limit <= 0 || limit > HOG_LIMIT) {
        snprintf(why, len, "map_exhaust: vm.max_map_count is %ld; refusing to fill more than %ld mappings", limit,
                 HOG_LIMIT);
        return -1;
    }
    /* Allocated before any mapping: once mmap fails, so would malloc. */
    h->maps = malloc(sizeof *h->maps * (size_t)(limit + 1));
    if (!h->maps) {
        snprintf(why, len, "map_exhaust: out of memory");
        return -1;
    }
    h->page = page;
    for (;;) {
        void *p = mmap(NULL, page, (h->n & 1) ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            break;
        if (h->n == (size_t)limit + 1) {
            munmap(p, page);
            snprintf(why, len, "map_exhaust: mmap still succeeds after %zu mappings", h->n);
            return -1;
        }
        h->maps[h->n++] = p;
    }
    if (h->n == 0) {
        snprintf(why, len, "map_exhaust: not even one mapping could be made");
        return -1;
    }
    munmap(h->maps[--h->n], page); /* room for exactly one more */
    return 0;
}

static void hog_release(hog *h)
{
    for (size_t i = 0; i < h->n; i++)
        munmap(h->maps[i], h->page);
    free(h->maps);
    memset(h, 0, sizeof *h);
}

/* Why creating a region failed, with the mapping limit beside the errno text. */
static int create_failed(wx_job *j, const char *step, const char *what)
{
    const do_state *x = j->state;
    long limit = max_map_count();
    if (limit > 0)
        return wx_job_fail(j, "%s failed after %llu ops: %.160s (vm.max_map_count = %ld)", step,
                           (unsigned long long)x->done, what, limit);
    return wx_job_fail(j, "%s failed after %llu ops: %.180s", step, (unsigned long long)x->done, what);
}

/* One create+touch+destroy: 0, or -1 with j->why. */
static int setup_op(wx_job *j)
{
    do_state *x = j->state;
    const wx_strategy *s = j->s;
    const size_t stub = wx_stub_size(), size = (size_t)j->c->size_bytes;
    char why[WX_REASON_LEN] = "";
    wx_region r;
    memset(&r, 0, sizeof r);
    int e = s->map(&r, size, why, sizeof why);
    if (e != 0)
        return create_failed(j, "create", why);
    volatile unsigned char *w = wx_code_begin(s, &r, 0, x->img, &e);
    if (e != 0) {
        s->unmap(&r);
        return create_failed(j, "begin_write", strerror(e));
    }
    for (size_t off = 0; off < size; off += x->page)
        w[off] = 1; /* touch every page through the write view */
    uint32_t v = ++x->value;
    wx_emit_stub((void *)w, stub, v);
    if ((e = wx_code_end(s, &r, 0, x->img, size)) != 0) {
        s->unmap(&r);
        return create_failed(j, s->write_code ? "write_code" : "end_write", strerror(e));
    }
    /* Flush, read the stub back through the executable view (a region
     * whose write did not arrive is never jumped into), call it, destroy. */
    wx_icache_flush(r.write, r.exec, stub);
    uint32_t seen = wx_stub_value(r.exec, stub);
    uint32_t got = seen == v ? wx_stub_at(r.exec)() : 0;
    s->unmap(&r);
    if (seen != v || got != v)
        return wx_job_fail(j, "verification failed: the executable view of a new region holds %u and returned %u, "
                              "expected %u", seen, got, v);
    return 0;
}

/* One verified patch of the steady region: 0, or -1 with j->why. */
static int steady_op(wx_job *j)
{
    do_state *x = j->state;
    const wx_strategy *s = j->s;
    const size_t stub = wx_stub_size();
    uint32_t v = ++x->value;
    int e;
    void *p = wx_code_begin(s, &x->r, 0, x->stage, &e);
    if (e == 0) {
        wx_emit_stub(p, stub, v);
        e = wx_code_end(s, &x->r, 0, x->stage, stub);
    }
    if (e != 0)
        return wx_job_errno(j, s->write_code ? "write_code" : "begin_write/end_write", e);
    wx_icache_flush(x->r.write, x->r.exec, stub);
    uint32_t got = wx_stub_at(x->r.exec)();
    if (got != v)
        return wx_job_fail(j, "verification failed: patched stub returned %u, expected %u", got, v);
    return 0;
}

/* One call of the next page's stub: 0, or -1 with j->why. */
static int span_op(wx_job *j)
{
    do_state *x = j->state;
    size_t p = x->cursor;
    uint32_t got = wx_page_stub_call(wx_page_stub(x->r.exec, p, x->page));
    if (got != WX_PAGE_STUB_VALUE(p))
        return wx_job_fail(j, "verification failed: the stub on page %zu returned %#x, expected %#x", p, got,
                           WX_PAGE_STUB_VALUE(p));
    x->cursor = p + 1 == x->pages ? 0 : p + 1;
    return 0;
}

#define DO_OPS(name, op)                                   \
    static int name(wx_job *j, uint64_t n)                 \
    {                                                      \
        do_state *x = j->state;                            \
        for (uint64_t i = 0; i < n; i++, x->done++)        \
            if (op(j) != 0)                                \
                return -1;                                 \
        return 0;                                          \
    }
DO_OPS(setup_ops, setup_op)
DO_OPS(steady_ops, steady_op)
DO_OPS(span_ops, span_op)

static int setup_setup(wx_job *j)
{
    do_state *x = j->state;
    x->page = (size_t)j->run->page_size;
    x->value = FIRST_VALUE;
    /* The staging buffer: the region's bytes, one set on every page (the
     * stub goes over the first page's at each op). */
    if (!(x->img = calloc(1, (size_t)j->c->size_bytes)))
        return wx_job_fail(j, "out of memory for a %llu-byte code image", (unsigned long long)j->c->size_bytes),
               WX_FAILED;
    for (size_t off = 0; off < (size_t)j->c->size_bytes; off += x->page)
        x->img[off] = 1;
    if (wx_injected(WX_INJ_MAP_EXHAUST) && hog_fill(&x->h, x->page, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    return WX_OK;
}

static int steady_setup(wx_job *j)
{
    do_state *x = j->state;
    x->page = (size_t)j->run->page_size;
    x->value = FIRST_VALUE;
    if (wx_region_prepare(j->s, &x->r, (size_t)j->c->size_bytes, FIRST_VALUE, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    return WX_OK;
}

static int span_setup(wx_job *j)
{
    do_state *x = j->state;
    x->page = (size_t)j->run->page_size;
    x->pages = (size_t)j->c->size_bytes / x->page;
    if (wx_page_stubs_prepare(j->s, &x->r, x->page, x->pages, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    return WX_OK;
}

static int span_verify(wx_job *j)
{
    do_state *x = j->state;
    return wx_page_stubs_verify(&x->r, x->page, 0, x->pages, "after the timed loop", j->why, sizeof j->why);
}

static void do_teardown(wx_job *j)
{
    do_state *x = j->state;
    hog_release(&x->h);
    if (x->mapped)
        j->s->unmap(&x->r);
    free(x->img);
}

static const wx_kernel k_setup = {.state_size = sizeof(do_state), .step = 1, .flags = WX_K_SHORT,
                                  .setup = setup_setup, .ops = setup_ops, .teardown = do_teardown};
static const wx_kernel k_steady = {.state_size = sizeof(do_state), .step = 16, .flags = WX_K_SHORT,
                                   .setup = steady_setup, .ops = steady_ops, .teardown = do_teardown};
static const wx_kernel k_span = {.state_size = sizeof(do_state), .step = 16, .flags = WX_K_SHORT,
                                 .setup = span_setup, .ops = span_ops, .verify = span_verify,
                                 .teardown = do_teardown};

static void do_register(const wx_run *run)
{
    static const uint64_t full_sizes[] = {4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};
    static const uint64_t quick_sizes[] = {4096, 1048576};
    wx_case c = {.variant = "setup"};
    wx_add_product(&c, &k_setup, WX_AXIS_Q(run, full_sizes, quick_sizes), WX_AXIS_NONE, WX_AXIS_NONE,
                   WX_AXIS_NONE, 1);

    c = (wx_case){.variant = "steady", .size_bytes = (uint64_t)run->page_size};
    wx_add(&c, &k_steady);

    static const uint64_t full_pages[] = {1, 4, 16, 64, 256, 1024, 4096};
    static const uint64_t quick_pages[] = {1, 4096};
    const wx_axis pages = WX_AXIS_Q(run, full_pages, quick_pages);
    /* A fixed count of calls that visits every page SPAN_VISITS times
     * (at least SPAN_MIN_CALLS): the op is a call on code spread over all
     * the pages, so a timed loop must never end before it reached them. */
    for (size_t i = 0; i < pages.n; i++) {
        uint64_t calls = pages.v[i] * SPAN_VISITS > SPAN_MIN_CALLS ? pages.v[i] * SPAN_VISITS : SPAN_MIN_CALLS;
        c = (wx_case){.variant = "exec_span", .size_bytes = pages.v[i] * (uint64_t)run->page_size,
                      .iterations = calls};
        wx_add(&c, &k_span);
    }
}

const wx_scenario wx_scenario_dualmap_overhead = {
    .name = "dualmap_overhead", .variants = do_variants, .register_cases = do_register,
    .question = "what does the second view cost: creating regions, patching, running code over many pages?",
    .op = "setup: one verified create+touch+destroy of size_bytes; steady: one verified patch; "
          "exec_span: one call of one page's stub, round-robin over size_bytes/page pages",
};
