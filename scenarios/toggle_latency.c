/* toggle_latency.c - what one switch between writable and executable costs,
 * per strategy, on a one-page region whose pages are all touched first.
 *
 *   flip       writable then executable again, no write   op = the round trip
 *   patch      writable, write a new stub, executable, flush, call it and
 *              check the value it returns                   op = one verified patch
 *   redundant  ask for the executable state while already executable
 *                                                           op = one redundant request
 *   baseline   the patch loop on plain RWX memory, no permission change
 *              (a RW alias + RX view on Apple silicon)      op = one verified patch
 *
 * Strategies with a write_code hook (mapjit_callback) are writable only
 * inside it: flip is one write_code call copying nothing (the switch to
 * writable and back), patch writes the stub through write_code, and
 * redundant does not exist for them (there is no request for a state).
 */
#include "../bench/wx.h"

#include <string.h>

#define OPS_PER_BATCH 100u

static uint32_t call(const wx_region *r)
{
    return wx_stub_at(r->exec)();
}

/* Map and verify a region, or fail the row. */
static int setup(wx_bench *b, const wx_strategy *s, wx_region *r, size_t size)
{
    char why[WX_REASON_LEN];
    if (wx_region_prepare(s, r, size, 7u, why, sizeof why) != 0) {
        wx_bench_fail(b, "setup: %s", why);
        return -1;
    }
    return 0;
}

static void bench_flip(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    wx_region r;
    if (setup(b, s, &r, (size_t)c->size_bytes) != 0)
        return;
    int err = 0;
    wx_bench_counters_begin(b);
    if (s->write_code) {
        while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
            for (unsigned i = 0; i < OPS_PER_BATCH; i++)
                err |= s->write_code(&r, 0, NULL, 0);
            if (err)
                break;
        }
    } else {
        while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
            for (unsigned i = 0; i < OPS_PER_BATCH; i++) {
                err |= s->begin_write(&r);
                err |= s->end_write(&r);
            }
            if (err)
                break;
        }
    }
    wx_bench_counters_end(b);
    if (err)
        wx_bench_fail(b, "%s failed: errno %d", s->write_code ? "write_code" : "begin_write/end_write", err);
    else if (call(&r) != 7u)
        wx_bench_fail(b, "verification failed: the code changed across flips");
    s->unmap(&r);
}

static void bench_redundant(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    wx_region r;
    if (setup(b, s, &r, (size_t)c->size_bytes) != 0)
        return;
    int err = 0;
    wx_bench_counters_begin(b);
    while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
        for (unsigned i = 0; i < OPS_PER_BATCH; i++)
            err |= s->end_write(&r); /* already executable */
        if (err)
            break;
    }
    wx_bench_counters_end(b);
    if (err)
        wx_bench_fail(b, "end_write failed: errno %d", err);
    else if (call(&r) != 7u)
        wx_bench_fail(b, "verification failed: the code does not run after redundant requests");
    s->unmap(&r);
}

/* The verified patch loop. With s == NULL: the baseline, same code, no
 * permission change, on RWX memory. */
static void patch_loop(wx_bench *b, const wx_strategy *s, wx_region *r)
{
    const size_t stub = wx_stub_size();
    const int skip_write = wx_test_inject("skip_write");
    const int via_hook = s && s->write_code;
    unsigned char code[64];
    uint32_t v = 100u;
    int err = 0;
    uint32_t got = 0;
    wx_bench_counters_begin(b);
    while (wx_bench_keep_running(b, OPS_PER_BATCH)) {
        for (unsigned i = 0; i < OPS_PER_BATCH; i++) {
            v++;
            if (via_hook) {
                /* writable only inside write_code: build the stub, copy it in */
                wx_emit_stub(code, stub, v);
                if (!skip_write)
                    err |= s->write_code(r, 0, code, stub);
            } else {
                if (s)
                    err |= s->begin_write(r);
                if (!skip_write)
                    wx_emit_stub(r->write, stub, v);
                if (s)
                    err |= s->end_write(r);
            }
            wx_icache_flush(r->write, r->exec, stub);
            got = call(r);
            if (got != v)
                break;
        }
        if (err || got != v)
            break;
    }
    wx_bench_counters_end(b);
    if (err)
        wx_bench_fail(b, "%s failed: errno %d", via_hook ? "write_code" : "begin_write/end_write", err);
    else if (got != v)
        wx_bench_fail(b, "verification failed: patched stub returned %u, expected %u", got, v);
}

static void bench_patch(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    wx_region r;
    if (setup(b, s, &r, (size_t)c->size_bytes) != 0)
        return;
    patch_loop(b, s, &r);
    s->unmap(&r);
}

static void bench_baseline(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    (void)s;
    wx_region r;
    char why[WX_REASON_LEN];
    int e = wx_baseline_prepare(&r, (size_t)c->size_bytes, 7u, why, sizeof why);
    if (e > 0)
        wx_bench_fail(b, "unsupported: %s", why);
    else if (e < 0)
        wx_bench_fail(b, "setup: %s", why);
    if (e != 0)
        return;
    patch_loop(b, NULL, &r);
    wx_baseline_unmap(&r);
}

static void toggle_register(const wx_run *run)
{
    const uint64_t page = (uint64_t)run->page_size;
    wx_case c = {.threads = 1, .batch = 1, .size_bytes = page};
    c.variant = "flip";
    wx_add_case(&c, bench_flip);
    c.variant = "patch";
    wx_add_case(&c, bench_patch);
    c.variant = "redundant";
    if (run->strategy && run->strategy->write_code)
        wx_add_unsupported(&c, "no request for the state in force exists: outside write_code "
                               "(pthread_jit_write_with_callback_np) the region is always executable, and every call "
                               "switches to writable and back (timed by flip)");
    else
        wx_add_case(&c, bench_redundant);
    c.variant = "baseline";
    wx_add_case(&c, bench_baseline);
}

static const char *const toggle_variants[] = {"flip", "patch", "redundant", "baseline", NULL};

const wx_scenario wx_scenario_toggle_latency = {
    .name = "toggle_latency",
    .question = "what does one switch between writable and executable cost?",
    .op = "flip: one writable->executable round trip; patch/baseline: one verified patch "
          "(write stub, make executable, flush, call, check); redundant: one request for the state in force",
    .variants = toggle_variants,
    .strategy_free = 0,
    .register_cases = toggle_register,
};
