/* child.c - one child of a run (child.h): register the scenario's cases for
 * its strategy, measure them through Google Benchmark (the shim), append a
 * row per repetition to results.csv, and tell the parent what it is doing. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "child.h"
#include "csv.h"
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const wx_child_ctx *g_ctx;
static int g_fd = -1;        /* to the parent */
static int g_nclasses = 1;   /* core classes single-thread cases run on (2 on Apple silicon) */

static void send_msg(const wx_msg *m)
{
    if (g_fd >= 0)
        wx_write_all(g_fd, m, sizeof *m); /* smaller than PIPE_BUF: one atomic write */
}

/* The message naming a case and its repetition. */
static void case_msg(wx_msg *m, int kind, const wx_case *c, const char *core_class, int repetition)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->repetition = repetition;
    m->threads = c->threads;
    m->victims = c->victims;
    m->batch = c->batch;
    m->size_bytes = c->size_bytes;
    m->ns_per_op = m->cpu_ns_per_op = m->cycles_per_op = m->tlb_per_op = -1;
    snprintf(m->variant, sizeof m->variant, "%s", c->variant);
    snprintf(m->core_class, sizeof m->core_class, "%s", core_class);
}

/* Append one row to results.csv (one whole line) and tell the parent; a row
 * that cannot be written stops the child (the parent says why). */
static void emit_row(const wx_case *c, const char *core_class, int repetition, uint64_t iterations, double ns,
                     double cpu_ns, double cycles, double tlb, wx_status status, const char *reason)
{
    const wx_machine *m = g_ctx->m;
    wx_row r = {
        .machine = m->slug, .chip = m->chip, .os = m->os, .arch = m->arch, .page_size = m->page_size,
        .scenario = g_ctx->sc->name, .strategy = g_ctx->st->name, .c = c, .core_class = core_class,
        .repetition = repetition, .iterations = iterations,
        .ns_per_op = ns, .cycles_per_op = cycles, .tlb_per_op = tlb,
        .status = status, .reason = reason,
    };
    wx_msg msg;
    int e = wx_csv_append_row(g_ctx->csv_fd, &r);
    if (e != 0) {
        case_msg(&msg, WX_MSG_IO, c, core_class, repetition);
        snprintf(msg.why, sizeof msg.why, "cannot append to %s/results.csv: %s", g_ctx->dir, strerror(e));
        send_msg(&msg);
        _exit(WX_CHILD_EXIT_IO);
    }
    case_msg(&msg, WX_MSG_ROW, c, core_class, repetition);
    msg.status = status;
    msg.iterations = iterations;
    msg.ns_per_op = ns;
    msg.cpu_ns_per_op = cpu_ns;
    msg.cycles_per_op = cycles;
    msg.tlb_per_op = tlb;
    send_msg(&msg);
}

/* The reason text of an ok row of a P/E case whose measuring thread was
 * seen outside its class, or on CPUs of unknown class; "" otherwise. */
static void core_class_note(const wx_entry *e, char *out, size_t len)
{
    out[0] = 0;
    if (strcmp(e->core_class, "any") == 0 || (!e->cpus_seen && !e->cpu_unknown))
        return;
    char outside[160] = "", unknown[160] = "", all[200] = "";
    size_t no = 0, nu = 0, na = 0;
    for (int c = 0; c < 64; c++) {
        if (!(e->cpus_seen >> c & 1))
            continue;
        int cls = wx_cpu_class(c);
        na += (size_t)snprintf(all + na, na < sizeof all ? sizeof all - na : 0, "%s%d", na ? "," : "", c);
        if (cls == 0)
            nu += (size_t)snprintf(unknown + nu, nu < sizeof unknown ? sizeof unknown - nu : 0, "%s%d",
                                   nu ? "," : "", c);
        else if (cls != e->core_class[0])
            no += (size_t)snprintf(outside + no, no < sizeof outside ? sizeof outside - no : 0, "%s%d%c",
                                   no ? "," : "", c, cls);
        if (na >= sizeof all || nu >= sizeof unknown || no >= sizeof outside)
            break;
    }
    if (outside[0])
        snprintf(out, len, "note: the measuring thread left core class %s during this case's repetitions: seen on "
                 "CPU %s (CPUs seen: %s)", e->core_class, outside, all);
    else if (unknown[0] || e->cpu_unknown)
        snprintf(out, len, "note: core class %s not checked: the class of CPU %s is unknown (see cpu_class_map in "
                 "meta.json)", e->core_class, unknown[0] ? unknown : "(number not available)");
}

