/* runner.c - the parent of a run (runner.h).
 *
 * The schedule: every selected (scenario, strategy) pair gets --repetitions
 * children, each measuring every case of the pair once (a strategy that
 * cannot run here gets one, which writes its unsupported rows). The
 * (pair, repetition) children run in an order shuffled with the run's seed,
 * so that drift over the run (the host, the machine's temperature, other
 * programs) falls on every configuration alike; --no-interleave keeps pairs
 * in table order with their repetitions back to back. Each child maps an
 * address-space spacer of a random number of pages first (from the same
 * seed), so that its code regions land at addresses of their own.
 * processes.csv records every child. --target-ci then adds repetitions to the
 * pairs whose configurations' 95% intervals of the median are still wider
 * than asked, within a cap and a time budget. */
#define _GNU_SOURCE 1
#include "runner.h"
#include "audit.h"
#include "child.h"
#include "csv.h"
#include "meta.h"
#include "../core/proc.h"
#include "results.h"
#include "../core/platform_util.h"
#include "../gbench_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef WX_VERSION
#define WX_VERSION "unknown"
#endif

#define AUDIT_TIMEOUT_S 30
#define LAYOUT_PAGES_MAX 1024   /* spacers of 0 .. LAYOUT_PAGES_MAX-1 pages */

static volatile sig_atomic_t g_interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static void utc_stamp(char *out, size_t len, const char *fmt)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, fmt, &tm);
}

/* splitmix64: the run order's random numbers, reproducible from the seed. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform number in [0, n). */
static uint64_t random_below(uint64_t *state, uint64_t n)
{
    return n ? next_random(state) % n : 0;
}

/* One (scenario, strategy) pair of the run. */
typedef struct pair {
    const wx_scenario *sc;
    const wx_strategy *st;
    int supported;           /* the strategy can run here (strategy-free: 1) */
    int scheduled;           /* repetitions scheduled so far */
} pair;

/* One child to run. */
typedef struct job {
    size_t pair;             /* index in pairs */
    int repetition;          /* 1.. */
    unsigned layout_pages;   /* its spacer */
    int attempt;             /* 1..WX_MAX_ATTEMPTS: a retry of cases other work spoiled is > 1 */
    wx_case_key *only;       /* a retry: the cases to measure again (owned; NULL: every case) */
    size_t nonly;
} job;

/* Everything the parent keeps over a run. */
typedef struct run_state {
    const wx_options *o;
    wx_machine m;
    wx_meta meta;
    char dir[4096];
    int csv_fd;
    wx_audit *audits;        /* per strategy table index, audited on first need */
    int *audited;
    pair *pairs;
    size_t npairs;
    job *jobs;               /* the schedule */
    size_t njobs, jobs_cap, done;
    uint64_t rng;            /* the schedule's random state */
    wx_results results;      /* every ok value, per configuration */
    int stop;                /* results.csv cannot be written: no more children */
    uint64_t t_start;
} run_state;

/* Room for one more job in the schedule: 0, or ENOMEM. */
static int room_for_a_job(run_state *rs)
{
    if (rs->njobs == rs->jobs_cap) {
        size_t cap = rs->jobs_cap ? rs->jobs_cap * 2 : 256;
        job *j = realloc(rs->jobs, cap * sizeof *j);
        if (!j)
            return ENOMEM;
        rs->jobs = j;
        rs->jobs_cap = cap;
    }
    return 0;
}

static int add_job(run_state *rs, size_t p)
{
    if (room_for_a_job(rs) != 0)
        return ENOMEM;
    job *j = &rs->jobs[rs->njobs++];
    memset(j, 0, sizeof *j);
    j->pair = p;
    j->repetition = ++rs->pairs[p].scheduled;
    j->layout_pages = (unsigned)random_below(&rs->rng, LAYOUT_PAGES_MAX);
    j->attempt = 1;
    return 0;
}

/* The cases of job done (index) that other work spoiled, measured again in
 * a fresh process: placed at a random position among the jobs still to run
 * (right after this one under --no-interleave), with a spacer of its own.
 * only is taken over. */
static int add_retry(run_state *rs, size_t done, wx_case_key *only, size_t nonly)
{
    if (room_for_a_job(rs) != 0)
        return ENOMEM;
    job r = rs->jobs[done];
    r.attempt++;
    r.only = only;
    r.nonly = nonly;
    r.layout_pages = (unsigned)random_below(&rs->rng, LAYOUT_PAGES_MAX);
    /* positions done+1 .. njobs (njobs: after every other job) */
    size_t at = done + 1 + (rs->o->no_interleave ? 0 : (size_t)random_below(&rs->rng, rs->njobs - done));
    memmove(&rs->jobs[at + 1], &rs->jobs[at], (rs->njobs - at) * sizeof *rs->jobs);
    rs->jobs[at] = r;
    rs->njobs++;
    return 0;
}

