/* unit.c - unit tests of the C core (strategies, codegen, icache, faults,
 * machine slugs) and of the application parts that need no Google Benchmark
 * (the audit, CSV rows). No Google Benchmark: this binary also builds for
 * aarch64 (run under qemu) and links for macOS. Tests about strategies run
 * once per entry of the strategy table (strategies.def), so that a strategy
 * added there is tested without an edit here.
 *
 * Every test runs in its own child process (tests provoke faults on
 * purpose). A test passes when its child exits 0, is skipped when it exits
 * SKIP (printing why), and fails otherwise. Ends with "N passed, N failed". */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../bench/app/audit.h"
#include "../bench/app/csv.h"
#include "../bench/app/results.h"
#include "../bench/app/stats.h"
#include "../bench/core/platform_util.h"
#include "../bench/core/threads.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SKIP 77

static int check_failures;

/* Record a failed expectation (the test goes on, and fails at its end). */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("    %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            check_failures++;                                                  \
        }                                                                      \
    } while (0)

static void skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("    skipped: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    _exit(SKIP);
}

/* ---------------------------------------------------------------- codegen */

typedef struct call_ctx {
    void *addr;
    uint32_t got;
    uint32_t value;
} call_ctx;

static void call_it(void *arg)
{
    call_ctx *c = arg;
    c->got = wx_stub_at(c->addr)();
}

static void write_it(void *arg)
{
    call_ctx *c = arg;
    wx_emit_stub(c->addr, wx_stub_size(), c->value);
}

static void test_codegen_constants(void)
{
    wx_region r;
    char why[WX_REASON_LEN];
    if (wx_baseline_map(&r, 65536, why, sizeof why) != 0)
        skip("no RWX memory for the code generator test: %s", why);
    const uint32_t values[] = {0, 1, 7, 0xffff, 0x10000, 0x12345678u, 0xdeadbeefu, 0xffffffffu};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        size_t n = wx_emit_stub(r.write, wx_stub_size(), values[i]);
        CHECK(n == wx_stub_size(), "emit returned %zu", n);
        wx_icache_flush(r.write, r.exec, n);
        uint32_t got = wx_stub_at(r.exec)();
        CHECK(got == values[i], "stub returned %#x, expected %#x", got, values[i]);
        CHECK(wx_stub_value(r.write, n) == values[i], "stub_value read back %#x", wx_stub_value(r.write, n));
    }
    /* Padded stubs of JIT-function sizes, each at its own offset, patched
     * repeatedly in place. */
    const size_t sizes[] = {wx_stub_size(), 16, 64, 256, 1024, 4096};
    size_t off = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = (sizes[s] + 3) & ~(size_t)3;
        if (size < wx_stub_size())
            size = wx_stub_size();
        void *w = (char *)r.write + off, *x = (char *)r.exec + off;
        CHECK(wx_emit_stub(w, size, 1) == size, "emit of %zu bytes", size);
        for (uint32_t v = 2; v < 2000; v += 7) {
            wx_patch_stub(w, size, v * 2654435761u);
            wx_icache_flush(w, x, size);
            uint32_t got = wx_stub_at(x)();
            if (got != v * 2654435761u) {
                CHECK(got == v * 2654435761u, "size %zu patch %u: got %#x", size, v, got);
                break;
            }
        }
        off += (size + 63) & ~(size_t)63;
    }
    CHECK(wx_emit_stub(r.write, wx_stub_size() - 1, 1) == 0, "a too-small buffer must be refused");
    wx_baseline_unmap(&r);
}

/* 64-bit constant stubs (inline-cache slots): known bytes, every constant
 * returned, the immediate aligned for a one-store patch on x86_64, patches in
 * place at every JIT-function size. */
static void test_codegen64(void)
{
    const uint64_t v = 0x1122334455667788ull;
    unsigned char buf[64];
#if defined(__x86_64__)
    CHECK(wx_stub64_size() == 17, "x86_64 stub64 is %zu bytes", wx_stub64_size());
    static const unsigned char want[17] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x48, 0xB8, 0x88,
                                           0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xC3};
    CHECK(wx_emit_stub64(buf, 17, v) == 17, "emit 17 bytes");
    CHECK(memcmp(buf, want, 17) == 0, "bytes differ from nop*6; movabs rax, imm64; ret");
    for (size_t size = 17; size <= 64; size++) {
        memset(buf, 0, sizeof buf);
        CHECK(wx_emit_stub64(buf, size, v) == size, "emit %zu bytes", size);
        size_t at = 0;
        while (at < size && buf[at] == 0x90)
            at++;
        CHECK(at + 11 <= size && buf[at] == 0x48 && buf[at + 1] == 0xB8, "size %zu: no movabs after the nops", size);
        CHECK((at + 2) % 8 == 0, "size %zu: the immediate is at offset %zu, not 8-byte aligned", size, at + 2);
        CHECK(buf[at + 10] == 0xC3, "size %zu: no ret after the immediate", size);
        for (size_t k = at + 11; k < size; k++)
            CHECK(buf[k] == 0xCC, "size %zu: byte %zu after the ret is %#x, not int3", size, k, buf[k]);
    }
#else
    CHECK(wx_stub64_size() == 20, "arm64 stub64 is %zu bytes", wx_stub64_size());
    static const uint32_t want[5] = {0xd28ef100u, 0xf2aaacc0u, 0xf2c66880u, 0xf2e22440u, 0xd65f03c0u};
    CHECK(wx_emit_stub64(buf, 24, v) == 24, "emit 24 bytes");
    uint32_t insn[6];
    memcpy(insn, buf, 24);
    CHECK(insn[0] == 0xd503201fu, "leading nop is %#x", insn[0]);
    for (int i = 0; i < 5; i++)
        CHECK(insn[i + 1] == want[i], "instruction %d is %#x, expected %#x", i, insn[i + 1], want[i]);
    CHECK(wx_emit_stub64(buf, 22, v) == 0, "a size that is not a multiple of 4 must be refused");
#endif
    CHECK(wx_emit_stub64(buf, 24, v) == 24 && wx_stub64_value(buf, 24) == v, "value read back as %#llx",
          (unsigned long long)wx_stub64_value(buf, 24));
    CHECK(wx_emit_stub64(buf, wx_stub64_size() - 1, v) == 0, "a too-small buffer must be refused");

    wx_region r;
    char why[WX_REASON_LEN];
    if (wx_baseline_map(&r, 65536, why, sizeof why) != 0)
        skip("no RWX memory for the code generator test: %s", why);
    const uint64_t values[] = {0, 1, 0xffffffffull, 0x100000000ull, 0x8000000000000000ull, 0xdeadbeefcafebabeull,
                               UINT64_MAX, v};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        size_t n = wx_emit_stub64(r.write, 24, values[i]);
        CHECK(n == 24, "emit returned %zu", n);
        wx_icache_flush(r.write, r.exec, n);
        uint64_t got = wx_stub64_at(r.exec)();
        CHECK(got == values[i], "stub returned %#llx, expected %#llx", (unsigned long long)got,
              (unsigned long long)values[i]);
        CHECK(wx_stub64_value(r.write, n) == values[i], "value read back as %#llx",
              (unsigned long long)wx_stub64_value(r.write, n));
    }
    const size_t sizes[] = {wx_stub64_size(), 24, 64, 256, 1024, 4096};
    size_t off = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = (sizes[s] + 3) & ~(size_t)3;
        void *w = (char *)r.write + off, *x = (char *)r.exec + off;
        CHECK(wx_emit_stub64(w, size, 1) == size, "emit of %zu bytes", size);
        for (uint64_t k = 2; k < 2000; k += 7) {
            uint64_t want64 = k * 0x9E3779B97F4A7C15ull;
            wx_patch_stub64(w, size, want64);
            wx_icache_flush(w, x, size);
            uint64_t got = wx_stub64_at(x)();
            if (got != want64) {
                CHECK(got == want64, "size %zu patch %llu: got %#llx", size, (unsigned long long)k,
                      (unsigned long long)got);
                break;
            }
        }
        off += (size + 63) & ~(size_t)63;
    }
    wx_baseline_unmap(&r);
}

