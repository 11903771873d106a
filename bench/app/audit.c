/* audit.c - what each strategy does, found by trying it (audit.h).
 *
 * The facts first (the probe's line): map a region, write while writable,
 * call while executable and check the value, write through the exec view
 * while executable, call while writable, another thread's write while this
 * one may write, and how many regions can be held at once. Then the six
 * properties: two taken from the facts (the writer runs the code while
 * writable; another thread writes meanwhile), the others from writes at rest
 * through every view, by the writer and by another thread, a call by
 * another thread while the writer holds write access, and a thread started
 * inside a write window.
 *
 * "Another thread" is a thread started while the code was at rest, after
 * the region was mapped: per-thread permission state (PKRU, Apple's JIT
 * state) is inherited from, or reset at, thread creation, so when a thread
 * starts matters; inherited_write_access asks the other case.
 *
 * A strategy with a write_code hook (mapjit_callback) is writable only while
 * its hook copies: the hook takes (offset, source, length) and runs nothing
 * else, so no access of ours can happen while the writer holds write
 * access. The two questions about rest are answered as for every strategy;
 * the four about the window are n/a with that reason. What is checked
 * inside the window is that a write through the hook lands and runs.
 *
 * An access that may meet an execute fault (a call while the writer holds
 * write access, by the writer or by another thread) is made in a child
 * process forked for it, so that even a SIGKILL is an answer. Where the
 * code-signing monitor is on (bench/core/platform_macos.c: an execute fault
 * it cannot resolve kills the process with SIGKILL) the writer's call is
 * not tried, as Apple's own test does, and the answer says so; so is
 * another thread's call where the switch is process-wide (mprotect), while
 * where it is per thread or absent that thread's view stays executable by
 * design and its call is made (in a child process still). */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "audit.h"
#include "csv.h"
#include "../core/proc.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const wx_audit_property_names[WX_AUDIT_NPROPS] = {
    "writable_at_rest",
    "permanent_writable_alias",
    "writer_can_execute_while_writable",
    "other_thread_can_write_while_writable",
    "other_thread_can_execute_while_writable",
    "new_thread_inherits_write_access",
};

const char wx_audit_csv_header[] = "strategy,property,result,evidence\n";

const char *wx_audit_result_name(int result)
{
    return result > 0 ? "yes" : result == 0 ? "no" : "n/a";
}

static void set(wx_audit *a, int prop, int result, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void set(wx_audit *a, int prop, int result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->evidence[prop], sizeof a->evidence[prop], fmt, ap);
    va_end(ap);
    a->result[prop] = result;
}

void wx_audit_all_na(wx_audit *a, const char *evidence)
{
    for (int i = 0; i < WX_AUDIT_NPROPS; i++)
        set(a, i, -1, "%s", evidence);
}

/* ------------------------------------------------------------------------
 * Accesses, each under wx_try
 * --------------------------------------------------------------------- */

/* What a fault-catching probe_access acts on. */
typedef struct probe_access {
    void *addr;       /* where to write, call or read */
    uint32_t value;   /* value to write */
    uint32_t got;     /* value a call or read gave */
} probe_access;

static void do_write(void *arg)
{
    probe_access *x = arg;
    wx_emit_stub(x->addr, wx_stub_size(), x->value);
}

static void do_call(void *arg)
{
    probe_access *x = arg;
    x->got = wx_stub_at(x->addr)();
}

static void do_read(void *arg)
{
    probe_access *x = arg;
    x->got = wx_stub_value(x->addr, wx_stub_size());
}

/* A thread that performs accesses when told, so that the same thread can be
 * asked several things at different moments. */
enum { CMD_NONE, CMD_WRITE, CMD_CALL, CMD_CALL_IN_CHILD, CMD_QUIT };

typedef struct helper {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int cmd;          /* CMD_*; back to CMD_NONE when done */
    probe_access x;         /* the probe_access and its result */
    int sig;          /* signal that stopped it, 0 = it completed, -1 = no answer (CMD_CALL_IN_CHILD) */
    char how[WX_REASON_LEN]; /* CMD_CALL_IN_CHILD: how the child process ended ... */
    int killed;       /* ... 1: it was killed by sig (nothing caught the fault) */
    int running;      /* the thread exists */
} helper;

