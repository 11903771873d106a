/* runner.c - one child process per (scenario, strategy); rows -> results.csv.
 *
 * The parent writes the CSV header and meta.json, then forks one child per
 * pair. The child registers the scenario's cases with Google Benchmark (via
 * the C shim), runs them, and appends each row to results.csv itself with a
 * single write() as soon as it is measured. Over a pipe it tells the parent
 * which case it is measuring ("V ...") and each row's status ("R status"),
 * so that a crash or a hang becomes a `crashed` or `timeout` row naming the
 * case, and the parent knows the exit code. */
#define _GNU_SOURCE 1
#include "runner.h"
#include "gbench_shim.h"
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef WX_VERSION
#define WX_VERSION "unknown"
#endif

#define DEFAULT_REPETITIONS 5
#define QUICK_REPETITIONS 3
#define DEFAULT_MIN_TIME 0.1
#define QUICK_MIN_TIME 0.01
#define DEFAULT_TIMEOUT_S 300

/* ------------------------------------------------------------------------
 * State shared by parent and child (set before fork)
 * --------------------------------------------------------------------- */

static wx_machine g_machine;
static const wx_options *g_opt;
static int g_csv_fd = -1;        /* results.csv, O_APPEND */
static int g_pipe_fd = -1;       /* child -> parent messages */
static const char *g_scenario;   /* this child's scenario */
static const char *g_strategy;   /* this child's strategy name */
static const wx_strategy *g_strategy_ptr;
static const char *g_core_class = "any"; /* core_class of the rows being written */
static int g_nclasses = 1;       /* core classes single-thread cases run on (2 on Apple silicon) */
static int g_repetitions;
static double g_min_time;

/* One registered case. */
typedef struct entry {
    wx_case c;
    wx_bench_fn body;
    char *unsupported;   /* reason, or NULL when measured */
    int manual_time;     /* the body reports its time (wx_add_case_manual_time) */
    char name[256];
    const char *core_class;  /* "P", "E" (Apple silicon) or "any": where it is measured */
    uint64_t cpus_seen;      /* CPUs (< 64) its measuring thread was seen on (P/E cases only) */
    int cpu_unknown;         /* seen on a CPU wx_current_cpu could not name (or >= 64) */
} entry;

static entry *g_running;     /* the case whose body runs now (its thread 0 sets it) */

static entry *g_entries;
static size_t g_nentries, g_cap;

static volatile sig_atomic_t g_interrupted;
static char g_dir[4096];         /* the run's output directory */