/* -------------------------------------------------------------- strategies */

/* 1 (and why) when a strategy with a writable alias cannot be checked
 * because the CPU is emulated in user mode: qemu-user caches translated code
 * per virtual page and notices writes to that page only, so code written
 * through the other mapping is never seen by the executable view. */
static int alias_unverifiable(const wx_strategy *s, char *why, size_t len)
{
    if (!(s->flags & WX_WRITABLE_ALIAS))
        return 0;
    wx_machine m;
    wx_machine_describe(&m);
    if (m.emulated != 1)
        return 0;
    snprintf(why, len,
             "%.20s: not checkable under emulation (%.60s): qemu-user caches translated code per page and "
             "misses writes through the other mapping",
             s->name, m.chip);
    return 1;
}

/* 1 (and why) when a MAP_JIT strategy runs where the per-thread toggle is
 * not enforced (writes succeed while write-protected: a virtual machine?):
 * none of its W^X promises can be checked there, which --probe says. */
static int toggle_unenforced(const wx_strategy *s, char *why, size_t len)
{
    char t[WX_REASON_LEN];
    if (!(s->flags & WX_JIT_TOGGLE) || wx_jit_toggle_enforced(t, sizeof t) != 0)
        return 0;
    snprintf(why, len, "%.20s: %.200s", s->name, t);
    return 1;
}

/* The contract every strategy that runs here must keep. */
static void strategy_contract(const wx_strategy *s)
{
    const char *name = s->name;
    char why[WX_REASON_LEN] = "";
    if (!wx_strategy_supported(s, why, sizeof why)) {
        CHECK(why[0] != 0, "an unsupported strategy must say why");
        skip("%s unsupported here: %s", name, why);
    }
    if (alias_unverifiable(s, why, sizeof why) || toggle_unenforced(s, why, sizeof why))
        skip("%s", why);
    wx_region r;
    memset(&r, 0, sizeof r);
    long page = sysconf(_SC_PAGESIZE);
    int e = s->map(&r, (size_t)page * 4, why, sizeof why);
    CHECK(e == 0, "map: %s", why);
    if (e)
        return;
    CHECK(r.size >= (size_t)page * 4, "region size %zu", r.size);
    CHECK(((uintptr_t)r.exec % (uintptr_t)page) == 0, "exec view not page aligned");

    if (s->write_code)
        CHECK(s->begin_write(&r) == ENOTSUP, "a strategy writable only inside write_code must refuse begin_write");
    for (uint32_t round = 0; round < 20; round++) {
        uint32_t v = 0x5000u + round * 977u;
        call_ctx w = {.addr = (char *)r.write + page * (round % 4), .value = v};
        int sig = 0;
        if (s->write_code) {
            /* writable only inside the hook: the stub is copied in */
            unsigned char stub[64];
            wx_emit_stub(stub, wx_stub_size(), v);
            int e = s->write_code(&r, (size_t)page * (round % 4), stub, wx_stub_size());
            CHECK(e == 0, "round %u: write_code: %s", round, strerror(e));
        } else {
            CHECK(s->begin_write(&r) == 0, "begin_write");
            sig = wx_try(write_it, &w);
            CHECK(sig == 0, "round %u: a write after begin_write faulted (%s)", round, wx_signal_name(sig));
            CHECK(s->end_write(&r) == 0, "end_write");
        }
        wx_icache_flush(w.addr, (char *)r.exec + page * (round % 4), wx_stub_size());
        call_ctx c = {.addr = (char *)r.exec + page * (round % 4)};
        sig = wx_try(call_it, &c);
        CHECK(sig == 0, "round %u: the code did not run after end_write (%s)", round, wx_signal_name(sig));
        CHECK(c.got == v, "round %u: the code returned %#x, expected %#x", round, c.got, v);

        /* After end_write, a write through the executable view faults,
         * except for the insecure baseline, which is writable at all times. */
        call_ctx bad = {.addr = r.exec, .value = 0xbad};
        sig = wx_try(write_it, &bad);
        if (s->flags & WX_ALWAYS_RWX)
            CHECK(sig == 0, "rwx: a write through the executable view must work (%s)", wx_signal_name(sig));
        else
            CHECK(sig == SIGSEGV || sig == SIGBUS, "round %u: a write through the executable view did not fault",
                  round);
        s->end_write(&r); /* a fault handler may leave per-thread state changed */
        wx_jit_thread_reset();
    }
    s->unmap(&r);
}

/* wx_write_code: for every strategy that runs here, writing a stub leaves
 * the region executable and running it; a zero-length write is a round
 * trip that keeps the code; out-of-range writes through a hook are refused. */
static void test_write_code_all(void)
{
    int tried = 0;
    for (size_t i = 0; wx_strategies[i]; i++) {
        const wx_strategy *s = wx_strategies[i];
        char why[WX_REASON_LEN] = "";
        if (!wx_strategy_supported(s, why, sizeof why))
            continue;
        if (alias_unverifiable(s, why, sizeof why)) {
            printf("    not tried: %s\n", why);
            continue;
        }
        tried++;
        wx_region r;
        long page = sysconf(_SC_PAGESIZE);
        int e = wx_region_prepare(s, &r, (size_t)page, 11u, why, sizeof why);
        CHECK(e == 0, "%s: prepare: %s", s->name, why);
        if (e)
            continue;
        for (uint32_t v = 1; v < 50; v++) {
            unsigned char stub[64];
            wx_emit_stub(stub, wx_stub_size(), v * 7919u);
            e = wx_write_code(s, &r, 0, stub, wx_stub_size());
            CHECK(e == 0, "%s: wx_write_code: %s", s->name, strerror(e));
            CHECK(wx_write_code(s, &r, 0, NULL, 0) == 0, "%s: zero-length round trip", s->name);
            wx_icache_flush(r.write, r.exec, wx_stub_size());
            call_ctx c = {.addr = r.exec};
            int sig = wx_try(call_it, &c);
            if (sig != 0 || c.got != v * 7919u) {
                CHECK(sig == 0 && c.got == v * 7919u, "%s: after wx_write_code the stub returned %#x (%s)", s->name,
                      c.got, wx_signal_name(sig));
                break;
            }
        }
        if (s->write_code)
            CHECK(s->write_code(&r, r.size, "x", 1) == EINVAL, "%s: a write past the region must be refused",
                  s->name);
        s->unmap(&r);
    }
    CHECK(tried > 0, "no strategy runs here");
}

static void audit_expect_hook_window(const char *name, const wx_audit *a);

/* The test build's strategy writable only inside a write_code hook, built
 * on mprotect (bench/strategies/test_hook.c; in the core library, listed in
 * the strategy table only in test builds), so that the hook's plumbing
 * (wx_write_code, wx_region_prepare, the probe, the audit) is tested where
 * mapjit_callback cannot run. */
extern const wx_strategy wx_strategy_test_hook;

