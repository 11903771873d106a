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
 *              and check each value        op = one call of one page's stub
 *
 * A strategy with a write_code hook (mapjit_callback; the test build's
 * test_hook) is writable only inside that call, so each window is one
 * write_code call: setup builds the region's bytes aside (a byte on every
 * page, the stub at the start) and copies them in whole - size_bytes copied,
 * where the others store one byte per page - and steady copies the new stub
 * in. exec_span's region is prepared the same way (stub_pages.h).
 *
 * Running out of mappings (vm.max_map_count; every dual-mapped region costs
 * two) is a `failed` row with the errno text and the limit, never a crash; the
 * test build's map_exhaust fills the address space with mappings until mmap
 * fails and frees one, leaving room for exactly one more, before timing
 * setup.
 *
 * Each case runs for a quarter of the run's --min-time (at least 2 ms);
 * setup is timed one op per batch.
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

enum { V_SETUP, V_STEADY, V_SPAN };
static const char *const do_variants[] = {"setup", "steady", "exec_span", NULL};

#define FIRST_VALUE 7u
#define HOG_LIMIT 1048576L /* map_exhaust refuses to fill more mappings than this */

/* Everything one case needs. */
typedef struct do_ctx {
    const wx_strategy *s;    /* strategy under test */
    int variant;             /* V_* */
    size_t page;             /* page size */
    size_t size;             /* setup: region bytes */
    size_t pages;            /* exec_span: pages */
    size_t cursor;           /* exec_span: next page */
    wx_region r;             /* steady, exec_span: the region */
    int mapped;              /* r is mapped */
    int skip_write;          /* test: do not write the new code */
    uint32_t value;          /* setup, steady: value of the newest stub */
    uint64_t done;           /* ops completed */
    unsigned char *img;      /* setup with a write_code hook: the region's bytes, built aside */
    char why[WX_REASON_LEN]; /* what failed in do_ops */
} do_ctx;

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

/* ---------------------------------------------------------------------------
 * The test build's map_exhaust: mappings until mmap fails, then one freed
 * ------------------------------------------------------------------------ */

/* Mappings held to exhaust the address space's mapping count. */
typedef struct hog {
    void **maps; /* one page each */
    size_t n;    /* held */
    size_t page; /* their size */
} hog;

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

/* ---------------------------------------------------------------------------
 * The ops
 * ------------------------------------------------------------------------ */

/* Why creating a region failed, with the mapping limit beside the errno text. */
static void create_failed(do_ctx *x, const char *step, const char *what)
{
    long limit = max_map_count();
    if (limit > 0)
        snprintf(x->why, sizeof x->why, "%s failed after %llu ops: %.160s (vm.max_map_count = %ld)", step,
                 (unsigned long long)x->done, what, limit);
    else
        snprintf(x->why, sizeof x->why, "%s failed after %llu ops: %.180s", step, (unsigned long long)x->done, what);
}

/* The end of one create+destroy: flush, read the stub back through the
 * executable view (a region whose write did not arrive is never jumped
 * into), call it, destroy the region. 0, or -1 with x->why. */
static int check_and_destroy(do_ctx *x, wx_region *r, uint32_t v)
{
    const size_t stub = wx_stub_size();
    wx_icache_flush(r->write, r->exec, stub);
    uint32_t seen = wx_stub_value(r->exec, stub);
    uint32_t got = seen == v ? wx_stub_at(r->exec)() : 0;
    x->s->unmap(r);
    if (seen != v || got != v) {
        snprintf(x->why, sizeof x->why,
                 "verification failed: the executable view of a new region holds %u and returned %u, expected %u", seen,
                 got, v);
        return -1;
    }
    return 0;
}

/* One create+destroy: 0, or -1 with x->why. */
static int setup_op(do_ctx *x)
{
    const wx_strategy *s = x->s;
    const size_t stub = wx_stub_size();
    char why[WX_REASON_LEN] = "";
    wx_region r;
    memset(&r, 0, sizeof r);
    int e = s->map(&r, x->size, why, sizeof why);
    if (e != 0) {
        create_failed(x, "create", why);
        return -1;
    }
    if ((e = s->begin_write(&r)) != 0) {
        s->unmap(&r);
        create_failed(x, "begin_write", strerror(e));
        return -1;
    }
    volatile unsigned char *w = r.write;
    for (size_t off = 0; off < r.size; off += x->page)
        w[off] = 1; /* touch every page through the write view */
    uint32_t v = ++x->value;
    if (!x->skip_write)
        wx_emit_stub(r.write, stub, v);
    if ((e = s->end_write(&r)) != 0) {
        s->unmap(&r);
        create_failed(x, "end_write", strerror(e));
        return -1;
    }
    return check_and_destroy(x, &r, v);
}