/* Shuffle jobs [from, njobs) (Fisher-Yates) and number their repetitions
 * in the order they will run, per pair. */
static void shuffle_from(run_state *rs, size_t from)
{
    for (size_t i = rs->njobs; i > from + 1; i--) {
        size_t k = from + (size_t)random_below(&rs->rng, i - from);
        job t = rs->jobs[i - 1];
        rs->jobs[i - 1] = rs->jobs[k];
        rs->jobs[k] = t;
    }
    for (size_t i = from; i < rs->njobs; i++)
        rs->pairs[rs->jobs[i].pair].scheduled -= 1;
    for (size_t i = from; i < rs->njobs; i++)
        rs->jobs[i].repetition = ++rs->pairs[rs->jobs[i].pair].scheduled;
}

/* Append a row the parent writes for a child that could not say it (it
 * died, hung, or could not be started). */
static void parent_row(run_state *rs, const pair *p, const wx_case *c, const char *core_class, int repetition,
                       wx_status status, const char *reason)
{
    const wx_machine *m = &rs->m;
    wx_row r = {
        .machine = m->slug, .chip = m->chip, .os = m->os, .arch = m->arch, .page_size = m->page_size,
        .scenario = p->sc->name, .strategy = p->st->name, .c = c, .core_class = core_class,
        .repetition = repetition, .iterations = 0, .ns_per_op = -1, .cycles_per_op = -1, .tlb_per_op = -1,
        .status = status, .reason = reason,
    };
    int e = wx_csv_append_row(rs->csv_fd, &r);
    if (e != 0) {
        fprintf(stderr, "\nwxbench: cannot append to %s/results.csv: %s\n", rs->dir, strerror(e));
        snprintf(rs->meta.stopped, sizeof rs->meta.stopped, "cannot append to %.160s/results.csv: %s", rs->dir,
                 strerror(e));
        rs->stop = 1;
        return;
    }
    rs->meta.rows.n[status]++;
}

/* The audit of st (run in a child the first time it is needed), its rows
 * in audit.csv. */
static const wx_audit *audit_of(run_state *rs, const wx_strategy *st)
{
    size_t i = 0;
    while (wx_strategies[i] && wx_strategies[i] != st)
        i++;
    if (!wx_strategies[i])
        return NULL;
    wx_audit *a = &rs->audits[i];
    if (!rs->audited[i]) {
        rs->audited[i] = 1;
        /* The audit child has the per-child limit too (at most 30 s). */
        wx_audit_isolated(st, a, rs->o->timeout_s < AUDIT_TIMEOUT_S ? rs->o->timeout_s : AUDIT_TIMEOUT_S, NULL);
        char why[WX_REASON_LEN] = "";
        if (wx_audit_write_csv(rs->dir, st->name, a, why, sizeof why) != 0) {
            fprintf(stderr, "wxbench: cannot write audit.csv: %s\n", why);
            snprintf(a->failure, sizeof a->failure, "cannot write audit.csv: %.200s", why);
        }
    }
    return a;
}

/* One line of processes.csv (every child of the run, in the order run). */
static void process_row(run_state *rs, const job *j, long pid, double start_s, double wall_s, const char *end,
                        long ok, long not_ok, const double ref_ns[2])
{
    static const char header[] = "order,scenario,strategy,repetition,layout_pages,pid,start_s,wall_s,end,ok_rows,"
                                 "other_rows,try,ref_start_ns,ref_end_ns\n";
    const pair *p = &rs->pairs[j->pair];
    char f[11][32];
    snprintf(f[0], sizeof f[0], "%zu", rs->done + 1);
    snprintf(f[1], sizeof f[1], "%d", j->repetition);
    snprintf(f[2], sizeof f[2], "%u", j->layout_pages);
    snprintf(f[3], sizeof f[3], "%ld", pid);
    snprintf(f[4], sizeof f[4], "%.3f", start_s);
    snprintf(f[5], sizeof f[5], "%.3f", wall_s);
    snprintf(f[6], sizeof f[6], "%ld", ok);
    snprintf(f[7], sizeof f[7], "%ld", not_ok);
    snprintf(f[8], sizeof f[8], "%d", j->attempt);
    for (int k = 0; k < 2; k++) { /* empty where the child did not get that far */
        f[9 + k][0] = 0;
        if (ref_ns[k] > 0)
            snprintf(f[9 + k], sizeof f[9], "%.0f", ref_ns[k]);
    }
    const char *fields[] = {f[0], p->sc->name, p->st->name, f[1], f[2], f[3], f[4], f[5], end, f[6], f[7],
                            f[8], f[9], f[10]};
    char *line = wx_csv_line(fields, 14);
    char why[WX_REASON_LEN];
    if (!line || wx_side_csv_append(rs->dir, "processes.csv", header, line, why, sizeof why) != 0)
        fprintf(stderr, "\nwxbench: cannot append to %s/processes.csv\n", rs->dir);
    free(line);
}