static void test_write_hook_plumbing(void)
{
    const wx_strategy *hook = &wx_strategy_test_hook;
    char why[WX_REASON_LEN] = "";
    if (!wx_strategy_supported(hook, why, sizeof why))
        skip("test_hook (mprotect underneath) unsupported here: %s", why);
    wx_region r;
    long page = sysconf(_SC_PAGESIZE);
    CHECK(wx_region_prepare(hook, &r, (size_t)page * 2, 99u, why, sizeof why) == 0, "prepare: %s", why);
    CHECK(wx_stub_at(r.exec)() == 99u, "prepared stub");
    unsigned char stub[64];
    wx_emit_stub(stub, wx_stub_size(), 1234u);
    CHECK(wx_write_code(hook, &r, (size_t)page, stub, wx_stub_size()) == 0, "wx_write_code");
    wx_icache_flush((char *)r.write + page, (char *)r.exec + page, wx_stub_size());
    CHECK(wx_stub_at((char *)r.exec + page)() == 1234u, "stub written through the hook");
    call_ctx bad = {.addr = r.exec, .value = 1};
    int sig = wx_try(write_it, &bad);
    CHECK(sig == SIGSEGV || sig == SIGBUS, "outside the hook the region must not be writable");
    CHECK(wx_write_code(hook, &r, r.size, stub, 1) == EINVAL, "a write past the end must be refused");
    hook->unmap(&r);
    /* The audit through the hook: the facts (the probe's line), the rest
     * questions answered (nobody may write at rest: mprotect RX, one view),
     * the window ones n/a. */
    wx_audit a;
    wx_audit_strategy(hook, &a);
    const wx_audit p = a;
    CHECK(p.maps == 1 && p.write_sig == 0 && p.run_sig == 0 && p.run_value_ok == 1,
          "probe through the hook: maps %d write %d run %d value %d (%s)", p.maps, p.write_sig, p.run_sig,
          p.run_value_ok, p.why);
    CHECK(p.write_exec_sig == SIGSEGV || p.write_exec_sig == SIGBUS, "probe: write while executable did not fault");
    CHECK(p.exec_writable_sig == -1 && p.other_write_sig == -1, "probe: checks inside the hook must be not tried");
    CHECK(p.regions == WX_AUDIT_REGIONS, "probe: %d regions (%s)", p.regions, p.regions_why);
    CHECK(a.complete == 1, "audit through the hook did not complete");
    CHECK(a.result[WX_AUDIT_WRITABLE_AT_REST] == 0 && strstr(a.evidence[WX_AUDIT_WRITABLE_AT_REST], "SIG"),
          "audit writable_at_rest: %s (%s)", wx_audit_result_name(a.result[WX_AUDIT_WRITABLE_AT_REST]),
          a.evidence[WX_AUDIT_WRITABLE_AT_REST]);
    CHECK(a.result[WX_AUDIT_PERMANENT_ALIAS] == 0, "audit permanent_writable_alias: %s (%s)",
          wx_audit_result_name(a.result[WX_AUDIT_PERMANENT_ALIAS]), a.evidence[WX_AUDIT_PERMANENT_ALIAS]);
    audit_expect_hook_window("test_hook", &a);
}

/* Core classes: at least one, "any" alone or P and E; "any" can always be
 * requested; CPU classes are P, E or unknown. */
static void test_core_classes(void)
{
    const char *cls[4];
    int n = wx_core_classes(cls, 4);
    CHECK(n == 1 || n == 2, "%d core classes", n);
    if (n == 1)
        CHECK(strcmp(cls[0], "any") == 0, "a single class must be \"any\", is %s", cls[0]);
    if (n == 2)
        CHECK(strcmp(cls[0], "P") == 0 && strcmp(cls[1], "E") == 0, "classes %s,%s", cls[0], cls[1]);
    char why[WX_REASON_LEN] = "";
    for (int i = 0; i < n; i++)
        CHECK(wx_set_core_class(cls[i], why, sizeof why) == 0, "class %s: %s", cls[i], why);
    CHECK(wx_set_core_class("any", why, sizeof why) == 0, "class any: %s", why);
    int c = wx_cpu_class(wx_current_cpu());
    CHECK(c == 0 || c == 'P' || c == 'E', "cpu class %d", c);
    CHECK(wx_pin_method()[0] != 0, "empty pinning method");
}


/* dualmap: what is written through the RW view is what the RX view runs,
 * the views differ, and the RW view stays writable while code runs. */
static void test_dualmap_views(void)
{
    const wx_strategy *s = wx_strategy_find("dualmap");
    char why[WX_REASON_LEN] = "";
    if (!wx_strategy_supported(s, why, sizeof why))
        skip("dualmap unsupported here: %s", why);
    if (alias_unverifiable(s, why, sizeof why))
        skip("%s", why);
    wx_region r;
    long page = sysconf(_SC_PAGESIZE);
    CHECK(s->map(&r, (size_t)page * 2, why, sizeof why) == 0, "map: %s", why);
    CHECK(r.write != r.exec, "dualmap must give two different views");
    CHECK(s->flags & WX_WRITABLE_ALIAS, "dualmap must declare its writable alias");
    for (uint32_t v = 1; v < 500; v++) {
        wx_emit_stub((char *)r.write + page, wx_stub_size(), v * 31u);
        wx_icache_flush((char *)r.write + page, (char *)r.exec + page, wx_stub_size());
        uint32_t got = wx_stub_at((char *)r.exec + page)();
        if (got != v * 31u) {
            CHECK(got == v * 31u, "RX view ran %#x after RW view wrote %#x", got, v * 31u);
            break;
        }
        CHECK(memcmp((char *)r.write + page, (char *)r.exec + page, wx_stub_size()) == 0, "views differ");
    }
    char csm[WX_REASON_LEN];
    if (wx_code_signing_monitor(csm, sizeof csm) == 1) {
        printf("    not tried (code-signing monitor on: %s): executing the RW view\n", csm);
    } else {
        call_ctx x = {.addr = r.write};
        wx_child_try t;
        int sig = wx_try_in_child(call_it, &x, sizeof x, 10000, &t);
        CHECK(sig > 0, "the RW view must not be executable (%s)", t.why);
    }
    s->unmap(&r);
}

/* What the flags promise, checked by the audit's facts and answers:
 * WX_PER_THREAD - while one thread may write, another is still
 * write-protected (a process-wide switch lets it write); WX_ALWAYS_RWX -
 * writable at rest; WX_WRITABLE_ALIAS - a second view, writable at rest. */
static void flags_check(const wx_strategy *s)
{
    const char *name = s->name;
    char why[WX_REASON_LEN] = "";
    if (!wx_strategy_supported(s, why, sizeof why))
        skip("%s unsupported here: %s", name, why);
    if (alias_unverifiable(s, why, sizeof why) || toggle_unenforced(s, why, sizeof why))
        skip("%s", why);
    wx_audit p;
    wx_audit_strategy(s, &p);
    CHECK(p.maps == 1, "%s: map failed: %s", name, p.why);
    CHECK(p.write_sig == 0, "%s: write while writable faulted", name);
    CHECK(p.run_sig == 0 && p.run_value_ok == 1, "%s: code did not run correctly", name);
    CHECK(p.complete == 1, "%s: the audit did not complete", name);
    if (!s->write_code) {
        if (s->flags & WX_PER_THREAD)
            CHECK(p.other_write_sig == SIGSEGV || p.other_write_sig == SIGBUS,
                  "%s: another thread could write while this one had write access", name);
        else
            CHECK(p.other_write_sig == 0,
                  "%s: another thread's write faulted (%s) though the change is process-wide", name,
                  wx_signal_name(p.other_write_sig));
    }
    CHECK(p.alias == ((s->flags & WX_WRITABLE_ALIAS) != 0), "%s: a second view %s, the flags say otherwise", name,
          p.alias ? "exists" : "does not exist");
    CHECK((p.result[WX_AUDIT_WRITABLE_AT_REST] == 1) == ((s->flags & (WX_ALWAYS_RWX | WX_WRITABLE_ALIAS)) != 0),
          "%s: writable_at_rest is %s (%s), the flags say otherwise", name,
          wx_audit_result_name(p.result[WX_AUDIT_WRITABLE_AT_REST]), p.evidence[WX_AUDIT_WRITABLE_AT_REST]);
    CHECK((p.result[WX_AUDIT_PERMANENT_ALIAS] == 1) == ((s->flags & WX_WRITABLE_ALIAS) != 0),
          "%s: permanent_writable_alias is %s, the flags say otherwise", name,
          wx_audit_result_name(p.result[WX_AUDIT_PERMANENT_ALIAS]));
}