/* One create+destroy for a strategy writable only inside write_code: the
 * same op, the writable window being one write_code call that copies the
 * region's bytes (a byte on every page, the stub at the start). 0, or -1
 * with x->why. */
static int setup_op_hook(do_ctx *x)
{
    const wx_strategy *s = x->s;
    const size_t stub = wx_stub_size();
    char why[WX_REASON_LEN] = "";
    wx_region r;
    memset(&r, 0, sizeof r);
    int e = s->map(&r, x->size, why, sizeof why);
    if (e != 0) {
        create_failed(x, "create", why);
        return -1;
    }
    uint32_t v = ++x->value;
    if (!x->skip_write)
        wx_emit_stub(x->img, stub, v);
    if ((e = s->write_code(&r, 0, x->img, x->size)) != 0) {
        s->unmap(&r);
        create_failed(x, "write_code", strerror(e));
        return -1;
    }
    return check_and_destroy(x, &r, v);
}

/* One verified patch of the steady region through write_code (the stub
 * built aside, copied in one call; skip_write: the same call copying
 * nothing): 0, or -1 with x->why. */
static int steady_op_hook(do_ctx *x)
{
    const wx_strategy *s = x->s;
    const size_t stub = wx_stub_size();
    unsigned char code[64];
    uint32_t v = ++x->value;
    wx_emit_stub(code, stub, v);
    int e = s->write_code(&x->r, 0, code, x->skip_write ? 0 : stub);
    if (e != 0) {
        wx_why_errno(x->why, sizeof x->why, "write_code", e);
        return -1;
    }
    wx_icache_flush(x->r.write, x->r.exec, stub);
    uint32_t got = wx_stub_at(x->r.exec)();
    if (got != v) {
        snprintf(x->why, sizeof x->why, "verification failed: patched stub returned %u, expected %u", got, v);
        return -1;
    }
    return 0;
}

/* One verified patch of the steady region: 0, or -1 with x->why. */
static int steady_op(do_ctx *x)
{
    const wx_strategy *s = x->s;
    const size_t stub = wx_stub_size();
    uint32_t v = ++x->value;
    int e = s->begin_write(&x->r);
    if (e == 0) {
        if (!x->skip_write)
            wx_emit_stub(x->r.write, stub, v);
        e = s->end_write(&x->r);
    }
    if (e != 0) {
        wx_why_errno(x->why, sizeof x->why, "begin_write/end_write", e);
        return -1;
    }
    wx_icache_flush(x->r.write, x->r.exec, stub);
    uint32_t got = wx_stub_at(x->r.exec)();
    if (got != v) {
        snprintf(x->why, sizeof x->why, "verification failed: patched stub returned %u, expected %u", got, v);
        return -1;
    }
    return 0;
}

/* n ops of setup or steady for a strategy writable only inside
 * write_code: 0, or -1 with x->why. (exec_span changes nothing: do_ops.) */
static int do_hook_ops(void *ctx, uint64_t n)
{
    do_ctx *x = ctx;
    for (uint64_t i = 0; i < n; i++) {
        if ((x->variant == V_SETUP ? setup_op_hook(x) : steady_op_hook(x)) != 0)
            return -1;
        x->done++;
    }
    return 0;
}

/* n ops of the case: 0, or -1 with x->why. */
static int do_ops(void *ctx, uint64_t n)
{
    do_ctx *x = ctx;
    for (uint64_t i = 0; i < n; i++) {
        if (x->variant == V_SETUP) {
            if (setup_op(x) != 0)
                return -1;
        } else if (x->variant == V_STEADY) {
            if (steady_op(x) != 0)
                return -1;
        } else {
            size_t p = x->cursor;
            uint32_t got = wx_page_stub_call(wx_page_stub(x->r.exec, p, x->page));
            if (got != WX_PAGE_STUB_VALUE(p)) {
                snprintf(x->why, sizeof x->why, "verification failed: the stub on page %zu returned %#x, expected %#x",
                         p, got, WX_PAGE_STUB_VALUE(p));
                return -1;
            }
            x->cursor = p + 1 == x->pages ? 0 : p + 1;
        }
        x->done++;
    }
    return 0;
}

static void do_teardown(do_ctx *x)
{
    if (x->mapped)
        x->s->unmap(&x->r);
    x->mapped = 0;
    free(x->img);
    x->img = NULL;
}