/* Append to note the label of a row of a MAP_JIT strategy measured where
 * the per-thread toggle is not enforced (a virtual machine?): such a row
 * is no Mac result, whatever its number. */
static void jit_toggle_note(char *note, size_t len)
{
    char why[WX_REASON_LEN];
    if (!(g_ctx->st->flags & WX_JIT_TOGGLE) || wx_jit_toggle_enforced(why, sizeof why) != 0)
        return;
    size_t n = strlen(note);
    if (n + 8 < len)
        snprintf(note + n, len - n, "%snote: %s", n ? "; " : "", why);
}

/* One registered case: its entry, and the repetition this process is. */
typedef struct reg {
    size_t entry;     /* index in the registry */
    int repetition;   /* this child's repetition */
} reg;

/* Before a case's body on each thread: reset JIT state; on thread 0 tell
 * the parent which case runs and put the thread in the case's core class.
 * Returns nonzero when the case cannot run (the run is marked already). */
static int enter_case(wxgb_state *st, void *arg)
{
    const reg *g = arg;
    wx_entry *e = wx_registry_at(g->entry);
    wx_jit_thread_reset(); /* no JIT write state left over from an earlier case */
    if (wxgb_thread_index(st) != 0)
        return 0;
    wx_msg m;
    case_msg(&m, WX_MSG_CASE, &e->c, e->core_class, g->repetition);
    send_msg(&m);
    if (g_nclasses > 1) {
        char why[WX_REASON_LEN] = "";
        if (wx_set_core_class(e->core_class, why, sizeof why) != 0 && strcmp(e->core_class, "any") != 0) {
            char msg[WX_REASON_LEN + 64];
            snprintf(msg, sizeof msg, "core class %s: %s", e->core_class, why);
            e->status = WX_UNSUPPORTED;
            wxgb_fail(st, msg);
            return -1;
        }
    }
    wx_entry_note_cpu(e);
    return 0;
}

/* After a case's body: record where thread 0 ran and drop its class. */
static void leave_case(wxgb_state *st, void *arg)
{
    const reg *g = arg;
    wx_entry *e = wx_registry_at(g->entry);
    if (wxgb_thread_index(st) != 0)
        return;
    wx_entry_note_cpu(e);
    if (g_nclasses > 1 && strcmp(e->core_class, "any") != 0) {
        char why[WX_REASON_LEN];
        wx_set_core_class("any", why, sizeof why); /* threads Google Benchmark starts next inherit no class */
    }
}

static void body(wxgb_state *st, void *arg)
{
    const reg *g = arg;
    if (enter_case(st, arg) != 0)
        return;
    wx_case_run(st, wx_registry_at(g->entry), g->repetition);
    leave_case(st, arg);
}

static void on_result(const wxgb_result *r, void *ctx)
{
    (void)ctx;
    const reg *g = r->arg;
    if (!g)
        return;
    wx_entry *e = wx_registry_at(g->entry);
    if (r->error && e->status == WX_INTERFERED && g_ctx->attempt < WX_MAX_ATTEMPTS) {
        /* Spoiled by other work: no row; the parent measures it again. */
        wx_msg m;
        case_msg(&m, WX_MSG_RETRY, &e->c, e->core_class, g->repetition);
        snprintf(m.why, sizeof m.why, "%s", r->message ? r->message : "");
        send_msg(&m);
    } else if (r->error && e->status == WX_INTERFERED) {
        char why[WX_REASON_LEN + 96];
        snprintf(why, sizeof why, "spoiled by other work in each of %d tries (fresh processes); the last: %s",
                 g_ctx->attempt, r->message ? r->message : "");
        emit_row(&e->c, e->core_class, g->repetition, r->iterations, -1, -1, -1, -1, WX_INTERFERED, why);
    } else if (r->error) {
        const char *msg = r->message && r->message[0] ? r->message : "failed without a message";
        emit_row(&e->c, e->core_class, g->repetition, r->iterations, -1, -1, -1, -1,
                 e->status == WX_UNSUPPORTED ? WX_UNSUPPORTED : WX_FAILED, msg);
    } else {
        char note[WX_REASON_LEN * 2];
        core_class_note(e, note, sizeof note);
        jit_toggle_note(note, sizeof note);
        emit_row(&e->c, e->core_class, g->repetition, r->iterations, r->ns_per_op, r->cpu_ns_per_op,
                 r->cycles_per_op, r->tlb_per_op, WX_OK, note);
    }
    e->status = WX_OK;
}