static void *helper_main(void *arg)
{
    helper *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (h->cmd == CMD_NONE)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->cmd == CMD_QUIT)
            break;
        probe_access x = h->x;
        int cmd = h->cmd;
        pthread_mutex_unlock(&h->lock);
        int sig, killed = 0;
        char how[WX_REASON_LEN] = "";
        if (cmd == CMD_CALL_IN_CHILD) {
            /* forked from this thread: the child runs the call as this thread would */
            wx_child_try t;
            sig = wx_try_in_child(do_call, &x, sizeof x, WX_AUDIT_CHILD_MS, &t);
            killed = t.killed;
            snprintf(how, sizeof how, "%s", t.why);
        } else {
            sig = wx_try(cmd == CMD_WRITE ? do_write : do_call, &x);
        }
        pthread_mutex_lock(&h->lock);
        h->x = x;
        h->sig = sig;
        h->killed = killed;
        snprintf(h->how, sizeof h->how, "%s", how);
        h->cmd = CMD_NONE;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static int helper_start(helper *h, char *why, size_t len)
{
    memset(h, 0, sizeof *h);
    int e;
    if ((e = pthread_mutex_init(&h->lock, NULL)) != 0)
        return wx_why_errno(why, len, "pthread_mutex_init", e);
    if ((e = pthread_cond_init(&h->cond, NULL)) != 0) {
        pthread_mutex_destroy(&h->lock);
        return wx_why_errno(why, len, "pthread_cond_init", e);
    }
    if ((e = pthread_create(&h->thread, NULL, helper_main, h)) != 0) {
        pthread_cond_destroy(&h->cond);
        pthread_mutex_destroy(&h->lock);
        return wx_why_errno(why, len, "pthread_create", e);
    }
    h->running = 1;
    return 0;
}

/* Ask the helper for one access; returns the signal (0 = completed; -1 =
 * no answer from a CMD_CALL_IN_CHILD child). how (may be NULL) gets how a
 * CMD_CALL_IN_CHILD child ended. */
static int helper_do_how(helper *h, int cmd, void *addr, uint32_t value, uint32_t *got, int *killed, char *how,
                         size_t len)
{
    pthread_mutex_lock(&h->lock);
    h->x.addr = addr;
    h->x.value = value;
    h->x.got = 0;
    h->cmd = cmd;
    pthread_cond_broadcast(&h->cond);
    while (h->cmd != CMD_NONE)
        pthread_cond_wait(&h->cond, &h->lock);
    int sig = h->sig;
    if (got)
        *got = h->x.got;
    if (how && len)
        snprintf(how, len, "%s", h->how);
    if (killed)
        *killed = h->killed;
    pthread_mutex_unlock(&h->lock);
    return sig;
}

static int helper_do(helper *h, int cmd, void *addr, uint32_t value, uint32_t *got)
{
    return helper_do_how(h, cmd, addr, value, got, NULL, NULL, 0);
}

static void helper_stop(helper *h)
{
    if (!h->running)
        return;
    pthread_mutex_lock(&h->lock);
    h->cmd = CMD_QUIT;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    h->running = 0;
}

/* Did a write of value at addr land? Read back by the calling thread
 * through a view it may read (both views are readable in every strategy). */
static int landed(void *addr, uint32_t value)
{
    probe_access r = {.addr = addr};
    return wx_try(do_read, &r) == 0 && r.got == value;
}

/* Describe the outcome of a write: "no fault" or the signal. */
static const char *outcome(int sig, char *buf, size_t len)
{
    if (sig == 0)
        return "no fault";
    snprintf(buf, len, "%s", wx_signal_name(sig));
    return buf;
}

/* ------------------------------------------------------------------------
 * Accesses that may meet an execute fault
 * --------------------------------------------------------------------- */

/* 1 with why[] ("not tried, because ...") where such an access must not be
 * made: the code-signing monitor is on, and an execute fault it cannot
 * resolve kills the whole process with SIGKILL. 0 where it is made, in a
 * child process. */
static int exec_fault_not_tried(char *why, size_t len, const char *what)
{
    char csm[WX_REASON_LEN];
    if (wx_code_signing_monitor(csm, sizeof csm) != 1)
        return 0;
    snprintf(why, len, "not tried, because the code-signing monitor is on (%.120s): %s that faulted would kill the "
             "whole process with SIGKILL instead of raising a signal that can be caught", csm, what);
    return 1;
}

/* The writer's call while it holds write access, in a child process. */
typedef struct exec_try {
    const wx_strategy *s;
    wx_region r;
    int begin_err;    /* what begin_write returned there */
    uint32_t got;     /* what the call returned */
} exec_try;

static void exec_while_writable_child(void *arg)
{
    exec_try *x = arg;
    x->begin_err = x->s->begin_write(&x->r);
    if (x->begin_err != 0)
        return;
    wx_emit_stub(x->r.write, wx_stub_size(), 0x1234567u);
    x->got = wx_stub_at(x->r.exec)();
}

/* Fact 4: does a call through the exec view fault while the calling thread
 * holds write access? */
