/* strategy.c - the strategy table, baseline memory, region set-up, the
 * set-up write path, and test injections. */
#include "wx.h"

#define _DARWIN_C_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WX_STRATEGY(n) extern const wx_strategy wx_strategy_##n;
#include "../strategies/strategies.def"
#ifdef WX_TESTING
#include "../strategies/test_strategies.def"
#endif
#undef WX_STRATEGY

const wx_strategy *const wx_strategies[] = {
#define WX_STRATEGY(n) &wx_strategy_##n,
#include "../strategies/strategies.def"
#ifdef WX_TESTING
#include "../strategies/test_strategies.def" /* after every user strategy, whatever is appended above */
#endif
#undef WX_STRATEGY
    NULL,
};

const wx_strategy *wx_strategy_find(const char *name)
{
    for (size_t i = 0; wx_strategies[i]; i++)
        if (strcmp(wx_strategies[i]->name, name) == 0)
            return wx_strategies[i];
    return NULL;
}

size_t wx_strategy_count(void)
{
    size_t n = 0;
    while (wx_strategies[n])
        n++;
    return n;
}

int wx_strategy_supported(const wx_strategy *s, char *why, size_t len)
{
    if (s->unavailable) {
        snprintf(why, len, "%s", s->unavailable);
        return 0;
    }
    return s->supported(why, len);
}

void wx_region_set(wx_region *r, void *write, void *exec, size_t size)
{
    r->write = write;
    r->exec = exec;
    r->size = size;
    r->fd = -1;
    r->key = -1;
    r->priv = NULL;
}

void wx_region_munmap(wx_region *r)
{
    if (r->write)
        munmap(r->write, r->size);
    if (r->exec && r->exec != r->write)
        munmap(r->exec, r->size);
    r->write = r->exec = NULL;
}

int wx_region_try(int (*map)(wx_region *, size_t, char *, size_t), void (*unmap)(wx_region *), size_t size,
                  char *why, size_t len)
{
    wx_region r;
    memset(&r, 0, sizeof r);
    if (map(&r, size, why, len) != 0)
        return 0;
    unmap(&r);
    return 1;
}

void wx_map_jit_failure(int err, const wx_signing *s, char *why, size_t len)
{
    char cause[200];
    if (s->lockdown == 1)
        snprintf(cause, sizeof cause, "Lockdown Mode is on (security.mac.lockdown_mode_state 1)%s",
                 s->map_jit_enabled == 0 ? " and has turned MAP_JIT off (CS_CONFIG_MAP_JIT clear in "
                                           "security.codesigning.config)"
                                         : ": it may turn JIT compilation off");
    else if (s->map_jit_enabled == 0)
        snprintf(cause, sizeof cause, "MAP_JIT is turned off system-wide (CS_CONFIG_MAP_JIT clear in "
                 "security.codesigning.config %#llx)", s->cs_config);
    else if (err == EPERM)
        snprintf(cause, sizeof cause, "%s", s->csm == 1
                 ? "the code-signing monitor (on) refused the JIT region: xnu answers EPERM when it does not "
                   "allow a MAP_JIT mapping"
                 : "EPERM is xnu's answer when a code-signing monitor refuses a JIT region (monitor state: "
                   "unknown or off here)");
    else if (s->hardened_runtime == 1 && s->allow_jit != 1)
        snprintf(cause, sizeof cause, "this binary runs under the hardened runtime %s the "
                 "com.apple.security.cs.allow-jit entitlement", s->allow_jit == 0 ? "without" : "and may lack");
    else if (err == ENOMEM)
        snprintf(cause, sizeof cause, "out of memory or address space");
    else if (s->hardened_runtime == 1)
        snprintf(cause, sizeof cause, "not a missing entitlement: the binary has the hardened runtime and "
                 "allow-jit");
    else
        snprintf(cause, sizeof cause, "cause not identified: no hardened runtime (signing: %s), no Lockdown "
                 "Mode, MAP_JIT not turned off, code-signing monitor %s", s->mode,
                 s->csm == 1 ? "on" : s->csm == 0 ? "off" : "state unknown");
    snprintf(why, len, "mmap(RWX, MAP_PRIVATE|MAP_ANON|MAP_JIT): %s (errno %d); %s", strerror(err), err, cause);
}

#if defined(__APPLE__)
int wx_mmap_jit(wx_region *r, size_t size, char *why, size_t len)
{
#if defined(MAP_JIT)
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANON | MAP_JIT, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        wx_signing s;
        wx_signing_describe(&s);
        wx_map_jit_failure(e, &s, why, len);
        return e;
    }
    wx_region_set(r, p, p, size);
    return 0;
#else
    (void)r;
    (void)size;
    snprintf(why, len, "this macOS SDK has no MAP_JIT");
    return ENOTSUP;
#endif
}
#endif

int wx_why_errno(char *why, size_t len, const char *call, int err)
{
    if (why && len)
        snprintf(why, len, "%s: %s (errno %d)", call, strerror(err), err);
    return err;
}