/* The case a child was measuring when it stopped, from its last message. */
typedef struct last_case {
    wx_case c;
    char variant[64];
    char core_class[8];
    int repetition;
} last_case;

/* A row the child wrote: counted, and its value kept. */
static void take_row(run_state *rs, const job *j, const wx_msg *msg)
{
    if ((unsigned)msg->status >= WX_NSTATUS)
        return;
    rs->meta.rows.n[msg->status]++;
    const pair *p = &rs->pairs[j->pair];
    wx_config *c = wx_results_config(&rs->results, p->sc->name, p->st->name, msg->variant, msg->threads,
                                     msg->victims, msg->size_bytes, msg->batch, msg->core_class, j->pair);
    if (!c)
        return;
    if (msg->status != WX_OK || msg->ns_per_op < 0) {
        c->not_ok++;
        return;
    }
    wx_sample s = {.repetition = msg->repetition, .iterations = msg->iterations, .ns = msg->ns_per_op,
                   .cpu_ns = msg->cpu_ns_per_op, .cycles = msg->cycles_per_op, .tlb = msg->tlb_per_op};
    wx_results_add(c, &s);
}

/* The key of the case a message names. */
static wx_case_key key_of(const wx_msg *m)
{
    wx_case_key k;
    memset(&k, 0, sizeof k);
    snprintf(k.variant, sizeof k.variant, "%s", m->variant);
    snprintf(k.core_class, sizeof k.core_class, "%s", m->core_class);
    k.threads = m->threads;
    k.victims = m->victims;
    k.batch = m->batch;
    k.size_bytes = m->size_bytes;
    return k;
}

/* The `interfered` row the parent writes for a spoiled case it cannot have
 * measured again (no memory left). */
static void interfered_row(run_state *rs, const pair *p, const wx_case_key *k, int repetition, const char *why)
{
    const wx_case c = {.variant = k->variant, .threads = k->threads, .victims = k->victims, .batch = k->batch,
                       .size_bytes = k->size_bytes};
    parent_row(rs, p, &c, k->core_class, repetition, WX_INTERFERED, why);
}

