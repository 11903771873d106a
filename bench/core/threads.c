/* threads.c - barrier and victims (spinning threads or processes) shared by
 * scenarios. Portable POSIX: the barrier is a mutex and a condition variable
 * (macOS has no pthread_barrier_t); victims share one MAP_SHARED control
 * block, so threads and forked processes report their progress the same way. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "threads.h"
#include "wx.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/prctl.h>
#endif
#if defined(__APPLE__)
#include <pthread/qos.h>
#endif

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

#define START_TIMEOUT_NS 5000000000ull
#define CPU_REPORT_STEPS 1024u /* a victim reports its CPU time every this many steps ... */
#define CPU_REPORT_NS 100000u   /* ... or when this long has passed (slow steps), looked at every 16 */
#define STOP_TIMEOUT_NS 5000000000ull

/* ---------------------------------------------------------------------------
 * Barrier
 * ------------------------------------------------------------------------ */

int wx_barrier_wait(wx_barrier *b, unsigned parties)
{
    int last = 0;
    pthread_mutex_lock(&b->lock);
    unsigned long gen = b->generation;
    if (++b->waiting >= parties) {
        b->waiting = 0;
        b->generation++;
        last = 1;
        pthread_cond_broadcast(&b->cond);
    } else {
        while (gen == b->generation)
            pthread_cond_wait(&b->cond, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return last;
}

/* ---------------------------------------------------------------------------
 * Victims
 * ------------------------------------------------------------------------ */

/* Where a victim is in its life. */
enum { SLOT_STARTING, SLOT_READY, SLOT_RUNNING, SLOT_FAILED, SLOT_DONE };

/* One victim's report, a cache line of its own for the counter it stores to. */
typedef struct slot {
    _Alignas(128) _Atomic uint64_t steps; /* done steps since the start barrier */
    _Atomic uint64_t cpu_ns;              /* the victim's CPU time, as it last reported it */
    _Atomic uint64_t idles;               /* steps that did nothing (the victim then slept) */
    _Atomic int state;                    /* SLOT_* */
    int cpu;                              /* CPU it pinned itself to, -1 if unpinned */
    char why[WX_REASON_LEN];              /* what failed, when state is SLOT_FAILED */
} slot;

/* The block every victim and the starter share (MAP_SHARED: also across fork). */
typedef struct control {
    _Alignas(128) _Atomic int go; /* the start barrier opens */
    _Atomic int stop;             /* victims leave their loops */
    slot slots[];                 /* one per victim */
} control;

/* Argument of one victim thread. */
typedef struct victim_arg {
    wx_victims *v; /* the set it belongs to */
    int index;     /* its index in the set */
} victim_arg;

struct wx_victims {
    wx_victim_kind kind;          /* threads or processes */
    int n;                        /* victims */
    int started;                  /* threads created / processes forked */
    control *ctl;                 /* shared control block */
    size_t ctl_size;              /* its mapped size */
    wx_victim_prepare_fn prepare; /* run once in each victim */
    wx_victim_step_fn step;       /* the loop's unit of work */
    void *arg;                    /* passed to prepare and step */
    pthread_t *threads;           /* kind == threads */
    victim_arg *targs;            /* kind == threads */
    pid_t *pids;                  /* kind == processes */
#if defined(__APPLE__)
    qos_class_t qos;              /* the starter's QoS class, which process victims take */
    int qos_rel;                  /* and its relative priority */
#endif
};

static void sleep_ns(long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t wx_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define thread_cpu_ns wx_thread_cpu_ns

int wx_thread_create_alike(pthread_t *t, void *(*fn)(void *), void *arg, char *why, size_t len)
{
#if defined(__APPLE__)
    int rel = 0;
    qos_class_t q = qos_class_self();
    (void)pthread_get_qos_class_np(pthread_self(), &q, &rel);
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e != 0)
        return wx_why_errno(why, len, "pthread_attr_init", e);
    if (q != QOS_CLASS_UNSPECIFIED && (e = pthread_attr_set_qos_class_np(&attr, q, rel)) != 0) {
        pthread_attr_destroy(&attr);
        return wx_why_errno(why, len, "pthread_attr_set_qos_class_np(the calling thread's QoS class)", e);
    }
    e = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return e ? wx_why_errno(why, len, "pthread_create", e) : 0;
#else
    int e = pthread_create(t, NULL, fn, arg);
    return e ? wx_why_errno(why, len, "pthread_create", e) : 0;
#endif
}

int wx_measuring_check(uint64_t cpu_ns, int64_t wait_ns, uint64_t wall_ns, uint64_t min_window_ns, char *why,
                       size_t len)
{
    if (wall_ns == 0 || wall_ns < min_window_ns)
        return 0; /* an estimating run: not reported, too short to judge */
    const uint64_t waited = wait_ns >= 0 ? (uint64_t)wait_ns : cpu_ns < wall_ns ? wall_ns - cpu_ns : 0;
    const double share = (double)waited / (double)wall_ns;
    if (share <= WX_MEASURING_MAX_WAITING)
        return 0;
    /* the share rounded up (so never shown as the limit itself), at most 100 */
    const uint64_t shown = waited >= wall_ns ? 100 : (waited * 100 + wall_ns - 1) / wall_ns;
    snprintf(why, len,
             "the measuring thread was starved: it waited for a CPU for %llu%% of the timed loop (%.3f of %.3f ms, "
             "%s; at most %.0f%% is allowed), so ns_per_op would measure the waiting",
             (unsigned long long)shown, (double)waited / 1e6, (double)wall_ns / 1e6,
             wait_ns >= 0 ? "runnable but not running" : "not on a CPU", 100 * WX_MEASURING_MAX_WAITING);
    return -1;
}

static void slot_fail(slot *s, const char *why)
{
    snprintf(s->why, sizeof s->why, "%s", why && why[0] ? why : "failed without a reason");
    atomic_store(&s->state, SLOT_FAILED);
}

/* A victim's whole life, in its thread or its process. parent is the pid
 * to outlive (0 for threads). */
static void victim_run(wx_victims *v, int k, pid_t parent)
{
    slot *s = &v->ctl->slots[k];
    char why[WX_REASON_LEN] = "";
    s->cpu = wx_pin_thread(k + 1, why, sizeof why); /* -1: runs unpinned (e.g. macOS) */
    why[0] = 0;
    if (v->prepare && v->prepare(v->arg, k, why, sizeof why) != 0) {
        slot_fail(s, why);
        return;
    }
    atomic_store(&s->state, SLOT_READY);
    while (!atomic_load(&v->ctl->go)) {
        if (atomic_load(&v->ctl->stop) || (parent && getppid() != parent))
            return;
        sleep_ns(20000);
    }
    atomic_store(&s->cpu_ns, thread_cpu_ns());
    atomic_store(&s->state, SLOT_RUNNING);
    uint64_t steps = 0, reported = wx_now_ns();
    unsigned tick = 0;
    while (!atomic_load_explicit(&v->ctl->stop, memory_order_relaxed)) {
        int r = v->step(v->arg, k, why, sizeof why);
        if (r == WX_STEP_DONE) {
            atomic_store_explicit(&s->steps, ++steps, memory_order_relaxed);
        } else if (r == WX_STEP_IDLE) {
            atomic_fetch_add_explicit(&s->idles, 1, memory_order_relaxed);
            sleep_ns(1000000);
        } else {
            slot_fail(s, why[0] ? why : "step failed");
            return;
        }
        ++tick;
        int due = (tick % CPU_REPORT_STEPS) == 0 || r == WX_STEP_IDLE;
        if (!due && (tick % 16) == 0) {
            uint64_t now = wx_now_ns();
            due = now - reported >= CPU_REPORT_NS;
        }
        if (due) {
            reported = wx_now_ns();
            atomic_store_explicit(&s->cpu_ns, thread_cpu_ns(), memory_order_relaxed);
            if (parent && (tick % (16 * CPU_REPORT_STEPS)) == 0 && getppid() != parent)
                return; /* the measuring process is gone */
        }
    }
    atomic_store(&s->state, SLOT_DONE);
}

static void *victim_thread(void *p)
{
    victim_arg *a = p;
    victim_run(a->v, a->index, 0);
    return NULL;
}

int wx_victims_count(const wx_victims *v)
{
    return v ? v->n : 0;
}

void wx_victims_mark_now(const wx_victims *v, wx_victims_mark *m)
{
    memset(m, 0, sizeof *m);
    for (int k = 0; v && k < v->n; k++) {
        m->steps[k] = atomic_load(&v->ctl->slots[k].steps);
        m->idles[k] = atomic_load(&v->ctl->slots[k].idles);
        m->cpu_ns[k] = atomic_load(&v->ctl->slots[k].cpu_ns);
    }
    m->wall_ns = wx_now_ns();
}

int wx_victim_judge(const char *kind, int k, int cpu_number, uint64_t steps, uint64_t idles, uint64_t cpu_ns,
                    uint64_t wall_ns, char *why, size_t len)
{
    /* Its share of the loop on its CPU first: a victim the machine kept off
     * its CPU made no progress for that reason, not for a bug. */
    double share = wall_ns ? (double)cpu_ns / (double)wall_ns : 1.0;
    if (steps == 0 && (idles > 0 || share >= WX_VICTIM_MIN_RUNNING)) {
        snprintf(why, len, "victim %s %d (CPU %d) made no progress during the timed loop (no step%s)", kind, k,
                 cpu_number, idles ? ": it went idle" : " while it held its CPU");
        return WX_VICTIM_STUCK;
    }
    if (share < WX_VICTIM_MIN_RUNNING) {
        snprintf(why, len,
                 "victim %s %d (CPU %d) was on its CPU for only %.0f%% of the timed loop (%.3f of %.3f ms; at "
                 "least %.0f%% is needed): its CPU was busy with other work",
                 kind, k, cpu_number, 100 * share, (double)cpu_ns / 1e6, (double)wall_ns / 1e6,
                 100 * WX_VICTIM_MIN_RUNNING);
        return WX_VICTIM_BUSY;
    }
    return WX_VICTIM_RAN;
}

int wx_victims_check(const wx_victims *v, const wx_victims_mark *since, uint64_t min_window_ns, char *why,
                     size_t len)
{
    const uint64_t wall = wx_now_ns() - since->wall_ns;
    const char *kind = v && v->kind == WX_VICTIM_THREADS ? "thread" : "process";
    for (int k = 0; v && k < v->n; k++) {
        slot *s = &v->ctl->slots[k];
        if (atomic_load(&s->state) == SLOT_FAILED) {
            snprintf(why, len, "victim %d failed: %.200s", k, s->why);
            return -1;
        }
        if (wall < min_window_ns)
            continue; /* an estimating run: not reported, too short to judge */
        int verdict = wx_victim_judge(kind, k, s->cpu, atomic_load(&s->steps) - since->steps[k],
                                      atomic_load(&s->idles) - since->idles[k],
                                      atomic_load(&s->cpu_ns) - since->cpu_ns[k], wall, why, len);
        if (verdict != WX_VICTIM_RAN)
            return verdict == WX_VICTIM_BUSY ? 1 : -1;
    }
    return 0;
}

int wx_victims_settle(const wx_victims *v, uint64_t window_ns, uint64_t max_wait_ns)
{
    if (!v || v->n == 0)
        return 0;
    const uint64_t start = wx_now_ns();
    for (;;) {
        wx_victims_mark m;
        wx_victims_mark_now(v, &m);
        while (wx_now_ns() - m.wall_ns < window_ns)
            ; /* spin: this thread keeps its own CPU too */
        const uint64_t wall = wx_now_ns() - m.wall_ns;
        int present = 1;
        for (int k = 0; k < v->n && present; k++) {
            const slot *s = &v->ctl->slots[k];
            uint64_t cpu = atomic_load(&s->cpu_ns) - m.cpu_ns[k];
            present = atomic_load(&s->steps) > m.steps[k] && (double)cpu >= 0.9 * (double)wall;
        }
        if (present)
            return 0;
        if (wx_now_ns() - start > max_wait_ns)
            return -1;
    }
}

/* Wait for a forked victim; kill it when it does not leave in time. 0, or
 * -1 with why[]. */
static int reap(pid_t pid, int k, char *why, size_t len)
{
    uint64_t deadline = wx_now_ns() + STOP_TIMEOUT_NS;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            snprintf(why, len, "waitpid(victim process %d): %s", k, strerror(errno));
            return -1;
        }
        if (wx_now_ns() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            snprintf(why, len, "victim process %d did not stop within 5 s and was killed", k);
            return -1;
        }
        sleep_ns(100000);
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, len, "victim process %d was killed by signal %d", k, WTERMSIG(status));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(why, len, "victim process %d exited with status %d", k, WEXITSTATUS(status));
        return -1;
    }
    return 0;
}

