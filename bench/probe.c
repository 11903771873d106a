/* probe.c - what works here, per strategy: maps? writes when writable? runs
 * when executable? write faults when executable? exec faults when writable?
 * another thread still protected while this one writes? Each strategy is
 * probed in its own child process, with faults caught. */
#define _GNU_SOURCE 1
#include "runner.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the fault-catching helpers act on. */
typedef struct probe_ctx {
    void *addr;       /* where to write or call */
    uint32_t value;   /* value to write / expected back */
    uint32_t got;     /* value a call returned */
} probe_ctx;

static void do_write(void *arg)
{
    probe_ctx *c = arg;
    wx_emit_stub(c->addr, wx_stub_size(), c->value);
}

static void do_call(void *arg)
{
    probe_ctx *c = arg;
    c->got = wx_stub_at(c->addr)();
}

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
static void add_note(wx_probe *p, const char *what)
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
static void count_regions(const wx_strategy *s, wx_probe *p, size_t page)
{
    static wx_region held[WX_PROBE_REGIONS];
    int n = 0;
    p->regions_why[0] = 0;
    while (n < WX_PROBE_REGIONS) {
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
static void probe_write_hook(const wx_strategy *s, wx_probe *p, wx_region *r)
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
    probe_ctx run = {.addr = r->exec};
    p->run_sig = after_fault(wx_try(do_call, &run));
    p->run_value_ok = p->run_sig == 0 ? run.got == 0x2468aceu : -1;
    probe_ctx w = {.addr = r->exec, .value = 0x1111u};
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
    probe_ctx c = {.addr = o->addr, .value = 0x0DD0u};
    wx_jit_thread_reset();
    o->sig = after_fault(wx_try(do_write, &c));
    return NULL;
}

void wx_probe_strategy(const wx_strategy *s, wx_probe *p)
{
    memset(p, 0, sizeof *p);
    p->write_sig = p->run_sig = p->write_exec_sig = p->exec_writable_sig = p->other_write_sig = -1;
    p->run_value_ok = -1;
    p->regions = -1;
    wx_jit_thread_reset();
    p->supported = s->supported(p->why, sizeof p->why);
    if (!p->supported)
        return;
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
    probe_ctx c = {.addr = r.write, .value = 0x1234567u};
    if ((e = s->begin_write(&r)) != 0) {
        wx_why_errno(p->why, sizeof p->why, "begin_write", e);
        if (have_other) {
            pthread_mutex_lock(&o.lock);
            o.go = 1;
            pthread_cond_signal(&o.cond);
            pthread_mutex_unlock(&o.lock);
            pthread_join(t, NULL);
        }
        s->unmap(&r);
        return;
    }
    p->write_sig = after_fault(wx_try(do_write, &c));

    /* 5. another thread writes while this one may */
    if (have_other) {
        pthread_mutex_lock(&o.lock);
        o.go = 1;
        pthread_cond_signal(&o.cond);
        pthread_mutex_unlock(&o.lock);
        pthread_join(t, NULL);
        p->other_write_sig = o.sig;
    }

    /* 4. exec faults when writable (write state restored after a fault, as
     * a signal handler may leave per-thread permission registers changed) */
    if ((e = s->begin_write(&r)) != 0) {
        wx_why_errno(p->why, sizeof p->why, "begin_write (before the exec-while-writable check)", e);
        s->unmap(&r);
        return;
    }
    wx_emit_stub(r.write, wx_stub_size(), 0x1234567u);
    probe_ctx x = {.addr = r.exec};
    p->exec_writable_sig = after_fault(wx_try(do_call, &x));

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
    probe_ctx run = {.addr = r.exec};
    p->run_sig = after_fault(wx_try(do_call, &run));
    p->run_value_ok = p->run_sig == 0 ? run.got == 0x2468aceu : -1;

    /* 3. a write through the executable view faults while executable */
    if ((e = s->end_write(&r)) != 0) {
        char note[WX_REASON_LEN];
        wx_why_errno(note, sizeof note, "end_write (redundant, before the write-while-executable check)", e);
        add_note(p, note);
    }
    probe_ctx w = {.addr = r.exec, .value = 0x1111u};
    p->write_exec_sig = after_fault(wx_try(do_write, &w));
    s->end_write(&r);
    s->unmap(&r);
    count_regions(s, p, (size_t)page);
}

/* Seconds one strategy's probe may take before its child is killed. */
#define WX_PROBE_TIMEOUT_S 30

/* "yes"/"no" from a fault signal: faulted => yes. */
static const char *faulted(int sig, char *buf, size_t len)
{
    if (sig < 0)
        return "not tried";
    if (sig == 0)
        return "no";
    snprintf(buf, len, "yes (%s)", wx_signal_name(sig));
    return buf;
}

static const char *worked(int sig, char *buf, size_t len)
{
    if (sig < 0)
        return "not tried";
    if (sig == 0)
        return "yes";
    snprintf(buf, len, "NO (%s)", wx_signal_name(sig));
    return buf;
}

/* Print one strategy's answers. */
static void print_probe(FILE *out, const wx_strategy *s, const wx_probe *p)
{
    char b1[32], b2[32], b3[32], b4[32], b5[32], regions[WX_REASON_LEN + 32];
    fprintf(out, "%-16s ", s->name);
    if (!p->supported) {
        fprintf(out, "unsupported: %s\n", p->why);
        return;
    }
    if (!p->maps) {
        fprintf(out, "maps=NO (%s)\n", p->why);
        return;
    }
    if (p->regions < 0)
        snprintf(regions, sizeof regions, "not tried");
    else if (p->regions == WX_PROBE_REGIONS)
        snprintf(regions, sizeof regions, "%d/%d", p->regions, WX_PROBE_REGIONS);
    else
        snprintf(regions, sizeof regions, "%d/%d (next: %s)", p->regions, WX_PROBE_REGIONS,
                 p->regions_why[0] ? p->regions_why : "no reason given");
    fprintf(out,
            "maps=yes write-when-writable=%s runs-when-executable=%s%s write-faults-when-executable=%s "
            "exec-faults-when-writable=%s other-thread-write-faults-while-writing=%s writable-alias=%s "
            "regions-at-once=%s\n",
            worked(p->write_sig, b1, sizeof b1), worked(p->run_sig, b2, sizeof b2),
            p->run_value_ok == 0 ? " (WRONG VALUE)" : "", faulted(p->write_exec_sig, b3, sizeof b3),
            faulted(p->exec_writable_sig, b4, sizeof b4), faulted(p->other_write_sig, b5, sizeof b5),
            p->alias ? "yes" : "no", regions);
    if (p->why[0])
        fprintf(out, "%-16s   note: %s\n", "", p->why);
}

/* Print one strategy's audit (audit.c): the same answers wx_audit writes
 * to audit.csv, one line per property. */
static void print_audit(FILE *out, const wx_strategy *s)
{
    char why[WX_REASON_LEN] = "";
    if (!s->supported(why, sizeof why)) {
        fprintf(out, "%-16s   audit: n/a (unsupported here)\n", "");
        return;
    }
    wx_audit a;
    wx_audit_strategy(s, &a);
    for (int i = 0; i < WX_AUDIT_NPROPS; i++)
        fprintf(out, "%-16s   audit %-40s %-3s  %s\n", "", wx_audit_property_names[i], wx_audit_result_name(a.result[i]),
                a.evidence[i]);
}

int wx_probe_all(FILE *out)
{
    wx_machine m;
    wx_machine_describe(&m);
    fprintf(out, "wxbench probe: %s (%s), %s %s, page %ld bytes, %d CPUs; icache: %s\n", m.slug, m.chip, m.os,
            m.arch, m.page_size, m.ncpu, wx_icache_method());
    fflush(out);
    int bad = 0;
    for (size_t i = 0; wx_strategies[i]; i++) {
        const wx_strategy *s = wx_strategies[i];
        int fds[2];
        if (pipe(fds) != 0) {
            fprintf(out, "%-16s not probed: pipe: %s (errno %d)\n", s->name, strerror(errno), errno);
            return WX_EXIT_FAILURES;
        }
        fflush(out);
        pid_t pid = fork();
        int fork_err = errno;
        if (pid == 0) {
            close(fds[0]);
            wx_probe p;
            wx_probe_strategy(s, &p);
            FILE *f = fdopen(fds[1], "w");
            if (f) {
                print_probe(f, s, &p);
                fflush(f);
                print_audit(f, s);
                fclose(f);
            }
            _exit(0);
        }
        close(fds[1]);
        char buf[2048];
        ssize_t n;
        size_t total = 0;
        int timed_out = 0;
        uint64_t deadline = wx_now_ns() + (uint64_t)WX_PROBE_TIMEOUT_S * 1000000000u;
        for (;;) {
            uint64_t now = wx_now_ns();
            if (pid > 0 && now >= deadline) {
                timed_out = 1;
                kill(pid, SIGKILL);
                break;
            }
            struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
            int r = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                continue;
            if (r < 0 || (n = read(fds[0], buf, sizeof buf)) <= 0)
                break;
            fwrite(buf, 1, (size_t)n, out);
            total += (size_t)n;
        }
        close(fds[0]);
        int st = 0;
        while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (timed_out) {
            fprintf(out, "%-16s probe timed out: no answer within %d s (killed)\n", s->name, WX_PROBE_TIMEOUT_S);
            bad = 1;
        } else if (pid < 0) {
            fprintf(out, "%-16s not probed: fork: %s (errno %d)\n", s->name, strerror(fork_err), fork_err);
            bad = 1;
        } else if (WIFSIGNALED(st)) {
            fprintf(out, "%-16s crashed while probing: killed by %s (%s)\n", s->name, wx_signal_name(WTERMSIG(st)),
                    strsignal(WTERMSIG(st)));
            bad = 1;
        } else if (total == 0) {
            fprintf(out, "%-16s probe printed nothing (exit status %d)\n", s->name, WEXITSTATUS(st));
            bad = 1;
        }
        fflush(out);
    }
    return bad ? WX_EXIT_FAILURES : WX_EXIT_OK;
}