/* Run one child; rows go to results.csv. */
static void run_job(run_state *rs, const job *j)
{
    const wx_options *o = rs->o;
    const pair *p = &rs->pairs[j->pair];
    uint64_t t0 = wx_now_ns();
    wx_counts before = rs->meta.rows;
    fprintf(stderr, "[%zu/%zu] %-18s %-16s rep %-3d ", rs->done + 1, rs->njobs, p->sc->name, p->st->name,
            j->repetition);
    if (j->attempt > 1)
        fprintf(stderr, "try %d ", j->attempt);
    fflush(stderr);

    wx_child_ctx ctx = {
        .o = o, .m = &rs->m, .dir = rs->dir, .csv_fd = rs->csv_fd, .sc = p->sc, .st = p->st,
        .audit = p->sc->needs_audit ? audit_of(rs, p->st) : NULL, /* n/a rows for an unsupported one */
        .repetition = j->repetition, .layout_pages = j->layout_pages,
        .attempt = j->attempt, .only = j->only, .nonly = j->nonly,
    };
    wx_case_key *retry = NULL; /* the cases other work spoiled in this try */
    size_t nretry = 0;
    double ref_ns[2] = {0, 0};
    last_case last;
    memset(&last, 0, sizeof last);
    last.c = (wx_case){.variant = last.variant, .threads = 1, .batch = 1};
    snprintf(last.core_class, sizeof last.core_class, "any");
    last.repetition = j->repetition;

    wx_proc proc;
    int e = wx_proc_start(&proc, wx_child_main, &ctx, o->timeout_s * 1000);
    if (e != 0) {
        char reason[WX_REASON_LEN];
        wx_why_errno(reason, sizeof reason, "could not start the child: pipe/fork", e);
        parent_row(rs, p, &last.c, last.core_class, j->repetition, WX_FAILED, reason);
        const double no_ref[2] = {0, 0};
        process_row(rs, j, -1, (double)(t0 - rs->t_start) / 1e9, 0, reason, 0, 1, no_ref);
        fprintf(stderr, "FAILED: %s\n", reason);
        return;
    }
    long pid = (long)proc.pid;
    wx_msg msg;
    size_t have = 0;
    int timed_out = 0, lost = 0;
    char io_why[WX_REASON_LEN] = "";
    for (;;) {
        if (g_interrupted)
            break;
        long n = wx_proc_read(&proc, (char *)&msg + have, sizeof msg - have, 1000);
        if (n == WX_READ_AGAIN)
            continue;
        if (n == WX_READ_TIMEOUT) {
            timed_out = 1;
            break;
        }
        if (n == WX_READ_ERROR) {
            lost = errno;
            break;
        }
        if (n == WX_READ_EOF)
            break;
        have += (size_t)n;
        if (have < sizeof msg)
            continue;
        have = 0;
        if (msg.kind == WX_MSG_ROW) {
            take_row(rs, j, &msg);
        } else if (msg.kind == WX_MSG_CASE) {
            snprintf(last.variant, sizeof last.variant, "%s", msg.variant);
            snprintf(last.core_class, sizeof last.core_class, "%s", msg.core_class);
            last.c.threads = msg.threads;
            last.c.victims = msg.victims;
            last.c.batch = msg.batch;
            last.c.size_bytes = msg.size_bytes;
            last.repetition = msg.repetition;
        } else if (msg.kind == WX_MSG_IO) {
            snprintf(io_why, sizeof io_why, "%s", msg.why);
        } else if (msg.kind == WX_MSG_REF) {
            ref_ns[msg.ref_end ? 1 : 0] = msg.ref_ns;
        } else if (msg.kind == WX_MSG_RETRY) {
            const wx_case_key key = key_of(&msg);
            wx_case_key *more = realloc(retry, (nretry + 1) * sizeof *retry);
            if (!more) { /* cannot keep it: the row says so */
                interfered_row(rs, p, &key, msg.repetition, msg.why);
                continue;
            }
            retry = more;
            retry[nretry++] = key;
        }
    }
    wx_proc_end end;
    wx_proc_finish(&proc, g_interrupted || timed_out || lost, timed_out, &end);
    if (g_interrupted) {
        free(retry);
        return;
    }
    if (nretry > 0 && add_retry(rs, rs->done, retry, nretry) != 0) {
        for (size_t k = 0; k < nretry; k++) /* cannot schedule it: the rows say so */
            interfered_row(rs, p, &retry[k], j->repetition,
                           "spoiled by other work; no memory left to measure it again");
        free(retry);
    }
    j = &rs->jobs[rs->done]; /* add_retry may have moved the schedule */
    p = &rs->pairs[j->pair];

    /* Rows the parent writes for the child. */
    char reason[WX_REASON_LEN * 2];
    const char *where = last.variant[0] ? last.variant : "(before any case started)";
    if (io_why[0]) {
        fprintf(stderr, "\nwxbench: %s; stopping\n", io_why);
        snprintf(rs->meta.stopped, sizeof rs->meta.stopped, "%s", io_why);
        rs->stop = 1;
    } else if (lost) {
        snprintf(reason, sizeof reason, "stopped: the child could no longer be watched (poll/read: %s) while "
                 "measuring variant %s", strerror(lost), where);
        parent_row(rs, p, &last.c, last.core_class, last.repetition, WX_FAILED, reason);
    } else if (timed_out) {
        snprintf(reason, sizeof reason, "exceeded the per-child limit of %d s while measuring variant %s",
                 o->timeout_s, where);
        parent_row(rs, p, &last.c, last.core_class, last.repetition, WX_TIMEOUT, reason);
    } else if (end.how == WX_PROC_SIGNALED) {
        snprintf(reason, sizeof reason, "%s while measuring variant %s", end.why, where);
        parent_row(rs, p, &last.c, last.core_class, last.repetition, WX_CRASHED, reason);
    } else if (end.how != WX_PROC_EXITED || end.code != 0) {
        snprintf(reason, sizeof reason, "child %s while measuring variant %s", end.why, where);
        parent_row(rs, p, &last.c, last.core_class, last.repetition, WX_FAILED, reason);
    }
    uint64_t now = wx_now_ns();
    const wx_counts *c = &rs->meta.rows;
    long ok = c->n[WX_OK] - before.n[WX_OK], other = 0;
    for (int s = WX_UNSUPPORTED; s < WX_NSTATUS; s++)
        other += c->n[s] - before.n[s];
    process_row(rs, j, pid, (double)(t0 - rs->t_start) / 1e9, (double)(now - t0) / 1e9,
                timed_out ? "timeout" : end.why, ok, other, ref_ns);
    fprintf(stderr, "%5.2f s  (total %6.1f s)  ok %ld", (double)(now - t0) / 1e9, (double)(now - rs->t_start) / 1e9,
            ok);
    static const char *const loud[WX_NSTATUS] = {"ok", "unsupported", "FAILED", "CRASHED", "TIMEOUT",
                                                 "interfered"};
    for (int s = WX_UNSUPPORTED; s < WX_NSTATUS; s++)
        if (c->n[s] > before.n[s])
            fprintf(stderr, "  %s %ld", loud[s], c->n[s] - before.n[s]);
    if (nretry > 0)
        fprintf(stderr, "  spoiled by other work: %zu, measured again later", nretry);
    fputc('\n', stderr);
}