int wx_victims_stop(wx_victims *v, char *why, size_t len)
{
    if (!v)
        return 0;
    int rc = 0;
    char first[WX_REASON_LEN] = "";
    if (v->ctl) {
        atomic_store(&v->ctl->stop, 1);
        for (int k = 0; k < v->started; k++) {
            char w[WX_REASON_LEN] = "";
            if (v->kind == WX_VICTIM_THREADS) {
                int e = pthread_join(v->threads[k], NULL);
                if (e != 0)
                    snprintf(w, sizeof w, "pthread_join(victim thread %d): %s", k, strerror(e));
            } else if (v->pids[k] > 0 && reap(v->pids[k], k, w, sizeof w) != 0 && !w[0]) {
                snprintf(w, sizeof w, "victim process %d did not exit cleanly", k);
            }
            if (!w[0] && atomic_load(&v->ctl->slots[k].state) == SLOT_FAILED)
                snprintf(w, sizeof w, "victim %d failed: %.200s", k, v->ctl->slots[k].why);
            if (w[0] && !first[0])
                snprintf(first, sizeof first, "%s", w);
        }
        munmap(v->ctl, v->ctl_size);
    }
    if (first[0]) {
        snprintf(why, len, "%s", first);
        rc = -1;
    }
    free(v->threads);
    free(v->targs);
    free(v->pids);
    free(v);
    return rc;
}