/* Whether a retry (g_ctx->only) is to measure e. */
static int wanted(const wx_entry *e)
{
    for (size_t k = 0; k < g_ctx->nonly; k++) {
        const wx_case_key *q = &g_ctx->only[k];
        if (strcmp(q->variant, e->c.variant) == 0 && strcmp(q->core_class, e->core_class) == 0 &&
            q->threads == e->c.threads && q->victims == e->c.victims && q->batch == e->c.batch &&
            q->size_bytes == e->c.size_bytes)
            return 1;
    }
    return 0;
}

/* The reference loop: a fixed chain of dependent integer operations
 * (about 1 ms on a 3 GHz core), the same work in every process, timed at the
 * start and the end of every child so that the host's speed while a process
 * ran can be set beside what it measured (processes.csv). Returns its wall
 * ns. */
static double reference_loop_ns(void)
{
    static volatile uint64_t sink; /* the chain's result is kept, so the loop is not optimized away */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    const uint64_t t0 = wx_now_ns();
    for (unsigned i = 0; i < 400000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        x ^= x >> 29;
    }
    const uint64_t t1 = wx_now_ns();
    sink = x;
    (void)sink;
    return (double)(t1 - t0);
}

/* Time the reference loop and tell the parent. */
static void send_reference(int at_end)
{
    wx_msg m;
    memset(&m, 0, sizeof m);
    m.kind = WX_MSG_REF;
    m.ref_end = at_end;
    m.ref_ns = reference_loop_ns();
    send_msg(&m);
}

/* Google Benchmark's own flags for this child. The JSON output of the run
 * is the parent's (gb.json, merged over every child): --benchmark_format=json
 * and --benchmark_out* are not passed on. Returns 0, or an exit status. */
static int init_gbench(void)
{
    const wx_options *o = g_ctx->o;
    char **argv = calloc((size_t)o->gb_argc + 2, sizeof *argv);
    if (!argv)
        return WX_EXIT_FAILURES;
    int argc = 0;
    argv[argc++] = "wxbench";
    for (int i = 0; i < o->gb_argc; i++) {
        const char *a = o->gb_argv[i];
        if (strcmp(a, "--benchmark_format=json") != 0 && strncmp(a, "--benchmark_out", 15) != 0)
            argv[argc++] = (char *)a;
    }
    char why[WX_REASON_LEN] = "";
    if (wxgb_init(&argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "wxbench: %s\n", why);
        return WX_EXIT_USAGE;
    }
    return 0;
}