static void send_msg(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && g_pipe_fd >= 0)
        wx_write_all(g_pipe_fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Append one row to results.csv (one write) and tell the parent its status. */
static void emit_row(const wx_case *c, int repetition, uint64_t iterations, double ns, double cycles,
                     double tlb, const char *status, const char *reason)
{
    wx_row r = {
        .machine = g_machine.slug, .chip = g_machine.chip, .os = g_machine.os,
        .arch = g_machine.arch, .page_size = g_machine.page_size,
        .scenario = g_scenario, .strategy = g_strategy, .c = c, .core_class = g_core_class,
        .repetition = repetition, .iterations = iterations,
        .ns_per_op = ns, .cycles_per_op = cycles, .tlb_per_op = tlb,
        .status = status, .reason = reason,
    };
    char *line = wx_csv_format(&r);
    int e = line ? wx_write_all(g_csv_fd, line, strlen(line)) : ENOMEM;
    if (e != 0) {
        fprintf(stderr, "wxbench: cannot append to results.csv: %s\n", strerror(e));
        free(line);
        _exit(WX_EXIT_FAILURES);
    }
    free(line);
    send_msg("R %s\n", status);
}

/* ------------------------------------------------------------------------
 * The scenario-facing API (wx.h)
 * --------------------------------------------------------------------- */

static entry *new_entry(const wx_case *c)
{
    if (g_nentries == g_cap) {
        g_cap = g_cap ? g_cap * 2 : 64;
        entry *e = realloc(g_entries, g_cap * sizeof *e);
        if (!e) {
            fprintf(stderr, "wxbench: out of memory\n");
            _exit(WX_EXIT_FAILURES);
        }
        g_entries = e;
    }
    entry *e = &g_entries[g_nentries++];
    memset(e, 0, sizeof *e);
    e->c = *c;
    if (e->c.threads < 1)
        e->c.threads = 1;
    if (e->c.batch < 1)
        e->c.batch = 1;
    if (!e->c.variant)
        e->c.variant = "";
    e->core_class = "any";
    return e;
}

/* Note which CPU the measuring thread of a P/E case is on now. */
static void note_cpu(entry *e)
{
    if (!e || strcmp(e->core_class, "any") == 0)
        return;
    int cpu = wx_current_cpu();
    if (cpu >= 0 && cpu < 64)
        e->cpus_seen |= 1ull << cpu;
    else
        e->cpu_unknown = 1;
}

/* The reason text of an ok row of a P/E case whose measuring thread was
 * seen outside its class, or on CPUs of unknown class; "" otherwise. Over
 * all repetitions of the case: Google Benchmark reports them together. */
static void core_class_note(const entry *e, char *out, size_t len)
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

void wx_add_case(const wx_case *c, wx_bench_fn body)
{
    entry *e = new_entry(c);
    e->body = body;
}

void wx_add_case_manual_time(const wx_case *c, wx_bench_fn body)
{
    entry *e = new_entry(c);
    e->body = body;
    e->manual_time = 1;
}

void wx_bench_batch_time(wx_bench *b, double ns)
{
    wxgb_set_batch_time(b, ns / 1e9);
}

void wx_add_unsupported(const wx_case *c, const char *reason)
{
    entry *e = new_entry(c);
    e->unsupported = strdup(reason && reason[0] ? reason : "unsupported (no reason given)");
}

int wx_bench_keep_running(wx_bench *b, uint64_t n)
{
    return wxgb_keep_running(b, n);
}

void wx_bench_fail(wx_bench *b, const char *fmt, ...)
{
    char msg[WX_REASON_LEN * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wxgb_fail(b, msg);
}

int wx_bench_thread_index(const wx_bench *b)
{
    return wxgb_thread_index(b);
}

int wx_bench_threads(const wx_bench *b)
{
    return wxgb_threads(b);
}

const char *wx_bench_core_class(const wx_bench *b)
{
    (void)b;
    return g_running ? g_running->core_class : "any"; /* set by thread 0 for the case it runs */
}

void wx_bench_counters_begin(wx_bench *b)
{
    if (wxgb_thread_index(b) == 0)
        note_cpu(g_running);
    wx_counters *c = wxgb_scratch(b, sizeof *c);
    wx_counters_begin(c);
    if (wxgb_thread_index(b) != 0)
        c->tlb_ok = 0; /* one thread counts the machine-wide TLB total */
}

void wx_bench_counters_end(wx_bench *b)
{
    wx_counters *c = wxgb_scratch(b, sizeof *c);
    double tlb, cycles;
    wx_counters_end(c, &tlb, &cycles);
    if (cycles >= 0)
        wxgb_set_counter(b, "cycles_per_op", cycles);
    if (tlb >= 0 && wxgb_thread_index(b) == 0)
        wxgb_set_counter(b, "tlb_per_op", tlb);
    if (wxgb_thread_index(b) == 0)
        note_cpu(g_running);
}

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

const wx_scenario *wx_scenario_find(const char *name)
{
    for (size_t i = 0; wx_scenarios[i]; i++)
        if (strcmp(wx_scenarios[i]->name, name) == 0)
            return wx_scenarios[i];
    return NULL;
}

/* ------------------------------------------------------------------------
 * Child: register, run, report
 * --------------------------------------------------------------------- */

/* Before a case's body on each thread: reset JIT state; on thread 0 tell
 * the parent which case runs and put the thread in the case's core class.
 * Returns nonzero when the case cannot run (the run is marked already). */
static int enter_case(wxgb_state *st, void *arg)
{
    entry *e = arg;
    wx_jit_thread_reset(); /* no JIT write state left over from an earlier case */
    if (wxgb_thread_index(st) != 0)
        return 0;
    send_msg("V %s\t%d\t%d\t%" PRIu64 "\t%d\t%s\n", e->c.variant, e->c.threads, e->c.victims, e->c.size_bytes,
             e->c.batch, e->core_class);
    if (g_nclasses > 1) {
        char why[WX_REASON_LEN] = "";
        if (wx_set_core_class(e->core_class, why, sizeof why) != 0 && strcmp(e->core_class, "any") != 0) {
            char msg[WX_REASON_LEN + 64];
            snprintf(msg, sizeof msg, "unsupported: core class %s: %s", e->core_class, why);
            wxgb_fail(st, msg);
            return -1;
        }
    }
    g_running = e;
    note_cpu(e);
    return 0;
}

/* After a case's body: record where thread 0 ran and drop its class. */
static void leave_case(wxgb_state *st, void *arg)
{
    entry *e = arg;
    if (wxgb_thread_index(st) != 0)
        return;
    note_cpu(e);
    g_running = NULL;
    if (g_nclasses > 1 && strcmp(e->core_class, "any") != 0) {
        char why[WX_REASON_LEN];
        wx_set_core_class("any", why, sizeof why); /* threads Google Benchmark starts next inherit no class */
    }
}

static void trampoline(wxgb_state *st, void *arg)
{
    entry *e = arg;
    if (enter_case(st, e) != 0)
        return;
    e->body(st, g_strategy_ptr, &e->c);
    leave_case(st, e);
}

static void on_result(const wxgb_result *r, void *ctx)
{
    (void)ctx;
    entry *e = r->arg;
    if (!e)
        return;
    g_core_class = e->core_class;
    if (r->error) {
        const char *msg = r->message && r->message[0] ? r->message : "failed without a message";
        if (strncmp(msg, "unsupported: ", 13) == 0)
            emit_row(&e->c, r->repetition, r->iterations, -1, -1, -1, "unsupported", msg + 13);
        else
            emit_row(&e->c, r->repetition, r->iterations, -1, -1, -1, "failed", msg);
        return;
    }
    char note[WX_REASON_LEN];
    core_class_note(e, note, sizeof note);
    emit_row(&e->c, r->repetition, r->iterations, r->ns_per_op, r->cycles_per_op, r->tlb_per_op, "ok", note);
}

/* The child's whole life: returns its exit status. */
static int child_main(const wx_scenario *sc, const char *strategy)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    wx_jit_thread_reset();
    g_scenario = sc->name;
    g_strategy = strategy;
    g_strategy_ptr = strcmp(strategy, "none") == 0 ? NULL : wx_strategy_find(strategy);

    char why[WX_REASON_LEN] = "";
    int cpu = wx_pin_thread(0, why, sizeof why);
    (void)cpu; /* recorded in meta.json by the parent; a failure leaves the thread unpinned */

    /* Google Benchmark's own flags; --benchmark_out gets a per-child name so
     * children do not overwrite each other's files. */
    char **argv = calloc((size_t)g_opt->gb_argc + 2, sizeof *argv);
    if (!argv)
        return WX_EXIT_FAILURES;
    int argc = 0;
    argv[argc++] = "wxbench";
    for (int i = 0; i < g_opt->gb_argc; i++) {
        const char *a = g_opt->gb_argv[i];
        if (strncmp(a, "--benchmark_out=", 16) == 0) {
            const char *path = a + 16;
            const char *dot = strrchr(path, '.');
            const char *slash = strrchr(path, '/');
            if (dot && slash && dot < slash)
                dot = NULL;
            char *n = NULL;
            if (asprintf(&n, "--benchmark_out=%.*s.%s.%s%s", dot ? (int)(dot - path) : (int)strlen(path), path,
                         sc->name, strategy, dot ? dot : "") < 0)
                return WX_EXIT_FAILURES;
            argv[argc++] = n;
        } else {
            argv[argc++] = (char *)a;
        }
    }
    if (wxgb_init(&argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "wxbench: %s\n", why);
        return WX_EXIT_USAGE;
    }

    wx_run run = {
        .strategy = g_strategy_ptr,
        .quick = g_opt->quick,
        .ncpu = wx_cpus_allowed(),
        .page_size = g_machine.page_size,
        .out_dir = g_dir,
        .min_time = g_min_time,
        .repetitions = g_repetitions,
    };

    if (!sc->strategy_free) {
        if (!g_strategy_ptr) {
            fprintf(stderr, "wxbench: unknown strategy %s\n", strategy);
            return WX_EXIT_FAILURES;
        }
        why[0] = 0;
        if (!g_strategy_ptr->supported(why, sizeof why)) {
            if (sc->record_unsupported)
                sc->record_unsupported(&run, why[0] ? why : "not supported here");
            for (size_t v = 0; sc->variants[v]; v++) {
                wx_case c = {.variant = sc->variants[v], .threads = 1, .batch = 1};
                emit_row(&c, 1, 0, -1, -1, -1, "unsupported", why[0] ? why : "not supported here");
            }
            return 0;
        }
    }

    sc->register_cases(&run);

    /* Every measured single-thread case once per core class (P and E on
     * Apple silicon; just "any" elsewhere). Copies are appended, so all
     * entries exist before any is registered (registration keeps pointers). */
    const char *classes[4];
    g_nclasses = wx_core_classes(classes, 4);
    if (g_nclasses > 1) {
        size_t n0 = g_nentries;
        for (size_t i = 0; i < n0; i++) {
            if (g_entries[i].unsupported || g_entries[i].c.threads != 1)
                continue;
            g_entries[i].core_class = classes[0];
            for (int k = 1; k < g_nclasses; k++) {
                entry copy = g_entries[i];
                entry *d = new_entry(&copy.c);
                *d = copy;
                d->core_class = classes[k];
            }
        }
    }

    size_t measured = 0;
    for (size_t i = 0; i < g_nentries; i++) {
        entry *e = &g_entries[i];
        if (e->unsupported) {
            emit_row(&e->c, 1, 0, -1, -1, -1, "unsupported", e->unsupported);
            continue;
        }
        measured++;
        snprintf(e->name, sizeof e->name, "%s/%s/%s/threads:%d/victims:%d/size:%" PRIu64 "/batch:%d/case:%zu%s%s",
                 sc->name, strategy, e->c.variant, e->c.threads, e->c.victims, e->c.size_bytes, e->c.batch, i,
                 g_nclasses > 1 ? "/class:" : "", g_nclasses > 1 ? e->core_class : "");
        wxgb_options o = {
            .threads = e->c.threads,
            .repetitions = g_repetitions,
            .min_time = e->c.min_time > 0 ? e->c.min_time : g_min_time,
            .iterations = e->c.iterations,
            .manual_time = e->manual_time,
        };
        if (e->body)
            wxgb_register(e->name, trampoline, e, &o);
        else
            wxgb_register_native_empty(e->name, e, &o, enter_case, leave_case);
    }
    if (measured > 0) /* with nothing registered Google Benchmark prints a spurious error */
        wxgb_run(on_result, NULL);
    return 0;
}

/* ------------------------------------------------------------------------
 * Parent
 * --------------------------------------------------------------------- */

static void on_interrupt(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/* Status counts over the whole run. */
typedef struct counts {
    long ok, unsupported, failed, crashed, timeout;
} counts;

static void count_status(counts *n, const char *status)
{
    if (strcmp(status, "ok") == 0) n->ok++;
    else if (strcmp(status, "unsupported") == 0) n->unsupported++;
    else if (strcmp(status, "failed") == 0) n->failed++;
    else if (strcmp(status, "crashed") == 0) n->crashed++;
    else if (strcmp(status, "timeout") == 0) n->timeout++;
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

static char g_date[64];
static int g_measuring_cpu = -1;

static void write_meta(int finished, int interrupted, const counts *n, double elapsed_s)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/meta.json", g_dir);
    snprintf(tmp, sizeof tmp, "%s/.meta.json.tmp", g_dir);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "wxbench: cannot write %s: %s\n", tmp, strerror(errno));
        return;
    }
    fputs("{\n", f);
    fputs("  \"wxbench_version\": ", f); wx_json_str(f, WX_VERSION); fputs(",\n", f);
    fputs("  \"date_utc\": ", f); wx_json_str(f, g_date); fputs(",\n", f);
    fputs("  \"command_line\": \"", f);
    for (int i = 0; i < g_opt->argc; i++) {
        /* the command line as one JSON string; each argument escaped */
        char *esc = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&esc, &len);
        if (m) {
            wx_json_str(m, g_opt->argv[i]);
            fclose(m);
            fprintf(f, "%s%.*s", i ? " " : "", (int)(len >= 2 ? len - 2 : 0), esc + 1);
            free(esc);
        }
    }
    fputs("\",\n", f);
    fputs("  \"compiler\": ", f);