/* Wait until every started victim reached at least state want (or failed);
 * 0, or -1 with why[]. */
static int wait_all(wx_victims *v, int want_running, char *why, size_t len)
{
    uint64_t deadline = wx_now_ns() + START_TIMEOUT_NS;
    for (;;) {
        int done = 1;
        for (int k = 0; k < v->n; k++) {
            slot *s = &v->ctl->slots[k];
            int st = atomic_load(&s->state);
            if (st == SLOT_FAILED) {
                snprintf(why, len, "victim %d failed: %.200s", k, s->why);
                return -1;
            }
            if (want_running ? atomic_load(&s->steps) == 0 : st == SLOT_STARTING)
                done = 0;
        }
        if (done)
            return 0;
        if (v->kind == WX_VICTIM_PROCESSES) {
            for (int k = 0; k < v->n; k++) {
                int status;
                if (v->pids[k] > 0 && waitpid(v->pids[k], &status, WNOHANG) == v->pids[k]) {
                    v->pids[k] = -1; /* reaped here: stopping must not wait for it again */
                    snprintf(why, len, "victim process %d died before it started (status 0x%x)", k, status);
                    return -1;
                }
            }
        }
        if (wx_now_ns() > deadline) {
            snprintf(why, len, "victims did not %s within 5 s", want_running ? "start running" : "get ready");
            return -1;
        }
        sleep_ns(50000);
    }
}