int wx_child_main(void *arg, int fd)
{
    g_ctx = arg;
    g_fd = fd;
    const wx_options *o = g_ctx->o;
    const wx_scenario *sc = g_ctx->sc;
    const wx_strategy *st = g_ctx->st;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    wx_jit_thread_reset();

    char why[WX_REASON_LEN] = "";
    (void)wx_pin_thread(0, why, sizeof why); /* recorded in meta.json by the parent; a failure leaves it unpinned */
    /* The spacer: later mappings (code regions) land below it, so their
     * addresses differ from process to process (children are forked, so
     * they share the parent's randomized layout otherwise). Kept for the
     * child's life, never touched. */
    if (g_ctx->layout_pages > 0)
        (void)mmap(NULL, (size_t)g_ctx->layout_pages * (size_t)g_ctx->m->page_size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANON, -1, 0);
    send_reference(0);
    int rc = init_gbench();
    if (rc != 0)
        return rc;

    wx_run run = {
        .strategy = sc->strategy_free ? NULL : st,
        .quick = o->quick,
        .ncpu = wx_cpus_allowed(),
        .page_size = g_ctx->m->page_size,
        .out_dir = g_ctx->dir,
        .min_time = o->min_time,
        .repetitions = o->repetitions,
        .audit = g_ctx->audit,
        .attempt = g_ctx->attempt,
    };
    if (!sc->strategy_free && !wx_strategy_supported(st, why, sizeof why)) {
        for (size_t v = 0; sc->variants[v]; v++) {
            wx_case c = {.variant = sc->variants[v], .threads = 1, .batch = 1};
            emit_row(&c, "any", 1, 0, -1, -1, -1, -1, WX_UNSUPPORTED, why[0] ? why : "not supported here");
        }
        send_reference(1);
        return 0;
    }

    wx_registry_reset(&run);
    sc->register_cases(&run);

    /* Every measured single-thread case once per core class (P and E on
     * Apple silicon; just "any" elsewhere). Copies are appended, so every
     * entry exists before any is registered. */
    const char *classes[4];
    g_nclasses = wx_core_classes(classes, 4);
    if (g_nclasses > 1) {
        size_t n0 = wx_registry_count();
        for (size_t i = 0; i < n0; i++) {
            wx_entry *e = wx_registry_at(i);
            if (e->unsupported || e->c.threads != 1)
                continue;
            e->core_class = classes[0];
            for (int k = 1; k < g_nclasses; k++)
                wx_registry_add_copy(wx_registry_at(i))->core_class = classes[k];
        }
    }

    const size_t n = wx_registry_count();
    reg *regs = calloc(n + 1, sizeof *regs);
    char (*names)[320] = calloc(n + 1, sizeof *names);
    if (!regs || !names)
        return WX_EXIT_FAILURES;
    size_t measured = 0;
    for (size_t i = 0; i < n; i++) {
        wx_entry *e = wx_registry_at(i);
        if (g_ctx->only && !wanted(e))
            continue; /* a retry: this case was measured in an earlier try */
        if (e->unsupported) {
            if (g_ctx->repetition == 1)
                emit_row(&e->c, "any", 1, 0, -1, -1, -1, -1, WX_UNSUPPORTED, e->unsupported);
            continue;
        }
        wxgb_options gopt = {
            .threads = e->c.threads,
            .min_time = e->c.min_time > 0 ? e->c.min_time : o->min_time,
            .iterations = e->c.iterations,
            .manual_time = e->k && (e->k->flags & WX_K_MANUAL_TIME),
        };
        reg *g = &regs[measured++];
        g->entry = i;
        g->repetition = g_ctx->repetition;
        /* Names are the results.csv columns (unique: the case index is in
         * no name, so it stays the same across machines and runs). */
        char *name = names[measured - 1];
        snprintf(name, sizeof names[0], "%s/%s/%s/threads:%d/victims:%d/size:%" PRIu64 "/batch:%d%s%s", sc->name,
                 st->name, e->c.variant, e->c.threads, e->c.victims, e->c.size_bytes, e->c.batch,
                 strcmp(e->core_class, "any") ? "/class:" : "", strcmp(e->core_class, "any") ? e->core_class : "");
        int dup = 0;
        for (size_t k = 0; k + 1 < measured && !dup; k++)
            dup = strcmp(names[k], name) == 0;
        if (dup) {
            /* Two cases with the same columns would be the same rows: a bug in the scenario. */
            emit_row(&e->c, e->core_class, g->repetition, 0, -1, -1, -1, -1, WX_FAILED,
                     "two cases of this scenario have the same results.csv columns: they cannot be told apart");
            measured--;
            continue;
        }
        if (e->native)
            wxgb_register_native_empty(name, g, &gopt, enter_case, leave_case);
        else
            wxgb_register(name, body, g, &gopt);
    }
    if (measured > 0) /* with nothing registered Google Benchmark prints a spurious error */
        wxgb_run(on_result, NULL);
    free(regs);
    free(names);
    send_reference(1);
    return 0;
}