static void exec_while_writable(const wx_strategy *s, const wx_region *r, wx_audit *p)
{
    p->exec_writable_sig = -1;
    p->exec_writable_killed = 0;
    if (exec_fault_not_tried(p->exec_writable_why, sizeof p->exec_writable_why,
                             "a call through the exec view while this thread holds write access"))
        return;
    exec_try x = {.s = s, .r = *r, .begin_err = 0, .got = 0};
    wx_child_try t;
    int sig = wx_try_in_child(exec_while_writable_child, &x, sizeof x, WX_AUDIT_CHILD_MS, &t);
    if (sig < 0) {
        snprintf(p->exec_writable_why, sizeof p->exec_writable_why, "no answer: %.200s", t.why);
    } else if (sig == 0 && x.begin_err != 0) {
        wx_why_errno(p->exec_writable_why, sizeof p->exec_writable_why, "begin_write (in the child process)",
                     x.begin_err);
    } else {
        p->exec_writable_sig = sig;
        p->exec_writable_killed = t.killed;
        snprintf(p->exec_writable_why, sizeof p->exec_writable_why, "%s", t.why);
    }
}

/* ------------------------------------------------------------------------
 * The audit
 * --------------------------------------------------------------------- */

#define V_PREPARED 0x0A0D1700u  /* the stub the region starts with */
#define V_REST 0x0A0D1701u      /* written at rest through the exec view */
#define V_ALIAS 0x0A0D1702u     /* written at rest through the write view */
#define V_OTHER 0x0A0D1703u     /* written at rest by another thread */
#define V_WINDOW 0x0A0D1704u    /* written by the writer inside its window */
#define V_INHERIT 0x0A0D1705u   /* written after the window by a thread started inside it */

/* A write through the strategy's write_code hook (mapjit_callback). */
typedef struct hook_ctx {
    const wx_strategy *s;
    wx_region *r;
    uint32_t value;
    int err;          /* what write_code returned */
} hook_ctx;

static void do_write_code(void *arg)
{
    hook_ctx *h = arg;
    unsigned char stub[64];
    wx_emit_stub(stub, wx_stub_size(), h->value);
    h->err = h->s->write_code(h->r, 0, stub, wx_stub_size());
}

/* Append "; what" to the probe's note (several steps may report). */
static void add_note(wx_audit *p, const char *what)
{
    size_t n = strlen(p->why);
    snprintf(p->why + n, sizeof p->why - n, "%s%s", n ? "; " : "", what);
}

/* After a fault caught while a region was writable: a signal handler left
 * by siglongjmp may leave per-thread JIT state changed. */
static int after_fault(int sig)
{
    if (sig)
        wx_jit_thread_reset();
    return sig;
}

/* How many regions of one page the strategy can map at once. */
static void count_regions(const wx_strategy *s, wx_audit *p, size_t page)
{
    static wx_region held[WX_AUDIT_REGIONS];
    int n = 0;
    p->regions_why[0] = 0;
    while (n < WX_AUDIT_REGIONS) {
        memset(&held[n], 0, sizeof held[n]);
        if (s->map(&held[n], page, p->regions_why, sizeof p->regions_why) != 0)
            break;
        n++;
    }
    p->regions = n;
    while (n-- > 0)
        s->unmap(&held[n]);
}

/* The probe of a strategy writable only inside write_code. */
static void probe_write_hook(const wx_strategy *s, wx_audit *p, wx_region *r)
{
    hook_ctx h = {.s = s, .r = r, .value = 0x1234567u, .err = 0};
    p->write_sig = after_fault(wx_try(do_write_code, &h));
    if (p->write_sig == 0 && h.err != 0) {
        char e[WX_REASON_LEN];
        wx_why_errno(e, sizeof e, "write_code", h.err);
        add_note(p, e);
        p->write_sig = -1;
        return;
    }
    /* Another thread's write and a call while writable would have to run
     * inside the writer callback, which must not be left by longjmp. */
    add_note(p, "writable only inside write_code (pthread_jit_write_with_callback_np): exec-while-writable and "
                "another thread's write are not tried");
    h.value = 0x2468aceu;
    h.err = 0;
    int sig = after_fault(wx_try(do_write_code, &h));
    if (sig != 0 || h.err != 0) {
        char e[WX_REASON_LEN];
        if (sig != 0)
            snprintf(e, sizeof e, "the second write_code died of %s", wx_signal_name(sig));
        else
            wx_why_errno(e, sizeof e, "the second write_code", h.err);
        add_note(p, e);
        return;
    }
    wx_icache_flush(r->write, r->exec, wx_stub_size());
    probe_access run = {.addr = r->exec};
    p->run_sig = after_fault(wx_try(do_call, &run));
    p->run_value_ok = p->run_sig == 0 ? run.got == 0x2468aceu : -1;
    probe_access w = {.addr = r->exec, .value = 0x1111u};
    p->write_exec_sig = after_fault(wx_try(do_write, &w));
}