#if defined(__clang__)
    wx_json_str(f, "clang " __clang_version__);
#elif defined(__GNUC__)
    wx_json_str(f, "gcc " __VERSION__);
#else
    wx_json_str(f, "unknown");
#endif
    fputs(",\n", f);
    fputs("  \"gbench_version\": ", f); wx_json_str(f, wxgb_version()); fputs(",\n", f);
    wx_machine_write_meta(&g_machine, f);
    const char *classes[4];
    int ncls = wx_core_classes(classes, 4);
    fputs("  \"core_classes\": [", f);
    for (int i = 0; i < ncls; i++) {
        fputs(i ? ", " : "", f);
        wx_json_str(f, classes[i]);
    }
    fputs("],\n", f);
    fprintf(f, "  \"pinning\": {\"measuring_cpu\": %d, \"method\": ", g_measuring_cpu);
    wx_json_str(f, wx_pin_method());
    fputs("},\n", f);
    fprintf(f, "  \"icache_method\": ");
    wx_json_str(f, wx_icache_method());
    fputs(",\n", f);
    fprintf(f, "  \"settings\": {\"quick\": %s, \"repetitions\": %d, \"min_time_s\": %g, \"timeout_s\": %d},\n",
            g_opt->quick ? "true" : "false", g_repetitions, g_min_time,
            g_opt->timeout_s > 0 ? g_opt->timeout_s : DEFAULT_TIMEOUT_S);
    fprintf(f, "  \"finished\": %s,\n  \"interrupted\": %s,\n", finished ? "true" : "false",
            interrupted ? "true" : "false");
    fprintf(f, "  \"elapsed_s\": %.1f,\n", elapsed_s);
    fprintf(f, "  \"rows\": {\"ok\": %ld, \"unsupported\": %ld, \"failed\": %ld, \"crashed\": %ld, \"timeout\": %ld}\n",
            n->ok, n->unsupported, n->failed, n->crashed, n->timeout);
    fputs("}\n", f);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        fprintf(stderr, "wxbench: cannot write %s: %s\n", path, strerror(errno));
}