/* mprotect: executing while writable faults (the pages are RW only). */
static void test_mprotect_exec_faults_when_writable(void)
{
    wx_audit p;
    wx_audit_strategy(wx_strategy_find("mprotect"), &p);
    if (!p.supported)
        skip("mprotect unsupported: %s", p.why);
    CHECK(p.write_exec_sig == SIGSEGV || p.write_exec_sig == SIGBUS, "writing RX memory did not fault");
    if (wx_code_signing_monitor(NULL, 0) == 1) {
        /* an execute fault would kill the process: not provoked, and said */
        CHECK(p.exec_writable_sig == -1 && strstr(p.exec_writable_why, "not tried, because the code-signing monitor"),
              "with the code-signing monitor on, exec-while-writable must be not tried (%d: %s)", p.exec_writable_sig,
              p.exec_writable_why);
        skip("executing RW memory not tried: %s", p.exec_writable_why);
    }
    CHECK(p.exec_writable_sig == SIGSEGV || p.exec_writable_sig == SIGBUS, "executing RW memory did not fault (%d: %s)",
          p.exec_writable_sig, p.exec_writable_why);
    CHECK(!p.exec_writable_killed && strstr(p.exec_writable_why, "child process"),
          "the call is made and caught in a child process (%s)", p.exec_writable_why);
}

/* Every strategy in the table has a unique name and a summary; one this
 * build cannot have says why and has no functions; the others have every
 * function; an unsupported one says why. */
static void test_strategy_table(void)
{
    CHECK(wx_strategy_count() >= 1, "the strategy table is empty");
    for (size_t i = 0; wx_strategies[i]; i++) {
        const wx_strategy *s = wx_strategies[i];
        CHECK(s->name && s->name[0] && s->summary && s->summary[0], "strategy %zu has no name or summary", i);
        CHECK(wx_strategy_find(s->name) == s, "%s: its name is not unique", s->name);
        CHECK(strncmp(s->name, "test_", 5) != 0, "test-only strategy %s in a user build", s->name);
        if (s->unavailable)
            CHECK(s->unavailable[0] && !s->supported && !s->map && !s->begin_write && !s->end_write && !s->unmap &&
                      !s->write_code,
                  "%s: unavailable here, yet it has functions (or an empty reason)", s->name);
        else
            CHECK(s->supported && s->map && s->begin_write && s->end_write && s->unmap, "%s is incomplete",
                  s->name);
        char why[WX_REASON_LEN] = "";
        if (!wx_strategy_supported(s, why, sizeof why))
            CHECK(why[0] != 0, "%s: unsupported without a reason", s->name);
    }
    CHECK(wx_strategy_find("nonsense") == NULL, "unknown names must not be found");
}

/* ------------------------------------------------------------------- audit */

/* The audit's answers for a strategy that runs here, against its known
 * semantics (results 1 yes, 0 no; -1 = not checked). */
static void audit_expect(const char *name, const int want[WX_AUDIT_NPROPS])
{
    const wx_strategy *s = wx_strategy_find(name);
    char why[WX_REASON_LEN] = "";
    if (!s || !wx_strategy_supported(s, why, sizeof why))
        skip("%s unsupported here: %s", name, s ? why : "not in the table");
    if (toggle_unenforced(s, why, sizeof why))
        skip("%s", why);
    wx_audit a;
    wx_audit_strategy(s, &a);
    CHECK(a.complete == 1, "%s: the audit did not complete", name);
    const int csm = wx_code_signing_monitor(NULL, 0) == 1;
    for (int i = 0; i < WX_AUDIT_NPROPS; i++) {
        CHECK(a.evidence[i][0] != 0, "%s %s: no evidence", name, wx_audit_property_names[i]);
        if (csm && !s->write_code &&
            (i == WX_AUDIT_WRITER_EXECUTES ||
             (i == WX_AUDIT_OTHER_EXECUTES && !(s->flags & (WX_PER_THREAD | WX_NO_SWITCH))))) {
            /* calls that may fault while the writer holds write access: not provoked where an execute fault kills */
            CHECK(a.result[i] == -1 && strstr(a.evidence[i], "not tried, because the code-signing monitor is on"),
                  "%s %s: %s (%s), expected not tried under the code-signing monitor", name,
                  wx_audit_property_names[i], wx_audit_result_name(a.result[i]), a.evidence[i]);
            continue;
        }
        if (want[i] >= 0)
            CHECK(a.result[i] == want[i], "%s %s: %s, expected %s (%s)", name, wx_audit_property_names[i],
                  wx_audit_result_name(a.result[i]), wx_audit_result_name(want[i]), a.evidence[i]);
        if (a.result[i] == 0 && i != WX_AUDIT_PERMANENT_ALIAS)
            CHECK(strstr(a.evidence[i], "SIG") != NULL, "%s %s: a no must name the signal that decided it (%s)",
                  name, wx_audit_property_names[i], a.evidence[i]);
    }
}

/* Order: writable_at_rest, permanent_writable_alias, writer_can_execute_while_writable,
 * other_thread_can_write_while_writable, other_thread_can_execute_while_writable,
 * new_thread_inherits_write_access. */
static void test_audit_rwx(void)
{
    static const int want[] = {1, 0, 1, 1, 1, 1};
    audit_expect("rwx", want);
}

static void test_audit_mprotect(void)
{
    static const int want[] = {0, 0, 0, 1, 0, 0};
    audit_expect("mprotect", want);
}

static void test_audit_dualmap(void)
{
    static const int want[] = {1, 1, 1, 1, 1, 1};
    audit_expect("dualmap", want);
}

/* x86 PKU gates data access only: the writer and other threads can still
 * run the code; only the thread that asked may write. */
static void test_audit_pkey(void)
{
#if defined(__x86_64__)
    static const int want[] = {0, 0, 1, 0, 1, -1};
#else
    static const int want[] = {0, 0, -1, 0, -1, -1};
#endif
    audit_expect("pkey", want);
}

/* Apple's per-thread toggle: the writer cannot run the code while it may
 * write, other threads stay in execute mode (the recreated RWX), new
 * threads start write-protected. */
static void test_audit_mapjit(void)
{
    static const int want[] = {0, 0, 0, 0, 1, 0};
    audit_expect("mapjit", want);
}

/* The four window questions of a strategy writable only inside write_code
 * are n/a, and say that the window runs nothing but the hook's copy. */
static void audit_expect_hook_window(const char *name, const wx_audit *a)
{
    static const int window[] = {WX_AUDIT_WRITER_EXECUTES, WX_AUDIT_OTHER_WRITES, WX_AUDIT_OTHER_EXECUTES,
                                 WX_AUDIT_INHERITED_WRITE};
    for (size_t i = 0; i < sizeof window / sizeof window[0]; i++) {
        int p = window[i];
        CHECK(a->result[p] == -1, "%s %s: %s, expected n/a", name, wx_audit_property_names[p],
              wx_audit_result_name(a->result[p]));
        CHECK(strstr(a->evidence[p], "not determinable") && strstr(a->evidence[p], "write_code") &&
                  strstr(a->evidence[p], "landed and ran"),
              "%s %s: evidence [%s] must say why and that a write through the hook ran", name,
              wx_audit_property_names[p], a->evidence[p]);
    }
}

/* Writable only inside pthread_jit_write_with_callback_np: at rest nobody
 * may write (per-thread JIT state, one view); the window runs only the
 * strategy's copy, so its four questions are n/a. */
static void test_audit_mapjit_callback(void)
{
    static const int want[] = {0, 0, -1, -1, -1, -1};
    audit_expect("mapjit_callback", want);
    wx_audit a;
    wx_audit_strategy(wx_strategy_find("mapjit_callback"), &a);
    audit_expect_hook_window("mapjit_callback", &a);
}