/* Another thread, started before this one asks for write access, that
 * tries a write when told to (per-thread permission state is inherited at
 * thread creation on some systems, so it must exist beforehand). */
typedef struct other_ctx {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int go;           /* set by the writer thread: try now */
    void *addr;
    int sig;          /* result: signal, 0 = the write succeeded */
} other_ctx;

static void *other_writer(void *arg)
{
    other_ctx *o = arg;
    pthread_mutex_lock(&o->lock);
    while (!o->go)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
    probe_access c = {.addr = o->addr, .value = 0x0DD0u};
    wx_jit_thread_reset();
    o->sig = after_fault(wx_try(do_write, &c));
    return NULL;
}

/* Tell the other thread to try its write now, and wait for it. */
static void other_go_and_join(other_ctx *o, pthread_t t)
{
    pthread_mutex_lock(&o->lock);
    o->go = 1;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
    pthread_join(t, NULL);
}

/* What the system enforces for a MAP_JIT strategy here: the per-thread
 * toggle (where it is not enforced, nothing this strategy does is W^X), and
 * for one writable only inside write_code, the JIT write allow-list. */
static void platform_note(const wx_strategy *s, wx_audit *p)
{
    p->platform_note[0] = 0;
    if (!(s->flags & WX_JIT_TOGGLE))
        return;
    char why[WX_REASON_LEN];
    size_t n = 0;
    if (wx_jit_toggle_enforced(why, sizeof why) == 0)
        n += (size_t)snprintf(p->platform_note, sizeof p->platform_note, "%s", why);
    if (s->write_code && n < sizeof p->platform_note) {
        wx_jit_allowlist_enforced(why, sizeof why);
        snprintf(p->platform_note + n, sizeof p->platform_note - n, "%sJIT write allow-list: %s", n ? "; " : "", why);
    }
}

static void facts(const wx_strategy *s, wx_audit *p)
{
    p->write_sig = p->run_sig = p->write_exec_sig = p->exec_writable_sig = p->other_write_sig = -1;
    p->run_value_ok = -1;
    p->regions = -1;
    wx_jit_thread_reset();
    p->supported = wx_strategy_supported(s, p->why, sizeof p->why);
    if (!p->supported)
        return;
    platform_note(s, p);
    wx_region r;
    memset(&r, 0, sizeof r);
    long page = sysconf(_SC_PAGESIZE);
    int e = s->map(&r, (size_t)page, p->why, sizeof p->why);
    if (e != 0)
        return;
    p->maps = 1;
    p->alias = r.write != r.exec;
    if (s->write_code) {
        probe_write_hook(s, p, &r);
        s->unmap(&r);
        count_regions(s, p, (size_t)page);
        return;
    }

    other_ctx o;
    memset(&o, 0, sizeof o);
    pthread_mutex_init(&o.lock, NULL);
    pthread_cond_init(&o.cond, NULL);
    o.addr = r.write;
    o.sig = -1;
    pthread_t t;
    int have_other = pthread_create(&t, NULL, other_writer, &o) == 0;

    /* 1. writes when writable */
    probe_access c = {.addr = r.write, .value = 0x1234567u};
    if ((e = s->begin_write(&r)) != 0) {
        wx_why_errno(p->why, sizeof p->why, "begin_write", e);
        if (have_other)
            other_go_and_join(&o, t);
        s->unmap(&r);
        return;
    }
    p->write_sig = after_fault(wx_try(do_write, &c));

    /* 5. another thread writes while this one may */
    if (have_other) {
        other_go_and_join(&o, t);
        p->other_write_sig = o.sig;
    }

    /* 4. exec faults when writable: in a child process, or not tried where
     * the code-signing monitor is on (see the top of this file) */
    if ((e = s->end_write(&r)) != 0) {
        wx_why_errno(p->why, sizeof p->why, "end_write (before the exec-while-writable check)", e);
        s->unmap(&r);
        return;
    }
    exec_while_writable(s, &r, p);

    /* 2. runs when executable, returning what was written */
    if ((e = s->begin_write(&r)) != 0) {
        wx_why_errno(p->why, sizeof p->why, "begin_write (before the run check)", e);
        s->unmap(&r);
        return;
    }
    wx_emit_stub(r.write, wx_stub_size(), 0x2468aceu);
    if ((e = s->end_write(&r)) != 0) {
        wx_why_errno(p->why, sizeof p->why, "end_write", e);
        s->unmap(&r);
        return;
    }
    wx_icache_flush(r.write, r.exec, wx_stub_size());
    probe_access run = {.addr = r.exec};
    p->run_sig = after_fault(wx_try(do_call, &run));
    p->run_value_ok = p->run_sig == 0 ? run.got == 0x2468aceu : -1;

    /* 3. a write through the executable view faults while executable */
    if ((e = s->end_write(&r)) != 0) {
        char note[WX_REASON_LEN];
        wx_why_errno(note, sizeof note, "end_write (redundant, before the write-while-executable check)", e);
        add_note(p, note);
    }
    probe_access w = {.addr = r.exec, .value = 0x1111u};
    p->write_exec_sig = after_fault(wx_try(do_write, &w));
    s->end_write(&r);
    s->unmap(&r);
    count_regions(s, p, (size_t)page);
}