wx_victims *wx_victims_start(wx_victim_kind kind, int n, wx_victim_prepare_fn prepare, wx_victim_step_fn step,
                             void *arg, char *why, size_t len)
{
    wx_victims *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    if (n > WX_VICTIMS_MAX) {
        snprintf(why, len, "%d victims asked for; at most %d", n, WX_VICTIMS_MAX);
        free(v);
        return NULL;
    }
    v->kind = kind;
    v->n = n < 0 ? 0 : n;
    v->prepare = prepare;
    v->step = step;
    v->arg = arg;
    long page = sysconf(_SC_PAGESIZE);
    size_t need = sizeof(control) + (size_t)v->n * sizeof(slot);
    v->ctl_size = (need + (size_t)page - 1) / (size_t)page * (size_t)page;
    void *p = mmap(NULL, v->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        wx_why_errno(why, len, "mmap(victims' control block, MAP_SHARED)", errno);
        free(v);
        return NULL;
    }
    v->ctl = p; /* zero-filled: go = stop = 0, every slot SLOT_STARTING */
    if (v->n == 0)
        return v;
    /* Learn the allowed CPUs here: a forked child inherits this thread's
     * one-CPU affinity and could no longer see the others. */
    (void)wx_cpu_for_index(1);

    if (kind == WX_VICTIM_THREADS) {
        v->threads = calloc((size_t)v->n, sizeof *v->threads);
        v->targs = calloc((size_t)v->n, sizeof *v->targs);
        if (!v->threads || !v->targs) {
            snprintf(why, len, "out of memory");
            goto fail;
        }
        for (int k = 0; k < v->n; k++) {
            v->targs[k].v = v;
            v->targs[k].index = k;
            char w[WX_REASON_LEN];
            if (wx_thread_create_alike(&v->threads[k], victim_thread, &v->targs[k], w, sizeof w) != 0) {
                snprintf(why, len, "victim thread %d: %s", k, w);
                goto fail;
            }
            v->started++;
        }
    } else {
        v->pids = calloc((size_t)v->n, sizeof *v->pids);
        if (!v->pids) {
            snprintf(why, len, "out of memory");
            goto fail;
        }
        pid_t parent = getpid();
#if defined(__APPLE__)
        v->qos = qos_class_self();
        v->qos_rel = 0;
        (void)pthread_get_qos_class_np(pthread_self(), &v->qos, &v->qos_rel);
#endif
        fflush(NULL); /* nothing buffered may be written twice */
        for (int k = 0; k < v->n; k++) {
            pid_t pid = fork();
            if (pid < 0) {
                wx_why_errno(why, len, "fork(victim)", errno);
                goto fail;
            }
            if (pid == 0) {
#if defined(__linux__)
                prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
                if (getppid() != parent)
                    _exit(1);
#if defined(__APPLE__)
                /* the measuring thread's QoS class, as victim threads get it */
                int qe = v->qos == QOS_CLASS_UNSPECIFIED ? 0 : pthread_set_qos_class_self_np(v->qos, v->qos_rel);
                if (qe != 0) {
                    char w[WX_REASON_LEN];
                    wx_why_errno(w, sizeof w, "pthread_set_qos_class_self_np(the measuring thread's QoS class)", qe);
                    slot_fail(&v->ctl->slots[k], w);
                    _exit(1);
                }
#endif
                victim_run(v, k, parent);
                _exit(atomic_load(&v->ctl->slots[k].state) == SLOT_FAILED ? 1 : 0);
            }
            v->pids[k] = pid;
            v->started++;
        }
    }
    if (wait_all(v, 0, why, len) != 0)
        goto fail;
    atomic_store(&v->ctl->go, 1);
    if (wait_all(v, 1, why, len) != 0)
        goto fail;
    return v;

fail: {
    char ignored[WX_REASON_LEN]; /* why[] already says what went wrong first */
    wx_victims_stop(v, ignored, sizeof ignored);
    return NULL;
}
}

int wx_victim_counts(int ncpu, int quick, int *out, int max)
{
    int top = ncpu - 1, n = 0;
    if (top > WX_VICTIMS_MAX)
        top = WX_VICTIMS_MAX;
    if (top < 0)
        top = 0;
    if (max < 1)
        return 0;
    out[n++] = 0;
    if (quick) {
        if (top > 0 && n < max)
            out[n++] = top;
        return n;
    }
    for (int v = 1; v <= top && n < max; v = v < 4 ? v + 1 : v * 2)
        out[n++] = v;
    if (out[n - 1] != top) {
        if (n == max)
            n--;
        out[n++] = top;
    }
    return n;
}

double wx_victim_case_min_time(double run_min_time, int victims)
{
    const double floor = victims > 0 ? 0.01 : 0.002;
    return run_min_time / 4 > floor ? run_min_time / 4 : floor;
}