/* The pairs o selects, each strategy's support checked once in a child. */
static int make_pairs(run_state *rs)
{
    const wx_options *o = rs->o;
    size_t ns = wx_strategy_count();
    int *sup = calloc(ns + 1, sizeof *sup);
    rs->pairs = calloc((size_t)WX_MAX_SELECTED * (ns + 1) + 1, sizeof *rs->pairs);
    if (!sup || !rs->pairs) {
        free(sup);
        return ENOMEM;
    }
    for (size_t k = 0; k < ns; k++) {
        if (!wx_options_selected(o, wx_strategies[k]))
            continue;
        char why[WX_REASON_LEN];
        sup[k] = wx_proc_supported(wx_strategies[k], why, sizeof why);
    }
    for (int s = 0; o->scenarios[s]; s++) {
        const wx_scenario *sc = o->scenarios[s];
        if (sc->strategy_free) {
            if (wx_options_selected(o, &wx_no_strategy))
                rs->pairs[rs->npairs++] = (pair){sc, &wx_no_strategy, 1, 0};
            continue;
        }
        for (size_t k = 0; k < ns; k++)
            if (wx_options_selected(o, wx_strategies[k]))
                rs->pairs[rs->npairs++] = (pair){sc, wx_strategies[k], sup[k], 0};
    }
    free(sup);
    return 0;
}

/* Whether c's 95% interval of the median is within --target-ci: m gets the
 * interval, half (may be NULL) its wider side in % of the median. */
static int ci_reached(const run_state *rs, const wx_config *c, wx_median_ci *m, double *half)
{
    wx_results_ci(c, m);
    double wide = m->high - m->median > m->median - m->low ? m->high - m->median : m->median - m->low;
    double pct = m->median > 0 ? 100 * wide / m->median : 0;
    if (half)
        *half = pct;
    return m->exact95 && pct <= rs->o->target_ci;
}

/* --target-ci: the pairs some of whose configurations' 95% intervals of the
 * median are wider than asked (or still too few to have one) get one more
 * repetition each, shuffled, until none is left, or a pair reaches the cap,
 * or the budget is spent. */
static int pair_needs_more(const run_state *rs, size_t p)
{
    for (size_t i = 0; i < rs->results.n; i++) {
        const wx_config *c = &rs->results.c[i];
        if (c->pair != p || c->n == 0)
            continue;
        wx_median_ci m;
        if (!ci_reached(rs, c, &m, NULL))
            return 1;
    }
    return 0;
}

static void run_target_ci(run_state *rs)
{
    const uint64_t budget_end = wx_now_ns() + (uint64_t)WX_TARGET_CI_BUDGET_S * 1000000000ull;
    for (;;) {
        size_t from = rs->njobs;
        for (size_t p = 0; p < rs->npairs; p++)
            if (rs->pairs[p].supported && rs->pairs[p].scheduled < WX_TARGET_CI_MAX_REPETITIONS &&
                pair_needs_more(rs, p))
                add_job(rs, p);
        if (rs->njobs == from)
            return;
        if (!rs->o->no_interleave)
            shuffle_from(rs, from);
        for (; rs->done < rs->njobs && !g_interrupted && !rs->stop; rs->done++) {
            if (wx_now_ns() > budget_end) {
                snprintf(rs->meta.target_ci_note, sizeof rs->meta.target_ci_note,
                         "stopped at the time budget of %d s", WX_TARGET_CI_BUDGET_S);
                rs->njobs = rs->done;
                return;
            }
            run_job(rs, &rs->jobs[rs->done]);
        }
        if (g_interrupted || rs->stop)
            return;
    }
}