/* The properties the facts answer (writer runs while writable, another
 * thread writes while the writer may). Returns 0 when the strategy gives
 * write access at all, else -1 with every answer n/a. */
static int from_facts(wx_audit *a)
{
    const wx_audit p = *a;
    if (!p.maps) {
        char ev[WX_REASON_LEN];
        snprintf(ev, sizeof ev, "map failed: %.200s", p.why);
        wx_audit_all_na(a, ev);
        return -1;
    }
    if (p.write_sig != 0) {
        char ev[WX_REASON_LEN];
        if (p.write_sig > 0)
            snprintf(ev, sizeof ev, "begin_write did not give write access: %s on a write", wx_signal_name(p.write_sig));
        else
            snprintf(ev, sizeof ev, "begin_write failed: %.200s", p.why);
        wx_audit_all_na(a, ev);
        return -1;
    }
    int w = WX_AUDIT_WRITER_EXECUTES;
    if (p.exec_writable_sig == 0)
        set(a, w, 1, "call through the exec view while this thread held write access (in a child process): no "
                     "fault, the code ran");
    else if (p.exec_writable_sig > 0 && p.exec_writable_killed)
        set(a, w, 0, "%s on a call through the exec view while this thread held write access: the child process "
                     "making it was killed (nothing could catch the fault)", wx_signal_name(p.exec_writable_sig));
    else if (p.exec_writable_sig > 0)
        set(a, w, 0, "%s on a call through the exec view while this thread held write access (in a child process)",
            wx_signal_name(p.exec_writable_sig));
    else if (strncmp(p.exec_writable_why, "not tried", 9) == 0)
        set(a, w, -1, "%s", p.exec_writable_why);
    else if (p.exec_writable_why[0])
        set(a, w, -1, "not determined: %s", p.exec_writable_why);
    else
        set(a, w, -1, "not tried: %.200s", p.why[0] ? p.why : "the probe stopped before this check");

    int o = WX_AUDIT_OTHER_WRITES;
    if (p.other_write_sig == 0)
        set(a, o, 1, "another thread's write through the write view while the writer held write access: no fault");
    else if (p.other_write_sig > 0)
        set(a, o, 0, "%s on another thread's write through the write view while the writer held write access",
            wx_signal_name(p.other_write_sig));
    else
        set(a, o, -1, "not tried: %.200s", p.why[0] ? p.why : "no second thread could be started");
    return 0;
}

/* Writes at rest (nobody asked for write access): by this thread and by h,
 * through the exec view and, where there is one, the write view. */