/* An unsupported strategy: every answer n/a, with the reason. */
static void test_audit_unsupported(void)
{
    for (size_t i = 0; wx_strategies[i]; i++) {
        char why[WX_REASON_LEN] = "";
        if (wx_strategy_supported(wx_strategies[i], why, sizeof why))
            continue;
        wx_audit a;
        wx_audit_strategy(wx_strategies[i], &a);
        for (int p = 0; p < WX_AUDIT_NPROPS; p++) {
            CHECK(a.result[p] == -1, "%s: %s is not n/a", wx_strategies[i]->name, wx_audit_property_names[p]);
            CHECK(strstr(a.evidence[p], why) != NULL, "%s: evidence [%s] lacks the reason [%s]",
                  wx_strategies[i]->name, a.evidence[p], why);
        }
        return;
    }
    skip("every strategy runs here");
}

/* Children appending to one side file at once: the header exactly once,
 * first, and every row whole. */
static void test_side_csv_appends(void)
{
    char dir[] = "/tmp/wxbench-unit-XXXXXX";
    if (!mkdtemp(dir))
        skip("mkdtemp: %s", strerror(errno));
    enum { CHILDREN = 6, ROWS = 40 };
    pid_t pids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            for (int k = 0; k < ROWS; k++) {
                char n1[16], n2[16], why[WX_REASON_LEN];
                snprintf(n1, sizeof n1, "%d", c);
                snprintf(n2, sizeof n2, "%d", k);
                const char *fields[] = {n1, n2, "evidence, with \"quotes\" and a comma"};
                char *line = wx_csv_line(fields, 3);
                if (!line || wx_side_csv_append(dir, "side.csv", "child,row,text\n", line, why, sizeof why) != 0)
                    _exit(1);
                free(line);
            }
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int st = 0;
        CHECK(pids[c] > 0, "fork");
        if (pids[c] > 0) {
            while (waitpid(pids[c], &st, 0) < 0 && errno == EINTR)
                ;
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d could not append", c);
        }
    }
    char path[256];
    snprintf(path, sizeof path, "%s/side.csv", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "side.csv missing");
    if (!f)
        return;
    char line[256];
    int lines = 0, headers = 0, whole = 0;
    int seen[CHILDREN][ROWS];
    memset(seen, 0, sizeof seen);
    while (fgets(line, sizeof line, f)) {
        if (lines == 0)
            CHECK(strcmp(line, "child,row,text\n") == 0, "first line is [%s]", line);
        if (strcmp(line, "child,row,text\n") == 0)
            headers++;
        int c, k;
        if (sscanf(line, "%d,%d,", &c, &k) == 2 && c >= 0 && c < CHILDREN && k >= 0 && k < ROWS &&
            strstr(line, ",\"evidence, with \"\"quotes\"\" and a comma\"\n")) {
            seen[c][k]++;
            whole++;
        }
        lines++;
    }
    fclose(f);
    CHECK(headers == 1, "%d header lines", headers);
    CHECK(whole == CHILDREN * ROWS && lines == whole + 1, "%d whole rows of %d lines", whole, lines);
    for (int c = 0; c < CHILDREN; c++)
        for (int k = 0; k < ROWS; k++)
            CHECK(seen[c][k] == 1, "row %d/%d appears %d times", c, k, seen[c][k]);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------------ faults */

static void touch_null_page(void *arg)
{
    (void)arg;
    volatile char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if ((void *)p != MAP_FAILED)
        p[0] = 1;
}

static void do_nothing(void *arg)
{
    (void)arg;
}

typedef struct child_job {
    int how;            /* 0 return, 1 fault, 2 SIGKILL itself, 3 hang */
    int wrote;          /* what the child leaves in the shared bytes */
} child_job;

static void child_job_run(void *arg)
{
    child_job *j = arg;
    j->wrote = 42;
    if (j->how == 1)
        touch_null_page(NULL);
    else if (j->how == 2)
        kill(getpid(), SIGKILL);
    else if (j->how == 3)
        for (;;)
            pause();
    j->wrote = 43;
}

/* wx_try_in_child: a return, a caught fault, a kill nothing can catch and a
 * hang are each an answer; the shared bytes come back, also from a child
 * that died; this process goes on. */
static void test_fault_in_child(void)
{
    wx_child_try t;
    child_job j = {.how = 0};
    CHECK(wx_try_in_child(child_job_run, &j, sizeof j, 10000, &t) == 0 && !t.killed && !t.failed,
          "a return is 0 (%s)", t.why);
    CHECK(j.wrote == 43, "the child's bytes come back: %d", j.wrote);
    j = (child_job){.how = 1};
    int sig = wx_try_in_child(child_job_run, &j, sizeof j, 10000, &t);
    CHECK((sig == SIGSEGV || sig == SIGBUS) && !t.killed && strstr(t.why, "caught"), "a fault is caught: %d (%s)", sig,
          t.why);
    CHECK(j.wrote == 42, "what the child wrote before the fault comes back: %d", j.wrote);
    j = (child_job){.how = 2};
    sig = wx_try_in_child(child_job_run, &j, sizeof j, 10000, &t);
    CHECK(sig == SIGKILL && t.killed && strstr(t.why, "SIGKILL"), "a SIGKILL is an answer: %d (%s)", sig, t.why);
    CHECK(j.wrote == 42, "what a killed child wrote comes back: %d", j.wrote);
    j = (child_job){.how = 3};
    sig = wx_try_in_child(child_job_run, &j, sizeof j, 200, &t);
    CHECK(sig == -1 && t.failed && strstr(t.why, "200 ms"), "a hang is no answer, within its limit: %d (%s)", sig,
          t.why);
    CHECK(wx_try(do_nothing, NULL) == 0, "this process goes on");
}

static void test_fault_catching(void)
{
    CHECK(wx_try(do_nothing, NULL) == 0, "no fault expected");
    int sig = wx_try(touch_null_page, NULL);
    CHECK(sig == SIGSEGV || sig == SIGBUS, "expected SIGSEGV or SIGBUS, got %d", sig);
    CHECK(wx_try(do_nothing, NULL) == 0, "wx_try must be usable again after a fault");
    CHECK(strcmp(wx_signal_name(SIGSEGV), "SIGSEGV") == 0, "signal name");
}

/* ------------------------------------------------- the measuring thread */

/* wx_measuring_check over synthetic marks: judged only over loops at least
 * the window long; waiting for a CPU up to three quarters of the loop
 * passes; the run-queue delay decides where it is counted (sleeping is not
 * waiting), wall minus CPU time where it is not (-1). */