/* target_ci.csv: every configuration, its interval, and whether it got
 * within the target. */
static void write_target_ci(run_state *rs)
{
    static const char header[] = "scenario,strategy,variant,threads,victims,size_bytes,batch,core_class,n,median,"
                                 "ci_low,ci_high,half_width_pct,reached\n";
    long missed = 0;
    for (size_t i = 0; i < rs->results.n; i++) {
        const wx_config *c = &rs->results.c[i];
        if (c->n == 0)
            continue;
        wx_median_ci m;
        double half;
        int reached = ci_reached(rs, c, &m, &half);
        missed += !reached;
        char f[12][48];
        snprintf(f[0], sizeof f[0], "%d", c->threads);
        snprintf(f[1], sizeof f[1], "%d", c->victims);
        snprintf(f[2], sizeof f[2], "%llu", (unsigned long long)c->size_bytes);
        snprintf(f[3], sizeof f[3], "%d", c->batch);
        snprintf(f[4], sizeof f[4], "%zu", m.n);
        snprintf(f[5], sizeof f[5], "%.6g", m.median);
        snprintf(f[6], sizeof f[6], "%.6g", m.low);
        snprintf(f[7], sizeof f[7], "%.6g", m.high);
        snprintf(f[8], sizeof f[8], "%.2f", half);
        const char *fields[] = {c->scenario, c->strategy, c->variant, f[0], f[1], f[2], f[3], c->core_class,
                                f[4], f[5], f[6], f[7], f[8], reached ? "yes" : "no"};
        char *line = wx_csv_line(fields, 14);
        char why[WX_REASON_LEN];
        if (!line || wx_side_csv_append(rs->dir, "target_ci.csv", header, line, why, sizeof why) != 0) {
            fprintf(stderr, "wxbench: cannot append to %s/target_ci.csv\n", rs->dir);
            free(line);
            break;
        }
        free(line);
    }
    rs->meta.target_ci_missed = missed;
    fprintf(stderr, "wxbench: --target-ci %g%%: %ld configuration%s did not get there (target_ci.csv)\n",
            rs->o->target_ci, missed, missed == 1 ? "" : "s");
}

/* gb.json beside results.csv; on stdout and in --benchmark_out too where
 * asked. */
static int write_gb(run_state *rs)
{
    char path[4200], tmp[4300], host[256] = "";
    snprintf(path, sizeof path, "%s/gb.json", rs->dir);
    snprintf(tmp, sizeof tmp, "%s/.gb.json.tmp", rs->dir);
    gethostname(host, sizeof host - 1);
    wx_gb_context ctx = {
        .date = rs->meta.date, .host_name = host, .executable = rs->o->argv[0], .num_cpus = rs->m.ncpu,
        .library_version = wxgb_version(), .wxbench_version = WX_VERSION, .machine = rs->m.slug,
        .chip = rs->m.chip,
    };
    if (getloadavg(ctx.load_avg, 3) != 3)
        ctx.load_avg[0] = ctx.load_avg[1] = ctx.load_avg[2] = 0;
    FILE *f = fopen(tmp, "w");
    int e = f ? 0 : errno;
    if (f) {
        wx_results_write_gb(&rs->results, &ctx, f);
        e = ferror(f) ? EIO : 0;
        if (fclose(f) != 0 && e == 0)
            e = errno;
        if (e == 0 && rename(tmp, path) != 0)
            e = errno;
        if (e != 0)
            unlink(tmp);
    }
    if (e != 0) {
        fprintf(stderr, "wxbench: cannot write %s: %s\n", path, strerror(e));
        return e;
    }
    if (rs->o->gb_json_stdout) {
        fflush(stdout);
        wx_results_write_gb(&rs->results, &ctx, stdout);
        fflush(stdout);
    }
    if (rs->o->gb_out) {
        FILE *g = fopen(rs->o->gb_out, "w");
        if (g)
            wx_results_write_gb(&rs->results, &ctx, g);
        if (!g || fclose(g) != 0) {
            fprintf(stderr, "wxbench: cannot write %s (--benchmark_out): %s\n", rs->o->gb_out, strerror(errno));
            return EIO;
        }
    }
    return 0;
}

