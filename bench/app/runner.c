/* runner.c - the parent of a run (runner.h). */
#define _GNU_SOURCE 1
#include "runner.h"
#include "audit.h"
#include "child.h"
#include "csv.h"
#include "meta.h"
#include "proc.h"

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

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Everything the parent keeps over a run. */
typedef struct run_state {
    const wx_options *o;
    wx_machine m;
    wx_meta meta;
    char dir[4096];
    int csv_fd;
    wx_audit *audits;      /* per strategy table index, audited on first need */
    int *audited;
    int stop;              /* results.csv cannot be written: no more children */
} run_state;

/* Append a row the parent writes for a child that could not say it (it
 * died, hung, or could not be started). */
static void parent_row(run_state *rs, const wx_scenario *sc, const wx_strategy *st, const wx_case *c,
                       const char *core_class, int repetition, wx_status status, const char *reason)
{
    const wx_machine *m = &rs->m;
    wx_row r = {
        .machine = m->slug, .chip = m->chip, .os = m->os, .arch = m->arch, .page_size = m->page_size,
        .scenario = sc->name, .strategy = st->name, .c = c, .core_class = core_class, .repetition = repetition,
        .iterations = 0, .ns_per_op = -1, .cycles_per_op = -1, .tlb_per_op = -1, .status = status, .reason = reason,
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

/* The case a child was measuring when it stopped, from its last message. */
typedef struct last_case {
    wx_case c;
    char variant[64];
    char core_class[8];
    int repetition;
} last_case;

/* Run one (scenario, strategy) child; rows go to results.csv. */
static void run_pair(run_state *rs, const wx_scenario *sc, const wx_strategy *st, int index, int total,
                     uint64_t t_start)
{
    const wx_options *o = rs->o;
    uint64_t t0 = wx_now_ns();
    wx_counts before = rs->meta.rows;
    fprintf(stderr, "[%d/%d] %-18s %-16s ", index, total, sc->name, st->name);
    fflush(stderr);

    wx_child_ctx ctx = {
        .o = o, .m = &rs->m, .dir = rs->dir, .csv_fd = rs->csv_fd, .sc = sc, .st = st,
        .audit = sc->needs_audit ? audit_of(rs, st) : NULL,
    };
    last_case last;
    memset(&last, 0, sizeof last);
    last.c = (wx_case){.variant = last.variant, .threads = 1, .batch = 1};
    snprintf(last.core_class, sizeof last.core_class, "any");
    last.repetition = 1;

    wx_proc p;
    int e = wx_proc_start(&p, wx_child_main, &ctx, o->timeout_s * 1000);
    if (e != 0) {
        char reason[WX_REASON_LEN];
        wx_why_errno(reason, sizeof reason, "could not start the child: pipe/fork", e);
        parent_row(rs, sc, st, &last.c, last.core_class, 1, WX_FAILED, reason);
        fprintf(stderr, "FAILED: %s\n", reason);
        return;
    }
    wx_msg msg;
    size_t have = 0;
    int timed_out = 0, lost = 0;
    char io_why[WX_REASON_LEN] = "";
    for (;;) {
        if (g_interrupted)
            break;
        long n = wx_proc_read(&p, (char *)&msg + have, sizeof msg - have, 1000);
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
        if (msg.kind == WX_MSG_ROW && (unsigned)msg.status < WX_NSTATUS) {
            rs->meta.rows.n[msg.status]++;
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
        }
    }
    wx_proc_end end;
    wx_proc_finish(&p, g_interrupted || timed_out || lost, timed_out, &end);
    if (g_interrupted)
        return;

    /* Rows the parent writes for the child. */
    char reason[WX_REASON_LEN * 2];
    const char *where = last.variant[0] ? last.variant : "(before any case started)";
    if (io_why[0]) {
        fprintf(stderr, "\nwxbench: %s; stopping\n", io_why);
        snprintf(rs->meta.stopped, sizeof rs->meta.stopped, "%s", io_why);
        rs->stop = 1;
        return;
    } else if (lost) {
        snprintf(reason, sizeof reason, "stopped: the child could no longer be watched (poll/read: %s) while "
                 "measuring variant %s", strerror(lost), where);
        parent_row(rs, sc, st, &last.c, last.core_class, last.repetition, WX_FAILED, reason);
    } else if (timed_out) {
        snprintf(reason, sizeof reason, "exceeded the per-child limit of %d s while measuring variant %s",
                 o->timeout_s, where);
        parent_row(rs, sc, st, &last.c, last.core_class, last.repetition, WX_TIMEOUT, reason);
    } else if (end.how == WX_PROC_SIGNALED) {
        snprintf(reason, sizeof reason, "%s while measuring variant %s", end.why, where);
        parent_row(rs, sc, st, &last.c, last.core_class, last.repetition, WX_CRASHED, reason);
    } else if (end.how != WX_PROC_EXITED || end.code != 0) {
        snprintf(reason, sizeof reason, "child %s while measuring variant %s", end.why, where);
        parent_row(rs, sc, st, &last.c, last.core_class, last.repetition, WX_FAILED, reason);
    }
    double secs = (double)(wx_now_ns() - t0) / 1e9;
    double all = (double)(wx_now_ns() - t_start) / 1e9;
    const wx_counts *now = &rs->meta.rows;
    fprintf(stderr, "%5.1f s  (total %6.1f s)  ok %ld", secs, all, now->n[WX_OK] - before.n[WX_OK]);
    static const char *const loud[WX_NSTATUS] = {"ok", "unsupported", "FAILED", "CRASHED", "TIMEOUT"};
    for (int s = WX_UNSUPPORTED; s < WX_NSTATUS; s++)
        if (now->n[s] > before.n[s])
            fprintf(stderr, "  %s %ld", loud[s], now->n[s] - before.n[s]);
    fputc('\n', stderr);
}

int wx_run_all(const wx_options *o)
{
    static run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.o = o;
    wx_machine_describe(&rs.m);
    if (o->out) {
        snprintf(rs.dir, sizeof rs.dir, "%s", o->out);
    } else {
        char stamp[32];
        utc_stamp(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ");
        snprintf(rs.dir, sizeof rs.dir, "data/%s/%s", rs.m.slug, stamp);
    }
    rs.meta.o = o;
    rs.meta.m = &rs.m;
    rs.meta.dir = rs.dir;
    utc_stamp(rs.meta.date, sizeof rs.meta.date, "%Y-%m-%dT%H:%M:%SZ");

    /* Refuse an unusable output directory before measuring anything. */
    char path[4200];
    snprintf(path, sizeof path, "%s/results.csv", rs.dir);
    if (mkdir_p(rs.dir) != 0) {
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
    if (!rs.audits || !rs.audited) {
        fprintf(stderr, "wxbench: out of memory\n");
        return WX_EXIT_FAILURES;
    }

    /* The CPU each child pins its measuring thread to. */
    rs.meta.measuring_cpu = wx_cpu_for_index(0);
    if (wx_meta_write(&rs.meta) != 0)
        return WX_EXIT_USAGE;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* a closed terminal: keep the rows, mark the run interrupted */

    /* The pairs to run. */
    int total = 0;
    for (int s = 0; o->scenarios[s]; s++) {
        if (o->scenarios[s]->strategy_free)
            total += wx_options_selected(o, &wx_no_strategy);
        else
            for (size_t k = 0; wx_strategies[k]; k++)
                total += wx_options_selected(o, wx_strategies[k]);
    }
    fprintf(stderr, "wxbench %s: %d runs on %s (%s); results -> %s\n", WX_VERSION, total, rs.m.slug, rs.m.chip,
            path);

    uint64_t t_start = wx_now_ns();
    int index = 0;
    for (int s = 0; o->scenarios[s] && !g_interrupted && !rs.stop; s++) {
        const wx_scenario *sc = o->scenarios[s];
        if (sc->strategy_free) {
            if (wx_options_selected(o, &wx_no_strategy))
                run_pair(&rs, sc, &wx_no_strategy, ++index, total, t_start);
            continue;
        }
        for (size_t k = 0; wx_strategies[k] && !g_interrupted && !rs.stop; k++)
            if (wx_options_selected(o, wx_strategies[k]))
                run_pair(&rs, sc, wx_strategies[k], ++index, total, t_start);
    }
    rs.meta.elapsed_s = (double)(wx_now_ns() - t_start) / 1e9;
    close(rs.csv_fd);
    long rows = 0;
    for (int s = 0; s < WX_NSTATUS; s++)
        rows += rs.meta.rows.n[s];

    if (g_interrupted) {
        rs.meta.interrupted = 1;
        wx_meta_write(&rs.meta);
        fprintf(stderr, "\nwxbench: interrupted; %ld finished rows kept in %s\n", rows, path);
        return WX_EXIT_INTERRUPTED;
    }
    rs.meta.finished = !rs.stop;
    int meta_err = wx_meta_write(&rs.meta);
    const long *n = rs.meta.rows.n;
    fprintf(stderr, "wxbench: %.1f s; rows: %ld ok, %ld unsupported, %ld failed, %ld crashed, %ld timeout\n",
            rs.meta.elapsed_s, n[WX_OK], n[WX_UNSUPPORTED], n[WX_FAILED], n[WX_CRASHED], n[WX_TIMEOUT]);
    if (rs.stop)
        fprintf(stderr, "wxbench: the run stopped early: %s (%ld complete rows kept in %s)\n", rs.meta.stopped,
                rows, path);
    printf("results: %s/results.csv\nmeta:    %s/meta.json\n", rs.dir, rs.dir);
    return (n[WX_FAILED] || n[WX_CRASHED] || n[WX_TIMEOUT] || rs.stop || meta_err) ? WX_EXIT_FAILURES
                                                                                     : WX_EXIT_OK;
}