static void at_rest(const wx_strategy *s, wx_region *r, helper *h, wx_audit *a)
{
    const int alias = r->write != r->exec;
    char b1[32], b2[32], b3[32], b4[32];

    probe_access x = {.addr = r->exec, .value = V_REST};
    int sig_exec = wx_try(do_write, &x);
    s->end_write(r); /* a signal handler may leave per-thread state changed */
    int ok_exec = sig_exec == 0 && landed(r->exec, V_REST);

    int sig_alias = -1, ok_alias = 0, alias_runs = 0;
    uint32_t alias_got = 0;
    if (alias) {
        probe_access y = {.addr = r->write, .value = V_ALIAS};
        sig_alias = wx_try(do_write, &y);
        s->end_write(r);
        ok_alias = sig_alias == 0 && landed(r->exec, V_ALIAS);
        if (ok_alias) {
            wx_icache_flush(r->write, r->exec, wx_stub_size());
            probe_access c = {.addr = r->exec};
            alias_runs = wx_try(do_call, &c) == 0 && c.got == V_ALIAS;
            alias_got = c.got;
            s->end_write(r);
        }
    }

    int sig_h_exec = h ? helper_do(h, CMD_WRITE, r->exec, V_OTHER, NULL) : -1;
    int ok_h_exec = sig_h_exec == 0 && landed(r->exec, V_OTHER);
    s->end_write(r);
    int sig_h_alias = -1, ok_h_alias = 0;
    if (h && alias) {
        sig_h_alias = helper_do(h, CMD_WRITE, r->write, V_OTHER + 16, NULL);
        ok_h_alias = sig_h_alias == 0 && landed(r->exec, V_OTHER + 16);
        s->end_write(r);
    }

    int p = WX_AUDIT_WRITABLE_AT_REST;
    if (ok_exec)
        set(a, p, 1, "write through the exec view at rest by the writing thread: no fault, and it landed");
    else if (ok_alias)
        set(a, p, 1, "write through the write view (a second mapping) at rest: no fault, and it landed");
    else if (ok_h_exec)
        set(a, p, 1, "write through the exec view at rest by another thread: no fault, and it landed");
    else if (ok_h_alias)
        set(a, p, 1, "write through the write view at rest by another thread: no fault, and it landed");
    else if (!h)
        set(a, p, -1, "no second thread could be started; the writing thread's write at rest: %s",
            outcome(sig_exec, b1, sizeof b1));
    else if (alias)
        set(a, p, 0, "writes at rest: exec view %s (writer), %s (another thread); write view %s (writer), %s (another thread)",
            outcome(sig_exec, b1, sizeof b1), outcome(sig_h_exec, b2, sizeof b2),
            outcome(sig_alias, b3, sizeof b3), outcome(sig_h_alias, b4, sizeof b4));
    else
        set(a, p, 0, "%s on a write through the exec view at rest by the writing thread, %s by another thread",
            outcome(sig_exec, b1, sizeof b1), outcome(sig_h_exec, b2, sizeof b2));
    if (a->result[p] == 0 && ((sig_exec == 0 && !ok_exec) || (sig_h_exec == 0 && !ok_h_exec)))
        set(a, p, 0, "writes at rest did not fault but did not land either (read back unchanged)");
    char toggle[WX_REASON_LEN];
    if (a->result[p] == 1 && (s->flags & WX_JIT_TOGGLE) && wx_jit_toggle_enforced(toggle, sizeof toggle) == 0) {
        size_t n = strlen(a->evidence[p]);
        snprintf(a->evidence[p] + n, sizeof a->evidence[p] - n, "; %.200s", toggle);
    }

    int q = WX_AUDIT_PERMANENT_ALIAS;
    if (!alias)
        set(a, q, 0, "one view: code is written and run at the same address, no second mapping");
    else if (ok_alias && alias_runs)
        set(a, q, 1, "write through the write view at rest: no fault; the exec view reads it back and ran it");
    else if (ok_alias)
        set(a, q, 1, "write through the write view at rest: no fault; the exec view reads it back (but still ran "
                     "the old code, returning %#x)", alias_got);
    else if (sig_alias == 0)
        set(a, q, 0, "a second view takes writes at rest, but they do not appear in the exec view");
    else
        set(a, q, 0, "a second view exists but %s on a write through it at rest", outcome(sig_alias, b1, sizeof b1));
}

/* Inside a write window: another thread's call, and a thread started there
 * that tries to write after the window closed. */