/* The memory the baseline loop runs on: the same patch loop with no
 * permission change. Plain RWX memory where the OS allows it. Native arm64
 * processes on macOS are refused RWX without MAP_JIT (EACCES), and a MAP_JIT
 * region is writable or executable per thread, never both, so there the
 * baseline uses a dual mapping instead: code is written through a RW alias
 * and run through a RX view of the same pages, neither ever changing
 * protection (the dualmap strategy's memory). */
#if defined(__APPLE__) && defined(__aarch64__)
#define WX_BASELINE_STRATEGY wx_strategy_dualmap
#else
#define WX_BASELINE_STRATEGY wx_strategy_rwx
#endif

extern const wx_strategy WX_BASELINE_STRATEGY;
static pthread_once_t baseline_once = PTHREAD_ONCE_INIT;
static int baseline_ok;                      /* the baseline memory works here */
static char baseline_why[WX_REASON_LEN];     /* why not */

/* Whether the baseline memory really runs what is written (on Apple
 * silicon the alias is checked by running code through it, with faults
 * caught), asked once per process: a failure is a reason, never a crash. */
static void baseline_check(void)
{
    baseline_ok = wx_strategy_supported(&WX_BASELINE_STRATEGY, baseline_why, sizeof baseline_why);
}

const wx_strategy *wx_baseline_strategy(void)
{
    return &WX_BASELINE_STRATEGY;
}

int wx_baseline_available(char *why, size_t len)
{
    pthread_once(&baseline_once, baseline_check);
    if (!baseline_ok)
        snprintf(why, len, "baseline needs memory that is writable and executable without a switch (RWX; a dual "
                 "mapping on Apple silicon): %s: %s", WX_BASELINE_STRATEGY.name,
                 baseline_why[0] ? baseline_why : "not supported here");
    return baseline_ok;
}

int wx_baseline_map(wx_region *r, size_t size, char *why, size_t len)
{
    if (!wx_baseline_available(why, len))
        return ENOTSUP;
    return WX_BASELINE_STRATEGY.map(r, size, why, len);
}

void wx_baseline_unmap(wx_region *r)
{
    WX_BASELINE_STRATEGY.unmap(r);
}

int wx_write_code(const wx_strategy *s, wx_region *r, size_t off, const void *src, size_t len)
{
    if (s->write_code)
        return s->write_code(r, off, src, len);
    int e = s->begin_write(r);
    if (e != 0)
        return e;
    if (len)
        memcpy((char *)r->write + off, src, len);
    return s->end_write(r);
}

int wx_region_prepare(const wx_strategy *s, wx_region *r, size_t size, uint32_t value, char *why, size_t len)
{
    memset(r, 0, sizeof *r);
    int e = s->map(r, size, why, len);
    if (e != 0)
        return e;
    /* The whole region's bytes (zeroes, the stub at the start) built aside
     * and written in one window: every page is touched, whichever way the
     * strategy writes. */
    unsigned char *img = calloc(1, r->size);
    if (!img) {
        s->unmap(r);
        return wx_why_errno(why, len, "calloc(code image)", ENOMEM);
    }
    wx_emit_stub(img, wx_stub_size(), value);
    e = wx_write_code(s, r, 0, img, r->size);
    free(img);
    if (e != 0) {
        s->unmap(r);
        return wx_why_errno(why, len, s->write_code ? "write_code" : "begin_write/end_write", e);
    }
    wx_icache_flush(r->write, r->exec, wx_stub_size());
    uint32_t got = wx_stub_at(r->exec)();
    if (got != value) {
        snprintf(why, len, "verification failed: the stub returned %u, expected %u", got, value);
        s->unmap(r);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Test injections
 * ------------------------------------------------------------------------ */

int wx_test_inject(const char *fault)
{
#ifdef WX_TESTING
    const char *want = getenv("WXBENCH_TEST_INJECT");
    if (!want)
        return 0;
    size_t k = strlen(fault);
    for (const char *p = want; (p = strstr(p, fault)) != NULL; p += k)
        if ((p == want || p[-1] == ',') && (p[k] == 0 || p[k] == ','))
            return 1;
    return 0;
#else
    (void)fault;
    return 0;
#endif
}

#ifdef WX_TESTING
unsigned wx_inject_bits;

/* Read WXBENCH_TEST_INJECT once, before main: the timed loops test a bit. */
__attribute__((constructor)) static void inject_init(void)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {{"skip_write", WX_INJ_SKIP_WRITE},
                 {"corrupt_stub", WX_INJ_CORRUPT_STUB},
                 {"victims_stall", WX_INJ_VICTIMS_STALL},
                 {"map_exhaust", WX_INJ_MAP_EXHAUST},
                 {"corrupt_last_page", WX_INJ_CORRUPT_LAST_PAGE},
                 {"interfere", WX_INJ_INTERFERE},
                 {"interfere_once", WX_INJ_INTERFERE_ONCE}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (wx_test_inject(known[i].name))
            wx_inject_bits |= known[i].bit;
}
#endif