static void test_measuring_share(void)
{
    char why[WX_REASON_LEN] = "";
    const uint64_t ms = 1000000u;
    const int64_t none = -1;
    /* only wall and CPU time (macOS) */
    CHECK(wx_measuring_check(100 * ms, none, 100 * ms, 10 * ms, why, sizeof why) == 0, "all of it on a CPU: %s", why);
    CHECK(wx_measuring_check(101 * ms, none, 100 * ms, 10 * ms, why, sizeof why) == 0, "clock steps: more CPU than "
                                                                                      "wall");
    CHECK(wx_measuring_check(25 * ms, none, 100 * ms, 10 * ms, why, sizeof why) == 0, "a quarter on a CPU passes: %s",
          why);
    CHECK(wx_measuring_check(50 * ms, none, 100 * ms, 10 * ms, why, sizeof why) == 0, "a shared CPU (half) passes");
    why[0] = 0;
    CHECK(wx_measuring_check(20 * ms, none, 100 * ms, 10 * ms, why, sizeof why) == -1, "a fifth is starved");
    CHECK(strcmp(why, "the measuring thread was starved: it waited for a CPU for 80% of the timed loop (80.000 of "
                      "100.000 ms, not on a CPU; at most 75% is allowed), so ns_per_op would measure the waiting") == 0,
          "reason: %s", why);
    CHECK(wx_measuring_check(0, none, 100 * ms, 10 * ms, why, sizeof why) == -1, "never on a CPU is starved");
    CHECK(wx_measuring_check(0, 7530 * ms / 100, 100 * ms, 10 * ms, why, sizeof why) == -1 &&
              strstr(why, "for 76% of the timed loop"), "just over the limit is shown over it: %s", why);
    CHECK(wx_measuring_check(0, 150 * ms, 100 * ms, 10 * ms, why, sizeof why) == -1 &&
              strstr(why, "for 100% of the timed loop (150.000 of 100.000 ms"), "at most 100%%: %s", why);
    CHECK(wx_measuring_check(1 * ms, none, 5 * ms, 10 * ms, why, sizeof why) == 0, "a loop shorter than the window "
                                                                                  "is not judged");
    CHECK(wx_measuring_check(0, none, 0, 0, why, sizeof why) == 0, "an empty loop is not judged");
    /* with the run-queue delay (Linux) */
    CHECK(wx_measuring_check(2 * ms, 10 * ms, 100 * ms, 10 * ms, why, sizeof why) == 0,
          "asleep most of the loop (a lock), hardly waiting for a CPU: not starved: %s", why);
    CHECK(wx_measuring_check(40 * ms, 60 * ms, 100 * ms, 10 * ms, why, sizeof why) == 0, "60%% waiting passes");
    why[0] = 0;
    CHECK(wx_measuring_check(10 * ms, 90 * ms, 100 * ms, 10 * ms, why, sizeof why) == -1, "90%% waiting is starved");
    CHECK(strstr(why, "waited for a CPU for 90% of the timed loop (90.000 of 100.000 ms, runnable but not running; "
                      "at most 75% is allowed)") != NULL, "reason: %s", why);
    /* the real clocks: a spinning thread spends its wall time on a CPU */
    uint64_t c0 = wx_thread_cpu_ns(), w0 = wx_now_ns();
    while (wx_now_ns() - w0 < 20 * ms)
        ;
    uint64_t c1 = wx_thread_cpu_ns(), w1 = wx_now_ns();
    CHECK(c1 > c0, "the thread's CPU clock moves");
    CHECK(c1 - c0 <= (w1 - w0) + 2 * ms, "CPU %llu ns over %llu ns of wall time", (unsigned long long)(c1 - c0),
          (unsigned long long)(w1 - w0));
#if defined(__linux__)
    CHECK(wx_thread_wait_ns() >= 0, "Linux counts the run-queue delay (/proc/thread-self/schedstat)");
#elif defined(__APPLE__)
    CHECK(wx_thread_wait_ns() == -1, "macOS counts no run-queue delay");
#endif
}

/* ----------------------------------------------------------- code signing */

/* The MAP_JIT failure text: chosen by errno and situation, every case. */
static void test_map_jit_failure_text(void)
{
    wx_signing base;
    memset(&base, 0, sizeof base);
    base.applicable = 1;
    base.cs_flags = 0x20002; /* linker-signed, ad hoc */
    base.cs_config = (1u << 26);
    base.hardened_runtime = 0, base.adhoc = 1, base.linker_signed = 1, base.allow_jit = 0;
    base.jit_write_allowlist = 0, base.csm = 0, base.map_jit_enabled = 1, base.lockdown = 0, base.translated = 0;
    snprintf(base.mode, sizeof base.mode, "linker-signed");
    char why[WX_REASON_LEN];
    wx_signing s = base;
    s.lockdown = 1;
    s.map_jit_enabled = 0;
    wx_map_jit_failure(EPERM, &s, why, sizeof why);
    CHECK(strstr(why, "MAP_JIT): Operation not permitted (errno 1); Lockdown Mode is on") &&
              strstr(why, "CS_CONFIG_MAP_JIT clear"), "lockdown: %s", why);
    s = base;
    s.map_jit_enabled = 0;
    wx_map_jit_failure(EPERM, &s, why, sizeof why);
    CHECK(strstr(why, "MAP_JIT is turned off system-wide") && !strstr(why, "Lockdown"), "MAP_JIT off: %s", why);
    s = base;
    s.csm = 1;
    wx_map_jit_failure(EPERM, &s, why, sizeof why);
    CHECK(strstr(why, "the code-signing monitor (on) refused the JIT region"), "monitor: %s", why);
    CHECK(!strstr(why, "hardened"), "a monitor refusal does not blame the hardened runtime: %s", why);
    s = base;
    s.hardened_runtime = 1;
    wx_map_jit_failure(EINVAL, &s, why, sizeof why);
    CHECK(strstr(why, "(errno 22); this binary runs under the hardened runtime without the "
                      "com.apple.security.cs.allow-jit entitlement"), "hardened without allow-jit: %s", why);
    s.allow_jit = 1;
    wx_map_jit_failure(EINVAL, &s, why, sizeof why);
    CHECK(strstr(why, "not a missing entitlement"), "hardened with allow-jit: %s", why);
    s = base;
    wx_map_jit_failure(EINVAL, &s, why, sizeof why);
    CHECK(strstr(why, "cause not identified: no hardened runtime (signing: linker-signed)") &&
              !strstr(why, "allow-jit"), "plain binary: the hardened runtime is not blamed: %s", why);
    wx_map_jit_failure(ENOMEM, &s, why, sizeof why);
    CHECK(strstr(why, "out of memory or address space"), "ENOMEM: %s", why);
}

/* What the system enforces: on Linux nothing applies (and says so); on
 * macOS the answers are consistent with what was read. */
static void test_signing(void)
{
    wx_signing s;
    wx_signing_describe(&s);
    char why[WX_REASON_LEN] = "";
    int csm = wx_code_signing_monitor(why, sizeof why);
    CHECK(why[0] != 0, "the monitor check says what it read");
    int allow = wx_jit_allowlist_enforced(why, sizeof why);
    CHECK(why[0] != 0, "the allow-list check says why");
    int toggle = wx_jit_toggle_enforced(why, sizeof why);
    CHECK(why[0] != 0, "the toggle check says why");
    CHECK(s.text[0] != 0 && s.mode[0] != 0, "signing described: [%s] [%s]", s.mode, s.text);
#if defined(__APPLE__)
    CHECK(s.applicable == 1 && strcmp(s.mode, "n/a") != 0, "macOS: mode %s", s.mode);
    CHECK(csm == s.csm, "the monitor answer is the signing description's");
    CHECK((s.cs_config < 0) == (csm < 0), "the monitor is unknown exactly when security.codesigning.config is missing");
    CHECK(allow != 1 || s.jit_write_allowlist != 0, "an enforced allow-list needs the entitlement (or unknown)");
    CHECK(toggle == -1 || toggle == 0 || toggle == 1, "toggle %d", toggle);
    printf("    signing: %s (%s); toggle: %s\n", s.mode, s.text, why);
#else
    CHECK(s.applicable == 0 && strcmp(s.mode, "n/a") == 0, "not macOS: mode %s", s.mode);
    CHECK(csm == -1 && allow == 0 && toggle == -1, "not macOS: monitor %d, allow-list %d, toggle %d", csm, allow,
          toggle);
#endif
}

/* --------------------------------------------------------------------- CSV */

/* Minimal RFC 4180 reader for one record: returns the number of fields and
 * copies field k into out. */
static int csv_read(const char *s, int k, char *out, size_t len)
{
    int field = 0;
    size_t o = 0;
    int quoted = 0;
    const char *p = s;
    if (*p == '"') {
        quoted = 1;
        p++;
    }
    for (;;) {
        char ch = *p;
        if (quoted) {
            if (ch == 0)
                return -1; /* unterminated quote */
            if (ch == '"' && p[1] == '"') {
                if (field == k && o + 1 < len)
                    out[o++] = '"';
                p += 2;
                continue;
            }
            if (ch == '"') {
                quoted = 0;
                p++;
                continue;
            }
        } else if (ch == ',' || ch == '\n' || ch == 0) {
            if (field == k && len)
                out[o] = 0;
            field++;
            if (ch != ',')
                return field;
            p++;
            if (*p == '"') {
                quoted = 1;
                p++;
            }
            continue;
        }
        if (field == k && o + 1 < len)
            out[o++] = ch;
        p++;
    }
}