/* The machine's state before timing: runnable tasks that are not ours
 * (sampled 20 times over 200 ms; the median) and the load average. */
static void check_environment(run_state *rs)
{
    wx_meta *m = &rs->meta;
    int samples[20], n = 0;
    for (int i = 0; i < 20; i++) {
        int r = wx_runnable_tasks();
        if (r >= 0)
            samples[n++] = r;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && samples[b - 1] > samples[b]; b--) {
            int t = samples[b];
            samples[b] = samples[b - 1];
            samples[b - 1] = t;
        }
    m->runnable_not_ours = n ? samples[n / 2] - 1 : -1; /* this process is one of them */
    if (getloadavg(m->load, 3) != 3)
        m->load[0] = m->load[1] = m->load[2] = -1;
    int cpus = rs->m.ncpu_allowed > 0 ? rs->m.ncpu_allowed : 1;
    /* The runnable tasks decide where they can be read: the load average
     * trails by a minute and still holds e.g. the build make bench just ran.
     * Where they cannot (no /proc), the load average does. */
    if (m->runnable_not_ours >= 0)
        m->busy = m->runnable_not_ours >= 1;
    else
        m->busy = m->load[0] >= 0.5 * cpus;
    if (m->busy && m->runnable_not_ours >= 0) {
        snprintf(m->busy_warning, sizeof m->busy_warning,
                 "the machine is busy: %d runnable task%s that %s not wxbench (the median of 20 samples over "
                 "200 ms), load average %.2f over the last minute on %d CPU%s; timings will scatter more than on "
                 "an idle machine (compare only within one run, and see the noise summary)",
                 m->runnable_not_ours, m->runnable_not_ours == 1 ? "" : "s",
                 m->runnable_not_ours == 1 ? "is" : "are", m->load[0], cpus, cpus == 1 ? "" : "s");
    } else if (m->busy) {
        snprintf(m->busy_warning, sizeof m->busy_warning,
                 "the machine may be busy: load average %.2f over the last minute on %d CPU%s (runnable tasks "
                 "cannot be counted here); timings will scatter more than on an idle machine (compare only "
                 "within one run, and see the noise summary)",
                 m->load[0], cpus, cpus == 1 ? "" : "s");
        fprintf(stderr, "wxbench: warning: %s\n", m->busy_warning);
    }
}