static void in_window(const wx_strategy *s, wx_region *r, helper *h, wx_audit *a)
{
    char b1[32], b2[32];
    int e = s->begin_write(r);
    if (e != 0) {
        set(a, WX_AUDIT_OTHER_EXECUTES, -1, "begin_write failed: %s", strerror(e));
        set(a, WX_AUDIT_INHERITED_WRITE, -1, "begin_write failed: %s", strerror(e));
        return;
    }
    probe_access w = {.addr = r->write, .value = V_WINDOW};
    int sig = wx_try(do_write, &w);
    if (sig != 0) {
        s->end_write(r);
        set(a, WX_AUDIT_OTHER_EXECUTES, -1, "begin_write did not give write access: %s on a write", wx_signal_name(sig));
        set(a, WX_AUDIT_INHERITED_WRITE, -1, "begin_write did not give write access: %s on a write",
            wx_signal_name(sig));
        return;
    }
    wx_icache_flush(r->write, r->exec, wx_stub_size());

    int p = WX_AUDIT_OTHER_EXECUTES;
    char not_tried[WX_AUDIT_EVIDENCE_LEN];
    if (!h) {
        set(a, p, -1, "no second thread could be started");
    } else if (!(s->flags & (WX_PER_THREAD | WX_NO_SWITCH)) &&
               exec_fault_not_tried(not_tried, sizeof not_tried, "another thread's call through the exec view while "
                                                                 "the writer holds a process-wide write access")) {
        /* (where the switch is per thread or there is none, the other
         * thread's view stays executable by design: its call is made) */
        set(a, p, -1, "%s", not_tried);
    } else {
        /* made by a child process forked from the other thread: it runs as that thread would */
        uint32_t got = 0;
        int killed = 0;
        char how[WX_REASON_LEN] = "";
        int hs = helper_do_how(h, CMD_CALL_IN_CHILD, r->exec, 0, &got, &killed, how, sizeof how);
        if (hs == 0)
            set(a, p, 1, "another thread's call through the exec view while the writer held write access (in a child "
                         "process forked from it): no fault, it ran (returned %#x%s)", got,
                got == V_WINDOW ? ", the code just written" : "");
        else if (hs > 0)
            set(a, p, 0, "%s on another thread's call through the exec view while the writer held write access (in a "
                         "child process forked from it%s)", wx_signal_name(hs),
                killed ? ", which was killed: nothing could catch the fault" : "");
        else
            set(a, p, -1, "not determined: another thread's call in a child process gave no answer: %s", how);
    }

    /* A thread started now, while this one holds write access. */
    helper n;
    char why[WX_REASON_LEN] = "";
    int have_n = helper_start(&n, why, sizeof why) == 0;
    e = s->end_write(r);
    int q = WX_AUDIT_INHERITED_WRITE;
    if (e != 0) {
        set(a, q, -1, "end_write failed: %s", strerror(e));
    } else if (!have_n) {
        set(a, q, -1, "no thread could be started inside the window: %.200s", why);
    } else {
        int s1 = helper_do(&n, CMD_WRITE, r->write, V_INHERIT, NULL);
        int l1 = s1 == 0 && landed(r->exec, V_INHERIT);
        s->end_write(r);
        int s2 = -1, l2 = 0;
        if (r->write != r->exec) {
            s2 = helper_do(&n, CMD_WRITE, r->exec, V_INHERIT + 16, NULL);
            l2 = s2 == 0 && landed(r->exec, V_INHERIT + 16);
            s->end_write(r);
        }
        if (l1)
            set(a, q, 1, "a thread started while the writer held write access wrote through the write view after "
                         "the window closed: no fault%s",
                a->result[WX_AUDIT_WRITABLE_AT_REST] == 1 ? " (as any thread can at rest)" : "");
        else if (l2)
            set(a, q, 1, "a thread started while the writer held write access wrote through the exec view after the "
                         "window closed: no fault");
        else if (r->write != r->exec)
            set(a, q, 0, "a thread started while the writer held write access, after the window closed: write view %s, "
                         "exec view %s", outcome(s1, b1, sizeof b1), outcome(s2, b2, sizeof b2));
        else
            set(a, q, 0, "%s on a write by a thread started while the writer held write access, after the window closed",
                outcome(s1, b1, sizeof b1));
    }
    if (have_n)
        helper_stop(&n);
    s->end_write(r);
}

/* The window of a strategy writable only inside write_code: a write through
 * the hook must land and run; the questions that need an access while the
 * writer holds write access cannot be asked (see the top of this file). */
static void hook_window(const wx_strategy *s, wx_region *r, wx_audit *a)
{
    static const int props[] = {WX_AUDIT_WRITER_EXECUTES, WX_AUDIT_OTHER_WRITES, WX_AUDIT_OTHER_EXECUTES,
                                WX_AUDIT_INHERITED_WRITE};
    unsigned char stub[64];
    wx_emit_stub(stub, wx_stub_size(), V_WINDOW);
    int e = wx_write_code(s, r, 0, stub, wx_stub_size());
    if (e != 0) {
        for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
            set(a, props[i], -1, "write_code failed: %s (errno %d)", strerror(e), e);
        return;
    }
    wx_icache_flush(r->write, r->exec, wx_stub_size());
    probe_access c = {.addr = r->exec};
    int sig = wx_try(do_call, &c);
    if (sig != 0 || c.got != V_WINDOW) {
        char b1[32];
        for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
            set(a, props[i], -1, "a stub written through write_code did not run after it: %s, returned %#x, expected %#x",
                outcome(sig, b1, sizeof b1), c.got, V_WINDOW);
        return;
    }
    char only[400];
    size_t n = (size_t)snprintf(only, sizeof only, "writable only inside write_code, which runs nothing but the "
                                "strategy's copy (a write through it landed and ran)");
    if ((s->flags & WX_JIT_TOGGLE) && n < sizeof only) {
        char why[WX_REASON_LEN];
        wx_jit_allowlist_enforced(why, sizeof why);
        snprintf(only + n, sizeof only - n, "; JIT write allow-list %.250s", why);
    }
    set(a, WX_AUDIT_WRITER_EXECUTES, -1, "not determinable: %s; no call can be made while this thread holds write "
        "access", only);
    set(a, WX_AUDIT_OTHER_WRITES, -1, "not determinable: %s; another thread's write cannot be placed inside the "
        "window", only);
    set(a, WX_AUDIT_OTHER_EXECUTES, -1, "not determinable: %s; another thread's call cannot be placed inside the "
        "window", only);
    set(a, WX_AUDIT_INHERITED_WRITE, -1, "not determinable: %s; no thread can be started inside the window", only);
}