static void test_csv_quoting(void)
{
    const char *reason = "mmap failed, errno 13: \"Permission denied\"\nsecond line, with comma";
    wx_case c = {.variant = "patch", .threads = 2, .victims = 1, .size_bytes = 16384, .batch = 4};
    wx_row r = {.machine = "apple-m2-pro", .chip = "Apple M2 Pro", .os = "macOS 14.5", .arch = "arm64",
                .page_size = 16384, .scenario = "toggle_latency", .strategy = "mapjit", .c = &c,
                .core_class = "P", .repetition = 3, .iterations = 1000, .ns_per_op = -1,
                .cycles_per_op = -1, .tlb_per_op = -1, .status = WX_FAILED, .reason = reason};
    char *line = wx_csv_format(&r);
    CHECK(line != NULL, "format");
    if (!line)
        return;
    char field[512];
    int n = csv_read(line, 19, field, sizeof field);
    CHECK(n == 20, "expected 20 fields, read %d from: %s", n, line);
    CHECK(strcmp(field, reason) == 0, "reason read back as [%s]", field);
    csv_read(line, 7, field, sizeof field);
    CHECK(strcmp(field, "patch") == 0, "variant read back as [%s]", field);
    csv_read(line, 15, field, sizeof field);
    CHECK(field[0] == 0, "ns_per_op of a failed row must be empty, is [%s]", field);
    size_t len = strlen(line);
    CHECK(len > 0 && line[len - 1] == '\n', "row must end with a newline");
    free(line);

    /* Each character that needs quoting on its own: a comma alone splits a
     * field as surely as a quote or a newline. */
    static const char *const alone[] = {"mprotect(RW), then mprotect(RX)", "say \"no\"", "two\nlines",
                                        "cr\rhere", "plain text"};
    for (size_t k = 0; k < sizeof alone / sizeof alone[0]; k++) {
        r.reason = alone[k];
        char *l = wx_csv_format(&r);
        CHECK(l != NULL, "format");
        if (!l)
            continue;
        CHECK(csv_read(l, 19, field, sizeof field) == 20 && strcmp(field, alone[k]) == 0,
              "reason [%s] read back as [%s] from %s", alone[k], field, l);
        free(l);
    }

    int header_fields = csv_read(wx_csv_header, 0, field, sizeof field);
    CHECK(header_fields == 20, "header has %d fields", header_fields);
    CHECK(strcmp(wx_csv_header,
                 "machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,size_bytes,batch,"
                 "core_class,repetition,iterations,ns_per_op,cycles_per_op,tlb_shootdowns_per_op,status,reason\n") == 0,
          "header differs from the contract");
}

static void test_slugs(void)
{
    struct {
        const char *chip;
        int vm;
        const char *slug;
    } cases[] = {
        {"Apple M2 Pro", 0, "apple-m2-pro"},
        {"AMD EPYC 7B13", 1, "amd-epyc-7b13-vm"},
        {"Intel(R) Xeon(R) Processor", 1, "intel-xeon-vm"},
        {"Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", 0, "intel-core-i7-8700k"},
        {"Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", 1, "intel-xeon-platinum-8481c-vm"},
        {"AMD Ryzen 9 7950X 16-Core Processor", 0, "amd-ryzen-9-7950x-16-core"},
        {"", 0, "unknown"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[96];
        wx_slugify(cases[i].chip, cases[i].vm, out, sizeof out);
        CHECK(strcmp(out, cases[i].slug) == 0, "slug of [%s] is [%s], expected [%s]", cases[i].chip, out,
              cases[i].slug);
    }
}

static void test_machine(void)
{
    wx_machine m;
    wx_machine_describe(&m);
    CHECK(m.page_size >= 4096 && (m.page_size & (m.page_size - 1)) == 0, "page size %ld", m.page_size);
    CHECK(m.slug[0] != 0, "empty slug");
    CHECK(m.chip[0] != 0, "empty chip name");
    CHECK(strcmp(m.arch, "x86_64") == 0 || strcmp(m.arch, "arm64") == 0, "arch [%s]", m.arch);
    CHECK(strcmp(m.arch, wx_codegen_isa()) == 0, "arch [%s] vs codegen [%s]", m.arch, wx_codegen_isa());
    CHECK(m.ncpu >= 1 && m.ncpu_allowed >= 1, "cpus %d/%d", m.ncpu, m.ncpu_allowed);
    char why[WX_REASON_LEN] = "";
    int cpu = wx_pin_thread(0, why, sizeof why);
    if (cpu >= 0)
        CHECK(wx_current_cpu() == cpu || wx_current_cpu() < 0, "pinned to %d, running on %d", cpu, wx_current_cpu());
    uint64_t t0 = wx_now_ns(), t1 = wx_now_ns();
    CHECK(t1 >= t0, "clock went backwards");
}

/* The TLB count is read by every worker thread at once: each read must be
 * whole (a shared parse buffer once gave values off by 1e16). */
typedef struct tlb_reader {
    int bad;          /* reads that went backwards or jumped absurdly */
    int ok;           /* the count is available */
} tlb_reader;

static void *read_tlb_repeatedly(void *arg)
{
    tlb_reader *t = arg;
    int ok = 0;
    uint64_t prev = wx_tlb_shootdowns(&ok);
    t->ok = ok;
    for (int i = 0; i < 300 && ok; i++) {
        uint64_t now = wx_tlb_shootdowns(&ok);
        if (now < prev || now - prev > 100000000u)
            t->bad++;
        prev = now;
    }
    return NULL;
}

static void test_tlb_count_concurrent_reads(void)
{
    int ok = 0;
    wx_tlb_shootdowns(&ok);
    if (!ok)
        skip("no TLB row in /proc/interrupts here (counted on x86 Linux only)");
    enum { N = 6 };
    pthread_t t[N];
    tlb_reader r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        CHECK(pthread_create(&t[i], NULL, read_tlb_repeatedly, &r[i]) == 0, "pthread_create");
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK(r[i].ok, "thread %d could not read the count", i);
        CHECK(r[i].bad == 0, "thread %d saw %d torn or backwards reads", i, r[i].bad);
    }
}

/* -------------------------------------------------------------- statistics */

/* The order-statistic interval of the median: the rank table scripts/wxdata.py
 * uses too (tests/scripts/test_statistics.py), coverage, and the values. */