static int do_setup(do_ctx *x, const wx_strategy *s, const wx_case *c, char *why, size_t len)
{
    memset(x, 0, sizeof *x);
    x->s = s;
    x->variant = (int)c->param;
    x->page = (size_t)sysconf(_SC_PAGESIZE);
    x->size = (size_t)c->size_bytes;
    x->skip_write = wx_test_inject("skip_write");
    x->value = FIRST_VALUE;
    if (x->variant == V_SETUP && s->write_code) {
        /* The bytes setup_op_hook copies in: one on every page (the stub
         * goes over the first page's at each op). */
        if (!(x->img = calloc(1, x->size))) {
            snprintf(why, len, "out of memory for a %zu-byte code image", x->size);
            return -1;
        }
        for (size_t off = 0; off < x->size; off += x->page)
            x->img[off] = 1;
    } else if (x->variant == V_STEADY) {
        if (wx_region_prepare(s, &x->r, x->size, FIRST_VALUE, why, len) != 0)
            return -1;
        x->mapped = 1;
    } else if (x->variant == V_SPAN) {
        x->pages = x->size / x->page;
        if (wx_page_stubs_prepare(s, &x->r, x->page, x->pages, why, len) != 0)
            return -1;
        x->mapped = 1;
    }
    return 0;
}

static void do_body(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    do_ctx x;
    char why[WX_REASON_LEN] = "";
    if (do_setup(&x, s, c, why, sizeof why) != 0) {
        wx_bench_fail(b, "setup: %s", why);
        do_teardown(&x);
        return;
    }
    hog h = {0};
    if (x.variant == V_SETUP && wx_test_inject("map_exhaust") && hog_fill(&h, x.page, why, sizeof why) != 0) {
        hog_release(&h);
        do_teardown(&x);
        wx_bench_fail(b, "%s", why);
        return;
    }
    const uint64_t batch = x.variant == V_SETUP ? 1 : 16;
    int err = 0;
    wx_bench_counters_begin(b);
    if (s->write_code && x.variant != V_SPAN) {
        while (wx_bench_keep_running(b, batch))
            if ((err = do_hook_ops(&x, batch)) != 0)
                break;
    } else {
        while (wx_bench_keep_running(b, batch))
            if ((err = do_ops(&x, batch)) != 0)
                break;
    }
    wx_bench_counters_end(b);
    hog_release(&h);
    if (err == 0 && x.variant == V_SPAN && wx_page_stubs_verify(&x.r, x.page, x.pages, "after the timed loop",
                                                                x.why, sizeof x.why) != 0)
        err = -1;
    do_teardown(&x);
    if (err)
        wx_bench_fail(b, "%s", x.why);
}

/* ---------------------------------------------------------------------------
 * Cases
 * ------------------------------------------------------------------------ */

static void do_register(const wx_run *run)
{
    const uint64_t page = (uint64_t)run->page_size;
    const double min_time = run->min_time / 4 > 0.002 ? run->min_time / 4 : 0.002;

    static const uint64_t full_sizes[] = {4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};
    static const uint64_t quick_sizes[] = {4096, 1048576};
    const uint64_t *sizes = run->quick ? quick_sizes : full_sizes;
    size_t nsizes = run->quick ? sizeof quick_sizes / sizeof *quick_sizes : sizeof full_sizes / sizeof *full_sizes;
    for (size_t i = 0; i < nsizes; i++) {
        if (sizes[i] % page != 0)
            continue; /* not a whole number of pages here (16 KiB pages) */
        wx_case c = {.variant = "setup", .threads = 1, .batch = 1, .size_bytes = sizes[i], .param = V_SETUP,
                     .min_time = min_time};
        wx_add_case(&c, do_body);
    }

    wx_case steady = {.variant = "steady", .threads = 1, .batch = 1, .size_bytes = page, .param = V_STEADY,
                      .min_time = min_time};
    wx_add_case(&steady, do_body);

    static const uint64_t full_pages[] = {1, 4, 16, 64, 256, 1024, 4096};
    static const uint64_t quick_pages[] = {1, 4096};
    const uint64_t *pages = run->quick ? quick_pages : full_pages;
    size_t npages = run->quick ? sizeof quick_pages / sizeof *quick_pages : sizeof full_pages / sizeof *full_pages;
    for (size_t i = 0; i < npages; i++) {
        wx_case c = {.variant = "exec_span", .threads = 1, .batch = 1, .size_bytes = pages[i] * page,
                     .param = V_SPAN, .min_time = min_time};
        wx_add_case(&c, do_body);
    }
}

const wx_scenario wx_scenario_dualmap_overhead = {
    .name = "dualmap_overhead",
    .question = "what does the second view cost: creating regions, patching, running code over many pages?",
    .op = "setup: one verified create+touch+destroy of size_bytes; steady: one verified patch; "
          "exec_span: one call of one page's stub, round-robin over size_bytes/page pages",
    .variants = do_variants,
    .strategy_free = 0,
    .register_cases = do_register,
};