void wx_audit_strategy(const wx_strategy *s, wx_audit *a)
{
    memset(a, 0, sizeof *a);
    wx_audit_all_na(a, "not tried");
    facts(s, a);
    char why[WX_REASON_LEN] = "";
    if (!a->supported) {
        char ev[WX_REASON_LEN];
        snprintf(ev, sizeof ev, "unsupported here: %.230s", a->why[0] ? a->why : "no reason given");
        wx_audit_all_na(a, ev);
        a->complete = 1;
        return;
    }
    if (from_facts(a) != 0) {
        a->complete = 1;
        return;
    }

    wx_region r;
    long page = sysconf(_SC_PAGESIZE);
    if (wx_region_prepare(s, &r, (size_t)(page > 0 ? page : 4096), V_PREPARED, why, sizeof why) != 0) {
        char ev[WX_REASON_LEN];
        snprintf(ev, sizeof ev, "region setup failed: %.220s", why);
        for (int i = 0; i < WX_AUDIT_NPROPS; i++)
            if (i != WX_AUDIT_WRITER_EXECUTES && i != WX_AUDIT_OTHER_WRITES)
                set(a, i, -1, "%s", ev);
        a->complete = 1;
        return;
    }
    helper h;
    int have_h = helper_start(&h, why, sizeof why) == 0;
    at_rest(s, &r, have_h ? &h : NULL, a);
    if (s->write_code)
        hook_window(s, &r, a);
    else
        in_window(s, &r, have_h ? &h : NULL, a);
    if (have_h)
        helper_stop(&h);
    s->end_write(&r);
    s->unmap(&r);
    a->complete = 1;
}

/* ------------------------------------------------------------------------
 * In a child process
 * --------------------------------------------------------------------- */

static int audit_child(void *arg, int fd)
{
    const wx_strategy *s = arg;
    wx_audit *mine = malloc(sizeof *mine);
    if (!mine)
        return 3;
    wx_audit_strategy(s, mine);
    return wx_write_all(fd, mine, sizeof *mine) == 0 ? 0 : 4;
}

void wx_audit_isolated(const wx_strategy *s, wx_audit *a, int timeout_s, wx_proc_end *how)
{
    wx_audit *got = malloc(sizeof *got);
    wx_proc_end end = {.how = WX_PROC_LOST, .why = "out of memory"};
    size_t n = got ? wx_proc_call(audit_child, (void *)s, got, sizeof *got, timeout_s * 1000, &end) : 0;
    if (how)
        *how = end;
    if (got && n == sizeof *got && end.how == WX_PROC_EXITED && end.code == 0) {
        *a = *got;
    } else {
        char ev[WX_REASON_LEN];
        memset(a, 0, sizeof *a);
        a->write_sig = a->run_sig = a->write_exec_sig = a->exec_writable_sig = a->other_write_sig = -1;
        a->run_value_ok = a->regions = -1;
        if (!got)
            snprintf(ev, sizeof ev, "audit not run: out of memory");
        else if (end.how == WX_PROC_SIGNALED)
            snprintf(ev, sizeof ev, "the audit child was %.200s before it finished", end.why);
        else if (end.how == WX_PROC_TIMED_OUT)
            snprintf(ev, sizeof ev, "the audit child %.200s", end.why);
        else if (end.how == WX_PROC_EXITED)
            snprintf(ev, sizeof ev, "the audit child %.200s before it finished", end.why);
        else
            snprintf(ev, sizeof ev, "audit not run: %.200s", end.why);
        snprintf(a->why, sizeof a->why, "%s", ev);
        snprintf(a->failure, sizeof a->failure, "%s", ev);
        a->supported = 1;
        wx_audit_all_na(a, ev);
        a->complete = 0;
    }
    free(got);
}

int wx_audit_write_csv(const char *dir, const char *strategy, const wx_audit *a, char *why, size_t len)
{
    for (int i = 0; i < WX_AUDIT_NPROPS; i++) {
        const char *fields[] = {strategy, wx_audit_property_names[i], wx_audit_result_name(a->result[i]),
                                a->evidence[i][0] ? a->evidence[i] : "none recorded"};
        char *line = wx_csv_line(fields, 4);
        if (!line)
            return wx_why_errno(why, len, "audit.csv row", ENOMEM);
        int e = wx_side_csv_append(dir, "audit.csv", wx_audit_csv_header, line, why, len);
        free(line);
        if (e != 0)
            return e;
    }
    return 0;
}
