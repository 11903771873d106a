/* replay.c - `wxbench replay DIR [--strategy a,b] [--repetitions N]`:
 * re-enact a trace's W^X sequence on this machine under each strategy and
 * say what it costs there.
 *
 * Per traced process, in time order: every code region is created when the
 * trace maps it (or at its first use), with its size, placed right next to
 * the code region it was mapped next to where the trace says so, and its
 * resident pages written (a stub on each); every protection call on code
 * (mprotect, pkey_mprotect) is a switch, re-enacted on the same offset and
 * length by the same thread (one replay thread per traced thread, in the
 * traced order):
 *
 *   mprotect   the traced call itself: mprotect(same range, same protection)
 *   others     a range made writable: begin_write on that range; made
 *              executable (not writable): end_write on it; made neither
 *              (decommit, PROT_NONE): nothing, not timed; writable and
 *              executable at once: begin_write where the strategy allows it
 *              (rwx, dualmap, pkey), else unsupported.
 *
 * In each writable window a stub is written on every page the window
 * covers (the write is as large as the window); when those pages are
 * executable again each stub is called and its value checked: a wrong value
 * makes the strategy's row `failed`. predicted_ns is the time in the
 * re-enacted switch calls only (each timed alone, one clock read included,
 * as the interposer timed the traced calls); writes, checks and region
 * set-up are not in it. Each repetition is a process of its own; with
 * repetitions > 1 the row holds the median and its 95% interval. */
#define _GNU_SOURCE 1
#include "trace.h"
#include "csv.h"
#include "options.h"
#include "../core/proc.h"
#include "stats.h"
#include "../core/stub_pages.h"
#include "../core/wx.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define MAX_FIELDS 16

/* ------------------------------------------------------------------------
 * Reading the trace
 * --------------------------------------------------------------------- */

enum { EV_MMAP, EV_MUNMAP, EV_PROTECT, EV_MADVISE };

/* One event of the replay (a row of trace.csv it re-enacts). */
typedef struct event {
    int process, thread;
    int kind;                 /* EV_* */
    uint32_t region;
    uint64_t off, len;
    int prot_before, prot_after; /* PROT_* bits; -1 unknown / mixed / unmapped */
    uint64_t t, dur;          /* traced start (ns from the trace's start) and ns in the call */
    int adj_below, adj_above; /* mmap: code regions it was mapped next to */
    int advice;               /* madvise: MADV_DONTNEED etc. (-1 other) */
    long line;                /* in trace.csv */
} event;

/* One code region of one process (regions.csv). */
typedef struct rinfo {
    int process;
    uint32_t region;
    uint64_t size;
    uint64_t (*runs)[2];      /* resident [off, off + len) */
    size_t nruns;
} rinfo;

typedef struct trace {
    event *ev;
    size_t nev;
    rinfo *reg;
    size_t nreg;
    int nprocess;
    int *threads_of;          /* per process (1-based), the highest thread number */
    uint64_t traced_ns;       /* in the switches */
    long jit_calls;           /* macOS pthread_jit_* rows (not re-enacted) */
    long switches;
    char dir[4096];
} trace;

/* Split one CSV line (RFC 4180, no embedded newlines) into fields, in place. */
static int split_csv(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return -1;
        if (*p == '"') {
            char *w = ++p;
            f[n++] = w;
            for (;;) {
                if (*p == 0)
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            *w = 0;
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == 0)
                return n;
            return -1;
        }
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            return n;
        *c = 0;
        p = c + 1;
    }
}