int wx_run_all(const wx_options *o)
{
    static run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.o = o;
    rs.rng = o->seed;
    wx_machine_describe(&rs.m);
    /* What the system enforces, found once here (some of it in a child
     * process), so that every child of the run inherits the answers. */
    (void)wx_jit_allowlist_enforced(NULL, 0);
    (void)wx_jit_toggle_enforced(NULL, 0);
    if (o->out) {
        snprintf(rs.dir, sizeof rs.dir, "%s", o->out);
    } else {
        /* A binary signed with the hardened runtime (make bench HARDENED=1)
         * says so in its run's name: -hardened, -hardened-allowlist with
         * the jit-write-allowlist entitlement. */
        char stamp[32];
        wx_signing sg;
        wx_signing_describe(&sg);
        utc_stamp(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ");
        snprintf(rs.dir, sizeof rs.dir, "data/%s/%s%s", rs.m.slug, stamp,
                 sg.hardened_runtime != 1 ? "" : sg.jit_write_allowlist == 1 ? "-hardened-allowlist" : "-hardened");
    }
    rs.meta.o = o;
    rs.meta.m = &rs.m;
    rs.meta.dir = rs.dir;
    utc_stamp(rs.meta.date, sizeof rs.meta.date, "%Y-%m-%dT%H:%M:%SZ");

    /* Refuse an unusable output directory before measuring anything. */
    char path[4200];
    snprintf(path, sizeof path, "%s/results.csv", rs.dir);
    if (wx_mkdir_p(rs.dir) != 0) {
        fprintf(stderr, "wxbench: cannot create output directory %s: %s\n", rs.dir, strerror(errno));
        return WX_EXIT_USAGE;
    }
    rs.csv_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (rs.csv_fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "wxbench: %s already exists; refusing to overwrite results (choose another --out)\n",
                    path);
        else
            fprintf(stderr, "wxbench: cannot write %s: %s\n", path, strerror(errno));
        return WX_EXIT_USAGE;
    }
    int werr = wx_write_all(rs.csv_fd, wx_csv_header, strlen(wx_csv_header));
    if (werr != 0) {
        fprintf(stderr, "wxbench: cannot write %s: %s\n", path, strerror(werr));
        return WX_EXIT_USAGE;
    }
    size_t nstrat = wx_strategy_count();
    rs.audits = calloc(nstrat + 1, sizeof *rs.audits);
    rs.audited = calloc(nstrat + 1, sizeof *rs.audited);
    if (!rs.audits || !rs.audited || make_pairs(&rs) != 0) {
        fprintf(stderr, "wxbench: out of memory\n");
        return WX_EXIT_FAILURES;
    }
    /* The schedule. */
    for (size_t p = 0; p < rs.npairs; p++)
        for (int k = 0; k < (rs.pairs[p].supported ? o->repetitions : 1); k++)
            if (add_job(&rs, p) != 0) {
                fprintf(stderr, "wxbench: out of memory\n");
                return WX_EXIT_FAILURES;
            }
    if (!o->no_interleave)
        shuffle_from(&rs, 0);

    /* The CPU each child pins its measuring thread to. */
    rs.meta.measuring_cpu = wx_cpu_for_index(0);
    check_environment(&rs);
    if (wx_meta_write(&rs.meta) != 0)
        return WX_EXIT_USAGE;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* a closed terminal: keep the rows, mark the run interrupted */

    fprintf(stderr, "wxbench %s: %zu pairs, %zu processes (seed %llu%s) on %s (%s); results -> %s\n", WX_VERSION,
            rs.npairs, rs.njobs, (unsigned long long)o->seed, o->no_interleave ? ", not interleaved" : "",
            rs.m.slug, rs.m.chip, path);

    rs.t_start = wx_now_ns();
    for (; rs.done < rs.njobs && !g_interrupted && !rs.stop; rs.done++)
        run_job(&rs, &rs.jobs[rs.done]);
    if (o->target_ci > 0 && !g_interrupted && !rs.stop) {
        run_target_ci(&rs);
        if (!g_interrupted)
            write_target_ci(&rs);
    }
    rs.meta.elapsed_s = (double)(wx_now_ns() - rs.t_start) / 1e9;
    rs.meta.processes = (long)rs.done;
    close(rs.csv_fd);
    long rows = 0;
    for (int s = 0; s < WX_NSTATUS; s++)
        rows += rs.meta.rows.n[s];
    int gb_err = write_gb(&rs);

    if (g_interrupted) {
        rs.meta.interrupted = 1;
        wx_meta_write(&rs.meta);
        fprintf(stderr, "\nwxbench: interrupted; %ld finished rows kept in %s\n", rows, path);
        return WX_EXIT_INTERRUPTED;
    }
    rs.meta.finished = !rs.stop;
    int meta_err = wx_meta_write(&rs.meta);
    const long *n = rs.meta.rows.n;
    fprintf(stderr, "wxbench: %.1f s, %ld processes; rows: %ld ok, %ld unsupported, %ld failed, %ld crashed, "
                    "%ld timeout, %ld interfered\n",
            rs.meta.elapsed_s, rs.meta.processes, n[WX_OK], n[WX_UNSUPPORTED], n[WX_FAILED], n[WX_CRASHED],
            n[WX_TIMEOUT], n[WX_INTERFERED]);
    if (rs.stop)
        fprintf(stderr, "wxbench: the run stopped early: %s (%ld complete rows kept in %s)\n", rs.meta.stopped,
                rows, path);
    if (rs.meta.busy)
        fprintf(stderr, "wxbench: warning: %s\n", rs.meta.busy_warning);
    if (n[WX_INTERFERED])
        fprintf(stderr, "wxbench: %ld row%s interfered: other programs kept a thread of the measurement off its CPU "
                        "in each of %d tries (the reasons are in results.csv); these rows are not drawn or compared. "
                        "A quieter machine (close other programs) gives them values\n",
                n[WX_INTERFERED], n[WX_INTERFERED] == 1 ? "" : "s", WX_MAX_ATTEMPTS);
    /* On stdout only when stdout is not Google Benchmark's JSON document. */
    if (!o->gb_json_stdout)
        printf("results: %s/results.csv\nmeta:    %s/meta.json\n", rs.dir, rs.dir);
    else
        fprintf(stderr, "results: %s/results.csv\nmeta:    %s/meta.json\n", rs.dir, rs.dir);
    return (n[WX_FAILED] || n[WX_CRASHED] || n[WX_TIMEOUT] || rs.stop || meta_err || gb_err) ? WX_EXIT_FAILURES
                                                                                            : WX_EXIT_OK;
}