/* Parse a "V variant\tthreads\tvictims\tsize\tbatch" message into the case
 * the parent reports if the child dies. */
static void parse_case(char *msg, wx_case *c, char *variant, size_t vlen, char *cls, size_t clen)
{
    char *save = NULL;
    char *v = strtok_r(msg, "\t", &save);
    snprintf(variant, vlen, "%s", v ? v : "");
    c->variant = variant;
    char *t = strtok_r(NULL, "\t", &save);
    c->threads = t ? atoi(t) : 1;
    t = strtok_r(NULL, "\t", &save);
    c->victims = t ? atoi(t) : 0;
    t = strtok_r(NULL, "\t", &save);
    c->size_bytes = t ? strtoull(t, NULL, 10) : 0;
    t = strtok_r(NULL, "\t", &save);
    c->batch = t ? atoi(t) : 1;
    t = strtok_r(NULL, "\t", &save);
    snprintf(cls, clen, "%s", t ? t : "any");
}

/* Run one (scenario, strategy) child; rows go to results.csv. */
static void run_pair(const wx_scenario *sc, const char *strategy, counts *n, int index, int total,
                     uint64_t t_start)
{
    int fds[2];
    uint64_t t0 = wx_now_ns();
    counts before = *n;
    fprintf(stderr, "[%d/%d] %-18s %-16s ", index, total, sc->name, strategy);
    fflush(stderr);
    g_scenario = sc->name; /* for rows the parent writes for this pair */
    g_strategy = strategy;
    /* A pair that cannot be started gets a failed row; the run goes on. */
    if (pipe(fds) != 0) {
        int e = errno;
        wx_case none = {.variant = "", .threads = 1, .batch = 1};
        char reason[128];
        snprintf(reason, sizeof reason, "could not start the child: pipe: %s", strerror(e));
        g_pipe_fd = -1;
        emit_row(&none, 1, 0, -1, -1, -1, "failed", reason);
        count_status(n, "failed");
        fprintf(stderr, "FAILED: %s\n", reason);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        wx_case none = {.variant = "", .threads = 1, .batch = 1};
        char reason[128];
        snprintf(reason, sizeof reason, "could not start the child: fork: %s", strerror(e));
        g_pipe_fd = -1;
        emit_row(&none, 1, 0, -1, -1, -1, "failed", reason);
        count_status(n, "failed");
        fprintf(stderr, "FAILED: %s\n", reason);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        g_pipe_fd = fds[1];
        int rc = child_main(sc, strategy);
        fflush(stdout);
        _exit(rc);
    }
    close(fds[1]);

    int timeout_s = g_opt->timeout_s > 0 ? g_opt->timeout_s : DEFAULT_TIMEOUT_S;
    uint64_t deadline = t0 + (uint64_t)timeout_s * 1000000000u;
    char buf[4096];
    size_t have = 0;
    wx_case last = {.variant = "", .threads = 1, .batch = 1};
    char variant[128] = "";
    char cls[8] = "any";
    int eof = 0, timed_out = 0, poll_err = 0;
    while (!eof) {
        if (g_interrupted)
            break;
        uint64_t now = wx_now_ns();
        if (now >= deadline) {
            timed_out = 1;
            break;
        }
        uint64_t left_ms = (deadline - now) / 1000000u + 1;
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, left_ms > 1000 ? 1000 : (int)left_ms);
        if (r < 0 && errno != EINTR) {
            poll_err = errno; /* cannot watch the child any more: stop it */
            break;
        }
        if (r <= 0)
            continue;
        ssize_t got = read(fds[0], buf + have, sizeof buf - 1 - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            eof = 1;
            break;
        }
        have += (size_t)got;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = 0;
            if (line[0] == 'R' && line[1] == ' ')
                count_status(n, line + 2);
            else if (line[0] == 'V' && line[1] == ' ')
                parse_case(line + 2, &last, variant, sizeof variant, cls, sizeof cls);
            line = nl + 1;
        }
        have = strlen(line);
        memmove(buf, line, have + 1);
        if (have == sizeof buf - 1)
            have = 0; /* an over-long message: drop it */
    }
    if (g_interrupted || timed_out || poll_err)
        kill(pid, SIGKILL);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (g_interrupted)
        return;

    /* Rows the parent writes for the child. */
    g_scenario = sc->name;
    g_strategy = strategy;
    g_core_class = cls;
    char reason[512];
    const char *where = last.variant[0] ? last.variant : "(before any case started)";
    if (poll_err) {
        snprintf(reason, sizeof reason, "stopped: the child could no longer be watched (poll: %s) while measuring "
                 "variant %s", strerror(poll_err), where);
        g_pipe_fd = -1;
        emit_row(&last, 1, 0, -1, -1, -1, "failed", reason);
        count_status(n, "failed");
    } else if (timed_out) {
        snprintf(reason, sizeof reason, "exceeded the per-child limit of %d s while measuring variant %s", timeout_s,
                 where);
        g_pipe_fd = -1;
        emit_row(&last, 1, 0, -1, -1, -1, "timeout", reason);
        count_status(n, "timeout");
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(reason, sizeof reason, "killed by %s (%s) while measuring variant %s", wx_signal_name(sig),
                 strsignal(sig), where);
        g_pipe_fd = -1;
        emit_row(&last, 1, 0, -1, -1, -1, "crashed", reason);
        count_status(n, "crashed");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(reason, sizeof reason, "child exited with status %d while measuring variant %s",
                 WEXITSTATUS(status), where);
        g_pipe_fd = -1;
        emit_row(&last, 1, 0, -1, -1, -1, "failed", reason);
        count_status(n, "failed");
    }
    g_core_class = "any";
    double secs = (double)(wx_now_ns() - t0) / 1e9;
    double all = (double)(wx_now_ns() - t_start) / 1e9;
    fprintf(stderr, "%5.1f s  (total %6.1f s)  ok %ld", secs, all, n->ok - before.ok);
    if (n->unsupported > before.unsupported)
        fprintf(stderr, "  unsupported %ld", n->unsupported - before.unsupported);
    if (n->failed > before.failed)
        fprintf(stderr, "  FAILED %ld", n->failed - before.failed);
    if (n->crashed > before.crashed)
        fprintf(stderr, "  CRASHED %ld", n->crashed - before.crashed);
    if (n->timeout > before.timeout)
        fprintf(stderr, "  TIMEOUT %ld", n->timeout - before.timeout);
    fputc('\n', stderr);
}