static int bad(const char *file, long line, const char *what)
{
    if (line > 0)
        fprintf(stderr, "wxbench replay: %s:%ld: %s\n", file, line, what);
    else
        fprintf(stderr, "wxbench replay: %s: %s\n", file, what);
    return -1;
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    if (!s[0] || s[0] == '-')
        return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

static int parse_int(const char *s, int *v)
{
    uint64_t x;
    if (parse_u64(s, &x) != 0 || x > 1000000000u)
        return -1;
    *v = (int)x;
    return 0;
}

/* "r-x" -> PROT bits; "?", "mixed", "unmapped" -> -1; else -2 (bad). */
static int parse_prot(const char *s)
{
    if (strcmp(s, "?") == 0 || strcmp(s, "mixed") == 0 || strcmp(s, "unmapped") == 0 || !s[0])
        return -1;
    if (strlen(s) != 3 || (s[0] != 'r' && s[0] != '-') || (s[1] != 'w' && s[1] != '-') ||
        (s[2] != 'x' && s[2] != '-'))
        return -2;
    return (s[0] == 'r' ? PROT_READ : 0) | (s[1] == 'w' ? PROT_WRITE : 0) | (s[2] == 'x' ? PROT_EXEC : 0);
}

static int detail_id(const char *detail, const char *key)
{
    const char *p = strstr(detail, key);
    return p ? atoi(p + strlen(key)) : 0;
}

/* Read a whole file's lines: returns a malloc'd buffer, lines split at \n. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static int read_trace(const char *dir, trace *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    char path[4200];
    size_t len;

    /* trace.csv */
    snprintf(path, sizeof path, "%s/%s", dir, WX_TRACE_CSV);
    char *buf = slurp(path, &len);
    if (!buf)
        return bad(path, 0, errno == ENOENT ? "missing (not a trace directory: run wxbench trace first)"
                                            : strerror(errno));
    char *save = NULL;
    long line = 0;
    size_t cap = 0;
    int maxproc = 0;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t ll = strlen(l);
        if (ll && l[ll - 1] == '\r')
            l[ll - 1] = 0;
        if (line == 1) {
            char want[512];
            snprintf(want, sizeof want, "%s", WX_TRACE_HEADER);
            want[strlen(want) - 1] = 0;
            if (strcmp(l, want) != 0) {
                free(buf);
                return bad(path, 1, "not a trace.csv header (expected: " WX_TRACE_HEADER ")");
            }
            continue;
        }
        char *f[MAX_FIELDS];
        int n = split_csv(l, f, MAX_FIELDS);
        if (n != 13) {
            free(buf);
            return bad(path, line, "expected 13 fields");
        }
        event e;
        memset(&e, 0, sizeof e);
        e.line = line;
        if (parse_int(f[0], &e.process) != 0 || e.process < 1 || parse_int(f[1], &e.thread) != 0 || e.thread < 1 ||
            parse_u64(f[2], &e.t) != 0 || parse_u64(f[3], &e.dur) != 0 || parse_u64(f[8], &e.len) != 0) {
            free(buf);
            return bad(path, line, "process, thread, time_ns, duration_ns and length must be whole numbers "
                                   "(process and thread from 1)");
        }
        const char *call = f[4];
        if (strcmp(call, "mmap") == 0)
            e.kind = EV_MMAP;
        else if (strcmp(call, "munmap") == 0)
            e.kind = EV_MUNMAP;
        else if (strcmp(call, "mprotect") == 0 || strcmp(call, "pkey_mprotect") == 0 ||
                 strcmp(call, "vm_protect") == 0)
            e.kind = EV_PROTECT;
        else if (strcmp(call, "madvise") == 0)
            e.kind = EV_MADVISE;
        else {
            /* pkey_alloc, membarrier, ...: nothing to re-enact. The macOS
             * JIT calls are switches without a range: counted, to say so. */
            if (strncmp(call, "pthread_jit_", 12) == 0)
                t->jit_calls++;
            continue;
        }
        if (!f[5][0])
            continue; /* not on a region (a failed mmap) */
        uint64_t region, rsize;
        if (parse_u64(f[5], &region) != 0 || region == 0 || region > UINT32_MAX || parse_u64(f[6], &rsize) != 0 ||
            parse_u64(f[7], &e.off) != 0) {
            free(buf);
            return bad(path, line, "region, region_size and offset must be whole numbers");
        }
        e.region = (uint32_t)region;
        e.prot_before = parse_prot(f[9]);
        e.prot_after = parse_prot(f[10]);
        if (e.prot_before == -2 || e.prot_after == -2) {
            free(buf);
            return bad(path, line, "prot_before/prot_after must be like r-x, rw-, ---, ?, mixed or unmapped");
        }
        if (strcmp(f[12], "0") != 0)
            continue; /* the call failed: it changed nothing */
        if (e.kind == EV_MMAP) {
            e.adj_below = detail_id(f[11], "below=");
            e.adj_above = detail_id(f[11], "above=");
            e.len = rsize;
        }
        if (e.kind == EV_MADVISE)
            e.advice = strstr(f[11], "MADV_DONTNEED") ? MADV_DONTNEED : -1;
        if (e.kind == EV_PROTECT) {
            t->switches++;
            t->traced_ns += e.dur;
        }
        if (t->nev == cap) {
            cap = cap ? cap * 2 : 4096;
            event *ne = realloc(t->ev, cap * sizeof *ne);
            if (!ne) {
                free(buf);
                return bad(path, line, "out of memory");
            }
            t->ev = ne;
        }
        t->ev[t->nev++] = e;
        if (e.process > maxproc)
            maxproc = e.process;
    }
    free(buf);
    if (line < 1)
        return bad(path, 1, "empty (no header)");
    t->nprocess = maxproc;
    t->threads_of = calloc((size_t)maxproc + 1, sizeof *t->threads_of);
    for (size_t i = 0; i < t->nev; i++)
        if (t->ev[i].thread > t->threads_of[t->ev[i].process])
            t->threads_of[t->ev[i].process] = t->ev[i].thread;

    /* regions.csv */
    snprintf(path, sizeof path, "%s/%s", dir, WX_TRACE_REGIONS_CSV);
    buf = slurp(path, &len);
    if (!buf)
        return bad(path, 0, errno == ENOENT ? "missing (every trace directory has one)" : strerror(errno));
    line = 0;
    cap = 0;
    save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (line == 1) {
            char want[256];
            snprintf(want, sizeof want, "%s", WX_TRACE_REGIONS_HEADER);
            want[strlen(want) - 1] = 0;
            if (strcmp(l, want) != 0) {
                free(buf);
                return bad(path, 1, "not a regions.csv header (expected: " WX_TRACE_REGIONS_HEADER ")");
            }
            continue;
        }
        char *f[MAX_FIELDS];
        int n = split_csv(l, f, MAX_FIELDS);
        rinfo r;
        memset(&r, 0, sizeof r);
        uint64_t id, resident;
        if (n != 5 || parse_int(f[0], &r.process) != 0 || parse_u64(f[1], &id) != 0 || id > UINT32_MAX ||
            parse_u64(f[2], &r.size) != 0 || parse_u64(f[3], &resident) != 0) {
            free(buf);
            return bad(path, line, "expected process,region,size,resident_bytes,resident with whole numbers");
        }
        r.region = (uint32_t)id;
        /* "off:len off:len ..." */
        size_t nr = 1;
        for (const char *p = f[4]; *p; p++)
            nr += *p == ' ';
        r.runs = calloc(nr, sizeof *r.runs);
        char *s2 = NULL;
        for (char *tok = strtok_r(f[4], " ", &s2); tok; tok = strtok_r(NULL, " ", &s2)) {
            char *colon = strchr(tok, ':');
            uint64_t o, L;
            if (!colon || (*colon = 0, parse_u64(tok, &o) != 0) || parse_u64(colon + 1, &L) != 0 ||
                o + L > r.size) {
                free(buf);
                return bad(path, line, "resident must be offset:length runs inside the region");
            }
            r.runs[r.nruns][0] = o;
            r.runs[r.nruns][1] = o + L;
            r.nruns++;
        }
        if (t->nreg == cap) {
            cap = cap ? cap * 2 : 64;
            t->reg = realloc(t->reg, cap * sizeof *t->reg);
        }
        t->reg[t->nreg++] = r;
    }
    free(buf);
    if (line < 1)
        return bad(path, 1, "empty (no header)");
    /* Every region a row uses has its size. */
    for (size_t i = 0; i < t->nev; i++) {
        int found = 0;
        for (size_t k = 0; k < t->nreg && !found; k++)
            found = t->reg[k].process == t->ev[i].process && t->reg[k].region == t->ev[i].region;
        if (!found) {
            char what[160];
            snprintf(what, sizeof what, "region %u of process %d is not in %s", t->ev[i].region, t->ev[i].process,
                     WX_TRACE_REGIONS_CSV);
            snprintf(path, sizeof path, "%s/%s", dir, WX_TRACE_CSV);
            return bad(path, t->ev[i].line, what);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Re-enacting it (in a child per strategy and repetition)
 * --------------------------------------------------------------------- */

/* One replayed region. */
typedef struct rregion {
    const rinfo *info;
    int live;
    wx_region r;              /* the strategy's region (mprotect: our own mapping, r.write == r.exec) */
    size_t pages;
    uint32_t *want;           /* per page: value its stub must return once executable (0: nothing pending) */
    uint32_t *value;          /* per page: value its stub returns now (0: no stub) */
    size_t *pend;             /* pages whose want is set, in no order (may hold checked ones) */
    size_t npend, cappend;
    int opener;               /* thread that opened the pending window (per-thread strategies) */
} rregion;

typedef struct replay {
    const trace *t;
    const wx_strategy *s;
    int literal;              /* re-enact the traced calls themselves (mprotect) */
    size_t page;
    rregion *rr;              /* per rinfo */
    uint64_t ns;              /* in switch calls */
    long switches;
    uint32_t next_value;
    int status;               /* WX_OK, WX_UNSUPPORTED, WX_FAILED */
    char why[WX_REASON_LEN];
    /* threads */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t cursor;            /* next event to run */
    int process;              /* the process being replayed */
} replay;

static rregion *lookup(replay *p, int process, uint32_t region)
{
    for (size_t k = 0; k < p->t->nreg; k++)
        if (p->t->reg[k].process == process && p->t->reg[k].region == region)
            return &p->rr[k];
    return NULL;
}

static int fail(replay *p, int status, const event *e, const char *fmt, const char *what, int err)
{
    if (p->status != WX_OK)
        return -1;
    p->status = status;
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, what, err ? strerror(err) : "");
    if (e)
        snprintf(p->why, sizeof p->why, "trace.csv line %ld: %.200s", e->line, msg);
    else
        snprintf(p->why, sizeof p->why, "%.250s", msg);
    return -1;
}

static uint64_t now(void)
{
    return wx_now_ns();
}

static void pend_add(rregion *rr, size_t i)
{
    if (rr->npend == rr->cappend) {
        size_t cap = rr->cappend ? rr->cappend * 2 : 64;
        size_t *n = realloc(rr->pend, cap * sizeof *n);
        if (!n)
            return; /* not checked: only the check is lost */
        rr->pend = n;
        rr->cappend = cap;
    }
    rr->pend[rr->npend++] = i;
}

/* Write the stub of page i of rr through its write view (the page must be
 * writable for this thread), to be checked once executable. */
static void write_stub(replay *p, rregion *rr, size_t i, int injectable)
{
    uint32_t v = ++p->next_value;
    if (v == 0)
        v = p->next_value = 1;
    /* Test builds: under skip_write the write never reaches the region. */
    static unsigned char scratch[64];
    unsigned char *dst = injectable && wx_injected(WX_INJ_SKIP_WRITE) ? scratch : wx_page_stub(rr->r.write, i, p->page);
    wx_emit_stub(dst, wx_stub_size(), v);
    if (!rr->want[i])
        pend_add(rr, i);
    rr->want[i] = v;
}

/* A stub call for wx_try. */
typedef struct stub_call {
    void *at;
    uint32_t got;
} stub_call;

static void call_stub(void *arg)
{
    stub_call *c = arg;
    c->got = wx_page_stub_call(c->at);
}

/* Check the pending stubs of pages [a, b) of rr (executable for this thread now). */
static int check_stubs(replay *p, rregion *rr, size_t a, size_t b, const event *e)
{
    size_t keep = 0;
    for (size_t k = 0; k < rr->npend; k++) {
        size_t i = rr->pend[k];
        if (!rr->want[i])
            continue;
        if (i < a || i >= b || i >= rr->pages) {
            rr->pend[keep++] = i;
            continue;
        }
        unsigned char *x = wx_page_stub(rr->r.exec, i, p->page);
        wx_icache_flush(wx_page_stub(rr->r.write, i, p->page), x, wx_stub_size());
        stub_call c = {.at = x, .got = 0};
        int sig = wx_try(call_stub, &c);
        uint32_t got = c.got;
        if (sig) {
            wx_jit_thread_reset();
            char what[160];
            snprintf(what, sizeof what, "calling the stub written on page %zu of region %u raised %s", i,
                     rr->info->region, wx_signal_name(sig));
            return fail(p, WX_FAILED, e, "verification failed: %s%s", what, 0);
        }
        if (got != rr->want[i]) {
            char what[160];
            snprintf(what, sizeof what, "the stub written on page %zu of region %u returned %#x, expected %#x", i,
                     rr->info->region, got, rr->want[i]);
            return fail(p, WX_FAILED, e, "verification failed: %s%s", what, 0);
        }
        rr->value[i] = got;
        rr->want[i] = 0;
    }
    rr->npend = keep;
    return 0;
}

/* Where region rr should go: right below/above the code region the trace
 * mapped it next to, when that one is live here. */
static void *placement(replay *p, const event *e, size_t size)
{
    if (!e)
        return NULL;
    if (e->adj_above) {
        rregion *n = lookup(p, e->process, (uint32_t)e->adj_above);
        if (n && n->live)
            return (char *)n->r.exec - size;
    }
    if (e->adj_below) {
        rregion *n = lookup(p, e->process, (uint32_t)e->adj_below);
        if (n && n->live)
            return (char *)n->r.exec + n->r.size;
    }
    return NULL;
}

/* Create rr (untimed): mapped, its resident pages written, left in prot
 * (literal) or executable (strategies). */
static int create(replay *p, rregion *rr, const event *e, int prot)
{
    const rinfo *ri = rr->info;
    size_t size = (size_t)((ri->size + p->page - 1) / p->page * p->page);
    rr->pages = size / p->page;
    if (!rr->want) {
        rr->want = calloc(rr->pages ? rr->pages : 1, sizeof *rr->want);
        rr->value = calloc(rr->pages ? rr->pages : 1, sizeof *rr->value);
        if (!rr->want || !rr->value)
            return fail(p, WX_FAILED, e, "out of memory for region pages%s%s", "", 0);
    } else {
        memset(rr->want, 0, rr->pages * sizeof *rr->want);
        memset(rr->value, 0, rr->pages * sizeof *rr->value);
        rr->npend = 0;
    }
    if (p->literal) {
        void *want = placement(p, e, size);
        void *a = mmap(want, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (want ? MAP_FIXED_NOREPLACE : 0),
                       -1, 0);
        if (a == MAP_FAILED && want)
            a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (a == MAP_FAILED)
            return fail(p, WX_FAILED, e, "mmap(region): %s%s", strerror(errno), 0);
        wx_region_set(&rr->r, a, a, size);
        for (size_t k = 0; k < ri->nruns; k++)
            for (uint64_t o = ri->runs[k][0]; o < ri->runs[k][1]; o += p->page)
                write_stub(p, rr, (size_t)(o / p->page), 0);
        if (prot < 0)
            prot = PROT_READ | PROT_EXEC;
        if (mprotect(a, size, prot) != 0)
            return fail(p, WX_FAILED, e, "mprotect(region, initial protection): %s%s", strerror(errno), 0);
        if (prot & PROT_EXEC)
            for (size_t k = 0; k < ri->nruns; k++)
                if (check_stubs(p, rr, (size_t)(ri->runs[k][0] / p->page), (size_t)(ri->runs[k][1] / p->page), e))
                    return -1;
    } else {
        char why[WX_REASON_LEN];
        int err = p->s->map(&rr->r, size, why, sizeof why);
        if (err)
            return fail(p, WX_UNSUPPORTED, e, "map: %s%s", why, 0);
        /* The resident pages, written in one window of the whole region. */
        unsigned char *img = calloc(1, size);
        if (!img)
            return fail(p, WX_FAILED, e, "out of memory for a region image%s%s", "", 0);
        int any = 0;
        for (size_t k = 0; k < ri->nruns; k++)
            for (uint64_t o = ri->runs[k][0]; o < ri->runs[k][1]; o += p->page) {
                size_t i = (size_t)(o / p->page);
                uint32_t v = ++p->next_value;
                wx_emit_stub(wx_page_stub(img, i, p->page), wx_stub_size(), v);
                if (!rr->want[i])
                    pend_add(rr, i);
                rr->want[i] = v;
                any = 1;
            }
        err = any ? wx_write_code(p->s, &rr->r, 0, img, size) : 0;
        free(img);
        if (err)
            return fail(p, WX_FAILED, e, "writing the resident pages: %s%s", strerror(err), 0);
        for (size_t k = 0; k < ri->nruns; k++)
            if (check_stubs(p, rr, (size_t)(ri->runs[k][0] / p->page), (size_t)(ri->runs[k][1] / p->page), e))
                return -1;
    }
    rr->live = 1;
    rr->opener = 0;
    return 0;
}

static void destroy(replay *p, rregion *rr)
{
    if (!rr->live)
        return;
    if (p->literal)
        munmap(rr->r.exec, rr->r.size);
    else
        p->s->unmap(&rr->r);
    rr->live = 0;
}

/* One switch: the range [a, b) pages of rr made prot. */
static int do_switch(replay *p, rregion *rr, const event *e)
{
    const uint64_t off = e->off, len = e->len;
    uint64_t end = off + ((len + p->page - 1) / p->page) * p->page;
    if (end > rr->r.size)
        end = rr->r.size;
    if (off >= end)
        return 0;
    const size_t a = (size_t)(off / p->page), b = (size_t)(end / p->page);
    int prot = e->prot_after;
    wx_region sub = rr->r;
    sub.write = (char *)rr->r.write + off;
    sub.exec = (char *)rr->r.exec + off;
    sub.size = (size_t)(end - off);
    const int w = prot >= 0 && (prot & PROT_WRITE), x = prot >= 0 && (prot & PROT_EXEC);
    int err = 0;
    p->switches++;
    if (p->literal) {
        uint64_t t0 = now();
        int rc = mprotect(sub.exec, sub.size, prot < 0 ? PROT_READ | PROT_EXEC : prot);
        uint64_t t1 = now();
        err = rc ? errno : 0;
        p->ns += t1 - t0;
        if (err)
            return fail(p, WX_FAILED, e, "mprotect: %s%s", strerror(err), 0);
    } else if (w && x && !(p->s->flags & (WX_NO_SWITCH | WX_PER_THREAD))) {
        return fail(p, WX_UNSUPPORTED, e,
                    "the trace makes code writable and executable at once, which %s cannot express%s", p->s->name, 0);
    } else if (w) {
        uint64_t t0 = now();
        err = p->s->begin_write(&sub);
        uint64_t t1 = now();
        p->ns += t1 - t0;
        if (err)
            return fail(p, WX_FAILED, e, "begin_write: %s%s", strerror(err), 0);
        rr->opener = e->thread;
    } else if (x) {
        if ((p->s->flags & WX_PER_THREAD) && rr->opener && rr->opener != e->thread)
            return fail(p, WX_UNSUPPORTED, e, "a thread makes executable what another thread made writable, which "
                        "a per-thread switch (%s) cannot express%s", p->s->name, 0);
        uint64_t t0 = now();
        err = p->s->end_write(&sub);
        uint64_t t1 = now();
        p->ns += t1 - t0;
        if (err)
            return fail(p, WX_FAILED, e, "end_write: %s%s", strerror(err), 0);
        rr->opener = 0;
    } else {
        p->switches--; /* decommit-like: no counterpart, not timed */
    }
    if (w) {
        /* The window's write: a stub on every page it covers. */
        for (size_t i = a; i < b; i++)
            write_stub(p, rr, i, 1);
    }
    if (x && !w)
        return check_stubs(p, rr, a, b, e);
    return 0;
}

/* Between two events the traced program did other work (compiling,
 * running code) for the traced gap: the replay spends the same time
 * writing through a buffer larger than the caches, so that each switch
 * finds the caches and TLB as cold as the program left them and is exposed
 * to the machine's interruptions for as long (gaps over PACE_MAX_NS are cut
 * to it). */
#define PACE_BYTES (8u << 20)
#define PACE_MAX_NS 20000000u
static unsigned char *g_pace;
static int g_no_pace; /* --no-pace */
static size_t g_pace_at;

static void pace(const event *prev, const event *e)
{
    if (g_no_pace || !prev || prev->process != e->process || e->t <= prev->t + prev->dur)
        return;
    uint64_t gap = e->t - prev->t - prev->dur;
    if (gap > PACE_MAX_NS)
        gap = PACE_MAX_NS;
    if (!g_pace) {
        g_pace = mmap(NULL, PACE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (g_pace == MAP_FAILED) {
            g_pace = NULL;
            return;
        }
        memset(g_pace, 1, PACE_BYTES);
    }
    uint64_t until = now() + gap;
    do {
        for (int k = 0; k < 64; k++) {
            g_pace[g_pace_at] += 1;
            g_pace_at = (g_pace_at + 64) % PACE_BYTES;
        }
    } while (now() < until);
}

static int run_event(replay *p, const event *e)
{
    rregion *rr = lookup(p, e->process, e->region);
    if (!rr)
        return fail(p, WX_FAILED, e, "unknown region%s%s", "", 0);
    switch (e->kind) {
    case EV_MMAP:
        if (rr->live)
            destroy(p, rr);
        return create(p, rr, e, e->prot_after);
    case EV_MUNMAP:
        if (rr->live && e->off == 0 && e->len >= rr->r.size)
            destroy(p, rr);
        return 0;
    case EV_MADVISE:
        if (rr->live && p->literal && e->advice == MADV_DONTNEED && e->off < rr->r.size)
            madvise((char *)rr->r.exec + e->off,
                    (size_t)(e->len < rr->r.size - e->off ? e->len : rr->r.size - e->off), MADV_DONTNEED);
        return 0;
    default:
        if (!rr->live && create(p, rr, NULL, e->prot_before) != 0)
            return -1;
        return do_switch(p, rr, e);
    }
}

/* A replay thread: runs the events of its traced thread, in the traced order. */
typedef struct rthread {
    replay *p;
    int thread;
    pthread_t id;
} rthread;

static void *thread_main(void *arg)
{
    rthread *rt = arg;
    replay *p = rt->p;
    wx_jit_thread_reset();
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->cursor < p->t->nev && p->t->ev[p->cursor].process == p->process &&
               p->t->ev[p->cursor].thread != rt->thread && p->status == WX_OK)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->cursor >= p->t->nev || p->t->ev[p->cursor].process != p->process || p->status != WX_OK)
            break;
        const event *e = &p->t->ev[p->cursor];
        pthread_mutex_unlock(&p->mu);
        if (p->cursor > 0 && p->t->ev[p->cursor - 1].thread == e->thread)
            pace(&p->t->ev[p->cursor - 1], e);
        run_event(p, e);
        pthread_mutex_lock(&p->mu);
        p->cursor++;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

typedef struct job {
    const trace *t;
    const wx_strategy *s;
} job;

/* The child: replay every process of the trace; write
 * "status\tswitches\tns\treason" to fd. */
static int replay_child(void *arg, int fd)
{
    job *j = arg;
    replay p;
    memset(&p, 0, sizeof p);
    p.t = j->t;
    p.s = j->s;
    p.literal = strcmp(j->s->name, "mprotect") == 0;
    p.page = (size_t)sysconf(_SC_PAGESIZE);
    p.status = WX_OK;
    p.rr = calloc(j->t->nreg ? j->t->nreg : 1, sizeof *p.rr);
    for (size_t k = 0; k < j->t->nreg; k++)
        p.rr[k].info = &j->t->reg[k];
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    wx_jit_thread_reset();
    size_t i = 0;
    while (i < j->t->nev && p.status == WX_OK) {
        p.process = j->t->ev[i].process;
        int nthreads = j->t->threads_of[p.process];
        p.cursor = i;
        int single = 1;
        for (size_t k = i; k < j->t->nev && j->t->ev[k].process == p.process; k++)
            if (j->t->ev[k].thread != j->t->ev[i].thread)
                single = 0;
        if (single) {
            while (p.cursor < j->t->nev && j->t->ev[p.cursor].process == p.process && p.status == WX_OK) {
                if (p.cursor > i)
                    pace(&j->t->ev[p.cursor - 1], &j->t->ev[p.cursor]);
                run_event(&p, &j->t->ev[p.cursor++]);
            }
        } else {
            rthread *th = calloc((size_t)nthreads, sizeof *th);
            for (int k = 0; k < nthreads; k++) {
                th[k] = (rthread){.p = &p, .thread = k + 1};
                pthread_create(&th[k].id, NULL, thread_main, &th[k]);
            }
            for (int k = 0; k < nthreads; k++)
                pthread_join(th[k].id, NULL);
            free(th);
        }
        /* End of this process: what is still pending, checked once executable. */
        for (size_t k = 0; k < j->t->nreg; k++) {
            rregion *rr = &p.rr[k];
            if (rr->info->process != p.process || !rr->live)
                continue;
            if (p.status == WX_OK) {
                if (rr->npend) {
                    int err = p.literal ? (mprotect(rr->r.exec, rr->r.size, PROT_READ | PROT_EXEC) ? errno : 0)
                                        : p.s->end_write(&rr->r);
                    if (err == 0)
                        check_stubs(&p, rr, 0, rr->pages, NULL);
                }
            }
            destroy(&p, rr);
        }
        while (i < j->t->nev && j->t->ev[i].process == p.process)
            i++;
    }
    char out[WX_REASON_LEN + 96];
    int n = snprintf(out, sizeof out, "%d\t%ld\t%llu\t%s", p.status, p.switches, (unsigned long long)p.ns, p.why);
    return write(fd, out, (size_t)n) == n ? 0 : 3;
}

/* ------------------------------------------------------------------------
 * The command
 * --------------------------------------------------------------------- */

typedef struct sres {
    const wx_strategy *s;
    int status;
    char why[WX_REASON_LEN];
    long switches;
    double *ns;
    size_t n;
} sres;

static int usage(const char *fmt, const char *arg)
{
    fputs("wxbench replay: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nusage: wxbench replay DIR [--strategy a,b] [--repetitions N]\n", stderr);
    return WX_EXIT_USAGE;
}

int wx_replay_main(int argc, char **argv)
{
    const char *dir = NULL;
    const wx_strategy *sel[WX_MAX_SELECTED + 1] = {0};
    size_t nsel = 0;
    long reps = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs("usage: wxbench replay DIR [--strategy a,b] [--repetitions N] [--no-pace]\n"
                  "Re-enacts the W^X calls of the trace in DIR (wxbench trace) under each strategy on this machine\n"
                  "and writes DIR/replay.csv: strategy,status,reason,switches,predicted_ns,traced_ns,ratio\n"
                  "(with --repetitions N > 1: the median of N processes and its 95% interval).\n"
                  "--no-pace: run the switches back to back instead of spending the traced gaps between them\n"
                  "writing through an 8 MiB buffer (the program's other work: cold caches and TLB).\n",
                  stdout);
            return WX_EXIT_OK;
        }
        if (strcmp(a, "--no-pace") == 0) {
            g_no_pace = 1;
            continue;
        }
        if (strncmp(a, "--strategy", 10) == 0 || strncmp(a, "--repetitions", 13) == 0) {
            const char *eq = strchr(a, '=');
            v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !v[0])
                return usage("%s needs a value", a);
            if (strncmp(a, "--strategy", 10) == 0) {
                char *copy = strdup(v), *save = NULL;
                for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                    const wx_strategy *s = wx_strategy_find(tok);
                    if (!s) {
                        fprintf(stderr, "wxbench replay: unknown strategy '%s'\n", tok);
                        wx_list_names(stderr);
                        free(copy);
                        return WX_EXIT_USAGE;
                    }
                    int dup = 0;
                    for (size_t k = 0; k < nsel; k++)
                        dup |= sel[k] == s;
                    if (!dup && nsel < WX_MAX_SELECTED)
                        sel[nsel++] = s;
                }
                free(copy);
            } else {
                char *end;
                errno = 0;
                reps = strtol(v, &end, 10);
                if (errno || *end || reps < 1 || reps > 1000)
                    return usage("--repetitions needs a whole number from 1 to 1000, not '%s'", v);
            }
        } else if (a[0] == '-') {
            return usage("unknown option '%s'", a);
        } else if (!dir) {
            dir = a;
        } else {
            return usage("one trace directory only ('%s')", a);
        }
    }
    if (!dir)
        return usage("no trace directory%s", "");
    if (nsel == 0)
        for (size_t i = 0; wx_strategies[i] && nsel < WX_MAX_SELECTED; i++)
            sel[nsel++] = wx_strategies[i];

    static trace t;
    if (read_trace(dir, &t) != 0)
        return WX_EXIT_USAGE;
    char out[4200];
    snprintf(out, sizeof out, "%s/%s", dir, WX_REPLAY_CSV);
    FILE *probe = fopen(out, "a");
    if (!probe) {
        fprintf(stderr, "wxbench replay: cannot write %s: %s\n", out, strerror(errno));
        return WX_EXIT_USAGE;
    }
    fclose(probe);

    if (t.switches == 0 && t.jit_calls > 0)
        fprintf(stderr, "wxbench replay: warning: the trace switches W^X with pthread_jit_write_protect_np / "
                "pthread_jit_write_with_callback_np (%ld calls): they switch every MAP_JIT region of a thread and "
                "have no range, and are not re-enacted; only mprotect-like calls are\n", t.jit_calls);
    sres *res = calloc(nsel, sizeof *res);
    for (size_t k = 0; k < nsel; k++) {
        res[k].s = sel[k];
        res[k].ns = calloc((size_t)reps, sizeof *res[k].ns);
        res[k].status = WX_OK;
        char why[WX_REASON_LEN] = "";
        if (!wx_strategy_supported(sel[k], why, sizeof why)) {
            res[k].status = WX_UNSUPPORTED;
            snprintf(res[k].why, sizeof res[k].why, "%s", why);
        }
    }
    /* Repetitions interleaved: each round runs every strategy once, in a
     * rotating order, each in a fresh process. */
    for (long r = 0; r < reps; r++)
        for (size_t q = 0; q < nsel; q++) {
            sres *x = &res[(q + (size_t)r) % nsel];
            if (x->status != WX_OK)
                continue;
            job j = {.t = &t, .s = x->s};
            char buf[WX_REASON_LEN + 128];
            wx_proc_end end;
            size_t n = wx_proc_call(replay_child, &j, buf, sizeof buf - 1, 3600 * 1000, &end);
            buf[n] = 0;
            int st = -1;
            long sw = 0;
            unsigned long long ns = 0;
            char *tab = strchr(buf, '\t');
            if (end.how == WX_PROC_EXITED && end.code == 0 && sscanf(buf, "%d\t%ld\t%llu", &st, &sw, &ns) == 3 &&
                tab) {
                char *why = strchr(tab + 1, '\t');
                why = why ? strchr(why + 1, '\t') : NULL;
                x->status = st;
                x->switches = sw;
                if (st == WX_OK)
                    x->ns[x->n++] = (double)ns;
                else
                    snprintf(x->why, sizeof x->why, "%s", why ? why + 1 : "");
            } else {
                x->status = end.how == WX_PROC_SIGNALED ? WX_CRASHED : end.how == WX_PROC_TIMED_OUT ? WX_TIMEOUT
                                                                                                  : WX_FAILED;
                snprintf(x->why, sizeof x->why, "the replay process %.200s", end.why);
            }
        }

    /* replay.csv and the table. */
    FILE *f = fopen(out, "w");
    if (!f) {
        fprintf(stderr, "wxbench replay: cannot write %s: %s\n", out, strerror(errno));
        return WX_EXIT_FAILURES;
    }
    fputs("strategy,status,reason,switches,predicted_ns,traced_ns,ratio", f);
    if (reps > 1)
        fputs(",repetitions,predicted_ns_low,predicted_ns_high,ratio_low,ratio_high", f);
    fputc('\n', f);
    printf("replay of %s: %ld switches, %.3f ms traced in them\n", dir, t.switches, t.traced_ns / 1e6);
    printf("  %-16s %-12s %10s %14s %14s %8s%s\n", "strategy", "status", "switches", "predicted (ms)", "traced (ms)",
           "ratio", reps > 1 ? "  95% interval of the ratio" : "");
    int any_failed = 0;
    for (size_t k = 0; k < nsel; k++) {
        sres *x = &res[k];
        wx_median_ci ci;
        memset(&ci, 0, sizeof ci);
        if (x->status == WX_OK)
            wx_median_ci_of(x->ns, x->n, &ci);
        double tr = (double)t.traced_ns;
        wx_csv_field(f, x->s->name);
        fprintf(f, ",%s,", wx_status_name((wx_status)x->status));
        wx_csv_field(f, x->status == WX_OK ? "" : x->why);
        if (x->status == WX_OK) {
            fprintf(f, ",%ld,%.0f,%llu,%.4f", x->switches, ci.median, (unsigned long long)t.traced_ns,
                    tr > 0 ? ci.median / tr : 0);
            if (reps > 1)
                fprintf(f, ",%zu,%.0f,%.0f,%.4f,%.4f", ci.n, ci.low, ci.high, tr > 0 ? ci.low / tr : 0,
                        tr > 0 ? ci.high / tr : 0);
            printf("  %-16s %-12s %10ld %14.3f %14.3f %8.3f", x->s->name, "ok", x->switches, ci.median / 1e6,
                   tr / 1e6, tr > 0 ? ci.median / tr : 0);
            if (reps > 1)
                printf("  %.3f .. %.3f", tr > 0 ? ci.low / tr : 0, tr > 0 ? ci.high / tr : 0);
            printf("\n");
        } else {
            fprintf(f, ",,,%llu,", (unsigned long long)t.traced_ns);
            if (reps > 1)
                fputs(",,,,,", f);
            printf("  %-16s %-12s %s\n", x->s->name, wx_status_name((wx_status)x->status), x->why);
            any_failed |= x->status != WX_UNSUPPORTED;
        }
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "wxbench replay: cannot write %s\n", out);
        return WX_EXIT_FAILURES;
    }
    printf("replay: %s\n", out);
    return any_failed ? WX_EXIT_FAILURES : WX_EXIT_OK;
}
