/* toggle_latency.c - what one switch between writable and executable costs,
 * per strategy, on a one-page region whose pages are all touched first.
 *
 *   flip       writable then executable again, no write   op = the round trip
 *   patch      writable, write a new stub, executable, flush, call it and
 *              check the value it returns                   op = one verified patch
 *   redundant  ask for the executable state while already executable
 *                                                           op = one redundant request
 *   baseline   the patch loop on memory that needs no permission change
 *              (RWX; a RW alias + RX view on Apple silicon) op = one verified patch
 *
 * Strategies writable only inside write_code (mapjit_callback): flip is one
 * write_code call copying nothing, and redundant does not exist for them
 * (there is no request for a state).
 */
#include "../bench/app/scenario.h"

#define OPS_PER_STEP 100u
#define FIRST_VALUE 7u

/* One case's region and the value its stub returns. */
typedef struct tl_state {
    wx_region r;
    int mapped;
    uint32_t v;                /* what the stub returns now */
    unsigned char stage[64];   /* the new stub, for write_code strategies */
} tl_state;

static int tl_setup(wx_job *j)
{
    tl_state *x = j->state;
    if (wx_region_prepare(j->s, &x->r, (size_t)j->c->size_bytes, FIRST_VALUE, j->why, sizeof j->why) != 0)
        return WX_FAILED;
    x->mapped = 1;
    x->v = FIRST_VALUE;
    return WX_OK;
}

static int tl_verify(wx_job *j)
{
    tl_state *x = j->state;
    uint32_t got = wx_stub_at(x->r.exec)();
    return got == x->v ? 0 : wx_job_fail(j, "verification failed: the stub returned %u after the loop, expected %u",
                                         got, x->v);
}

static void tl_teardown(wx_job *j)
{
    tl_state *x = j->state;
    if (x->mapped)
        j->s->unmap(&x->r);
}

static int tl_flip(wx_job *j, uint64_t n)
{
    tl_state *x = j->state;
    const wx_strategy *const s = j->s;
    wx_region *const r = &x->r;
    int err = 0;
    for (uint64_t i = 0; i < n; i++)
        err |= wx_code_flip(s, r);
    return err ? wx_job_errno(j, j->s->write_code ? "write_code" : "begin_write/end_write", err) : 0;
}

static int tl_redundant(wx_job *j, uint64_t n)
{
    tl_state *x = j->state;
    const wx_strategy *const s = j->s;
    wx_region *const r = &x->r;
    int err = 0;
    for (uint64_t i = 0; i < n; i++)
        err |= s->end_write(r); /* already executable */
    return err ? wx_job_errno(j, "end_write", err) : 0;
}

/* n verified patches: writable, a new stub, executable, flush, call, check. */
static int tl_patch(wx_job *j, uint64_t n)
{
    tl_state *x = j->state;
    const wx_strategy *s = j->s;
    const size_t stub = wx_stub_size();
    for (uint64_t i = 0; i < n; i++) {
        uint32_t v = x->v + 1;
        int err;
        void *p = wx_code_begin(s, &x->r, 0, x->stage, &err);
        if (err == 0) {
            wx_emit_stub(p, stub, v);
            err = wx_code_end(s, &x->r, 0, x->stage, stub);
        }
        if (err)
            return wx_job_errno(j, s->write_code ? "write_code" : "begin_write/end_write", err);
        wx_icache_flush(x->r.write, x->r.exec, stub);
        uint32_t got = wx_stub_at(x->r.exec)();
        if (got != v)
            return wx_job_fail(j, "verification failed: patched stub returned %u, expected %u", got, v);
        x->v = v;
    }
    return 0;
}

#define TL_KERNEL(fn, extra)                                                                                  \
    {.state_size = sizeof(tl_state), .step = OPS_PER_STEP, .flags = (extra), .setup = tl_setup, .ops = (fn), \
     .verify = tl_verify, .teardown = tl_teardown}

static const wx_kernel k_flip = TL_KERNEL(tl_flip, 0);
static const wx_kernel k_patch = TL_KERNEL(tl_patch, 0);
static const wx_kernel k_redundant = TL_KERNEL(tl_redundant, 0);
static const wx_kernel k_baseline = TL_KERNEL(tl_patch, WX_K_BASELINE);

static void toggle_register(const wx_run *run)
{
    wx_case c = {.size_bytes = (uint64_t)run->page_size};
    c.variant = "flip";
    wx_add(&c, &k_flip);
    c.variant = "patch";
    wx_add(&c, &k_patch);
    c.variant = "redundant";
    if (run->strategy->write_code)
        wx_add_unsupported(&c, "no request for the state in force exists: outside write_code "
                               "(pthread_jit_write_with_callback_np) the region is always executable, and every call "
                               "switches to writable and back (timed by flip)");
    else
        wx_add(&c, &k_redundant);
    c.variant = "baseline";
    wx_add(&c, &k_baseline);
}

static const char *const toggle_variants[] = {"flip", "patch", "redundant", "baseline", NULL};

const wx_scenario wx_scenario_toggle_latency = {
    .name = "toggle_latency", .variants = toggle_variants, .register_cases = toggle_register,
    .question = "what does one switch between writable and executable cost?",
    .op = "flip: one writable->executable round trip; patch/baseline: one verified patch "
          "(write stub, make executable, flush, call, check); redundant: one request for the state in force",
};