/* Does the selection include strategy name? */
static int selected(const wx_options *o, const char *name)
{
    if (!o->strategies[0])
        return 1;
    for (int i = 0; o->strategies[i]; i++)
        if (strcmp(o->strategies[i], name) == 0)
            return 1;
    return 0;
}

int wx_run_all(const wx_options *o)
{
    g_opt = o;
    wx_machine_describe(&g_machine);
    g_repetitions = o->repetitions > 0 ? o->repetitions : o->quick ? QUICK_REPETITIONS : DEFAULT_REPETITIONS;
    g_min_time = o->min_time > 0 ? o->min_time : o->quick ? QUICK_MIN_TIME : DEFAULT_MIN_TIME;

    if (o->out) {
        snprintf(g_dir, sizeof g_dir, "%s", o->out);
    } else {
        char stamp[32];
        utc_stamp(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ");
        snprintf(g_dir, sizeof g_dir, "data/%s/%s", g_machine.slug, stamp);
    }
    utc_stamp(g_date, sizeof g_date, "%Y-%m-%dT%H:%M:%SZ");

    /* Refuse an unusable output directory before measuring anything. */
    char path[4200];
    snprintf(path, sizeof path, "%s/results.csv", g_dir);
    if (mkdir_p(g_dir) != 0) {
        fprintf(stderr, "wxbench: cannot create output directory %s: %s\n", g_dir, strerror(errno));
        return WX_EXIT_USAGE;
    }
    g_csv_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (g_csv_fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr, "wxbench: %s already exists; refusing to overwrite results (choose another --out)\n",
                    path);
        else
            fprintf(stderr, "wxbench: cannot write %s: %s\n", path, strerror(errno));
        return WX_EXIT_USAGE;
    }
    int werr = wx_write_all(g_csv_fd, wx_csv_header, strlen(wx_csv_header));
    if (werr != 0) {
        fprintf(stderr, "wxbench: cannot write %s: %s\n", path, strerror(werr));
        return WX_EXIT_USAGE;
    }

    /* The CPU each child pins its measuring thread to. */
    g_measuring_cpu = wx_cpu_for_index(0);

    counts n = {0};
    write_meta(0, 0, &n, 0);

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
        const wx_scenario *sc = o->scenarios[s];
        if (sc->strategy_free)
            total += selected(o, "none");
        else
            for (size_t k = 0; wx_strategies[k]; k++)
                total += selected(o, wx_strategies[k]->name);
    }
    fprintf(stderr, "wxbench %s: %d runs on %s (%s); results -> %s/results.csv\n", WX_VERSION, total,
            g_machine.slug, g_machine.chip, g_dir);

    uint64_t t_start = wx_now_ns();
    int index = 0;
    for (int s = 0; o->scenarios[s] && !g_interrupted; s++) {
        const wx_scenario *sc = o->scenarios[s];
        if (sc->strategy_free) {
            if (selected(o, "none"))
                run_pair(sc, "none", &n, ++index, total, t_start);
            continue;
        }
        for (size_t k = 0; wx_strategies[k] && !g_interrupted; k++)
            if (selected(o, wx_strategies[k]->name))
                run_pair(sc, wx_strategies[k]->name, &n, ++index, total, t_start);
    }
    double elapsed = (double)(wx_now_ns() - t_start) / 1e9;
    close(g_csv_fd);

    if (g_interrupted) {
        write_meta(0, 1, &n, elapsed);
        fprintf(stderr, "\nwxbench: interrupted; %ld finished rows kept in %s/results.csv\n",
                n.ok + n.unsupported + n.failed + n.crashed + n.timeout, g_dir);
        return WX_EXIT_INTERRUPTED;
    }
    write_meta(1, 0, &n, elapsed);
    fprintf(stderr, "wxbench: %.1f s; rows: %ld ok, %ld unsupported, %ld failed, %ld crashed, %ld timeout\n", elapsed,
            n.ok, n.unsupported, n.failed, n.crashed, n.timeout);
    printf("results: %s/results.csv\nmeta:    %s/meta.json\n", g_dir, g_dir);
    return (n.failed || n.crashed || n.timeout) ? WX_EXIT_FAILURES : WX_EXIT_OK;
}