static void test_median_interval(void)
{
    static const size_t n[] = {1, 5, 6, 8, 9, 10, 12, 20, 30};
    static const size_t j[] = {0, 0, 1, 1, 2, 2, 3, 6, 10};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
        CHECK(wx_median_ci_rank(n[i], 0.05) == j[i], "n = %zu: rank %zu, expected %zu", n[i],
              wx_median_ci_rank(n[i], 0.05), j[i]);
    double x[10] = {9, 1, 8, 2, 7, 3, 6, 4, 5, 10};
    wx_median_ci m;
    wx_median_ci_of(x, 10, &m);
    CHECK(m.n == 10 && m.median == 5.5, "median %g of 1..10", m.median);
    CHECK(m.exact95 && m.low == 2 && m.high == 9, "interval %g..%g, expected x_(2)..x_(9) = 2..9", m.low, m.high);
    CHECK(m.coverage > 0.978 && m.coverage < 0.979, "coverage %g, expected 1 - 2*11/1024", m.coverage);
    double few[5] = {3, 1, 2, 5, 4};
    wx_median_ci_of(few, 5, &m);
    CHECK(!m.exact95 && m.low == 1 && m.high == 5 && m.median == 3, "5 values: %g..%g (%d)", m.low, m.high,
          m.exact95);
    double same[6] = {2, 2, 2, 2, 2, 2};
    wx_median_ci_of(same, 6, &m);
    CHECK(m.cv == 0 && m.low == 2 && m.high == 2, "constant values: cv %g", m.cv);
    /* the per-configuration store the parent keeps for --target-ci and gb.json */
    wx_results r = {0};
    wx_config *c = wx_results_config(&r, "toggle_latency", "mprotect", "flip", 1, 0, 4096, 1, "any", 0);
    CHECK(c && wx_results_config(&r, "toggle_latency", "mprotect", "flip", 1, 0, 4096, 1, "any", 0) == c,
          "the same columns must find the same configuration");
    CHECK(wx_results_config(&r, "toggle_latency", "mprotect", "flip", 1, 0, 4096, 1, "P", 0) != c,
          "another core class is another configuration");
    for (int k = 1; k <= 10; k++) {
        wx_sample s = {.repetition = k, .iterations = 100, .ns = (double)k, .cpu_ns = k, .cycles = -1, .tlb = -1};
        CHECK(wx_results_add(c, &s) == 0, "add");
    }
    wx_results_ci(c, &m);
    CHECK(m.median == 5.5 && m.low == 2 && m.high == 9, "store: %g (%g..%g)", m.median, m.low, m.high);
    char name[256];
    wx_results_name(c, name, sizeof name);
    CHECK(strcmp(name, "toggle_latency/mprotect/flip/threads:1/victims:0/size:4096/batch:1") == 0, "name %s", name);
}

/* ----------------------------------------------------------------- victims */

/* The judgement of a victim over a timed loop, on synthetic marks: a victim
 * on its CPU for a quarter of the loop or more ran; less is a busy machine;
 * no step while it held its CPU, or after going idle, is a bug. */
static void test_victim_judge(void)
{
    char why[WX_REASON_LEN];
    const uint64_t ms = 1000000;
    CHECK(wx_victim_judge("thread", 0, 1, 5000, 0, 10 * ms, 10 * ms, why, sizeof why) == WX_VICTIM_RAN,
          "all of the loop on its CPU: %s", why);
    CHECK(wx_victim_judge("thread", 0, 1, 5000, 0, 3 * ms, 10 * ms, why, sizeof why) == WX_VICTIM_RAN,
          "30%% of the loop is enough: %s", why);
    CHECK(wx_victim_judge("thread", 0, 1, 5000, 0, 2 * ms, 10 * ms, why, sizeof why) == WX_VICTIM_BUSY,
          "20%% of the loop is too little");
    CHECK(strstr(why, "victim thread 0 (CPU 1) was on its CPU for only 20% of the timed loop (2.000 of 10.000 ms; "
                      "at least 25% is needed): its CPU was busy with other work") != NULL, "reason: %s", why);
    CHECK(wx_victim_judge("process", 2, 3, 0, 0, 0, 10 * ms, why, sizeof why) == WX_VICTIM_BUSY,
          "never on its CPU: busy, not stuck");
    CHECK(strstr(why, "victim process 2 (CPU 3) was on its CPU for only 0%") != NULL, "reason: %s", why);
    CHECK(wx_victim_judge("thread", 0, 1, 0, 0, 9 * ms, 10 * ms, why, sizeof why) == WX_VICTIM_STUCK,
          "no step while on its CPU: stuck");
    CHECK(strstr(why, "made no progress during the timed loop") != NULL, "reason: %s", why);
    CHECK(wx_victim_judge("thread", 0, 1, 0, 7, 0, 10 * ms, why, sizeof why) == WX_VICTIM_STUCK,
          "no step, idle: stuck");
    CHECK(strstr(why, "it went idle") != NULL, "reason: %s", why);
    CHECK(WX_VICTIM_MIN_RUNNING == 0.25, "the documented threshold is a quarter");
}

/* ------------------------------------------------------------------ runner */

typedef struct test {
    const char *name;
    void (*fn)(void);                     /* a test ... */
    void (*each)(const wx_strategy *s);   /* ... or one per strategy of the table ("%s" in name) */
} test;

static const test tests[] = {
    {"TLB shootdown count: concurrent reads are whole", test_tlb_count_concurrent_reads, NULL},
    {"codegen: stubs return their constants after repeated patches", test_codegen_constants, NULL},
    {"codegen: 64-bit constant stubs, known bytes, aligned immediate, patched in place", test_codegen64, NULL},
    {"strategy table: complete, unique, no test strategies, reasons given", test_strategy_table, NULL},
    {"strategy %s: writes when writable, runs and write-faults when executable", NULL, strategy_contract},
    {"strategy %s: per-thread, alias and at-rest answers match its flags", NULL, flags_check},
    {"dualmap: the RX view runs what the RW view wrote", test_dualmap_views, NULL},
    {"mprotect: executing while writable faults", test_mprotect_exec_faults_when_writable, NULL},
    {"audit rwx: writable and executable everywhere, always", test_audit_rwx, NULL},
    {"audit mprotect: no writer or other thread runs the code while it is writable", test_audit_mprotect, NULL},
    {"audit dualmap: a permanent writable alias", test_audit_dualmap, NULL},
    {"audit pkey: write access is per thread", test_audit_pkey, NULL},
    {"audit mapjit: per-thread toggle, other threads keep executing", test_audit_mapjit, NULL},
    {"audit mapjit_callback: nobody writes at rest; the window runs only the copy (n/a)",
     test_audit_mapjit_callback, NULL},
    {"audit: unsupported strategies answer n/a with the reason", test_audit_unsupported, NULL},
    {"side csv: concurrent children, one header, whole rows", test_side_csv_appends, NULL},
    {"wx_write_code: every strategy that runs here writes, runs, and round-trips", test_write_code_all, NULL},
    {"write_code hook: prepare, write, probe through a hook-only strategy", test_write_hook_plumbing, NULL},
    {"core classes: any, or P and E; requests accepted", test_core_classes, NULL},
    {"faults: SIGSEGV/SIGBUS caught and reported", test_fault_catching, NULL},
    {"faults in a child process: return, caught fault, SIGKILL and hang are answers", test_fault_in_child, NULL},
    {"measuring thread: starved when it waits for a CPU over three quarters of the loop (synthetic marks)",
     test_measuring_share, NULL},
    {"MAP_JIT failure text: by errno and situation (Lockdown, monitor, hardened runtime)", test_map_jit_failure_text,
     NULL},
    {"code signing and JIT enforcement: described, consistent", test_signing, NULL},
    {"csv: a reason with commas, quotes and a newline reads back as one field", test_csv_quoting, NULL},
    {"machine slugs from CPU names", test_slugs, NULL},
    {"machine description and pinning", test_machine, NULL},
    {"statistics: the order-statistic interval of the median, the per-configuration store", test_median_interval,
     NULL},
    {"victims: ran, busy machine or stuck, from synthetic CPU and wall marks", test_victim_judge, NULL},
};

static const wx_strategy *g_each; /* the strategy of a per-strategy test */

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0;
    const char *only = argc > 1 ? argv[1] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        for (size_t k = 0; tests[i].each ? wx_strategies[k] != NULL : k == 0; k++) {
            char name[256];
            g_each = tests[i].each ? wx_strategies[k] : NULL;
            snprintf(name, sizeof name, tests[i].name, g_each ? g_each->name : "");
            if (only && !strstr(name, only))
                continue;
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                if (g_each)
                    tests[i].each(g_each);
                else
                    tests[i].fn();
                fflush(stdout);
                _exit(check_failures ? 1 : 0);
            }
            int st = 0;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                printf("ok   - %s\n", name);
                passed++;
            } else if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP) {
                printf("skip - %s\n", name);
                skipped++;
            } else {
                if (WIFSIGNALED(st))
                    printf("    died of %s\n", wx_signal_name(WTERMSIG(st)));
                printf("FAIL - %s\n", name);
                failed++;
            }
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
