/* scenario.h - what a scenario file sees.
 *
 * A scenario answers one question across strategies. It registers cases: a
 * case is a set of parameters (the results.csv columns variant, threads,
 * victims, size_bytes, batch) measured by a kernel. A kernel is only the
 * operation - set-up, `ops(job, n)` doing n ops, verify, tear-down - plus
 * what the harness must provide around it (victims, baseline memory, a
 * shared state for threads). The harness owns everything else, the same way
 * for every scenario:
 *
 *   [process victims start] -> shared_setup (thread 0) -> setup
 *   -> [thread victims start] -> victims settle -> counters start
 *   -> timed loop: while the harness wants more, ops(job, step)
 *   -> victims checked -> counters stop -> victims stop -> verify
 *   -> teardown -> shared_teardown (thread 0) -> one row per repetition.
 *
 * Every op that runs code checks the value it returns; ops returns -1 with
 * job->why on the first wrong value or failed call, and the row is `failed`,
 * never a number. Code is written through wx_code_begin/wx_code_end (and
 * wx_write_code for set-ups), which hide the difference between strategies
 * switched by begin_write/end_write and those writable only inside
 * write_code.
 */
#ifndef WX_SCENARIO_H
#define WX_SCENARIO_H

#include "../core/threads.h"
#include "../core/wx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row statuses, end to end (results.csv spells them wx_status_name()). */
typedef enum wx_status {
    WX_OK = 0,          /* measured and verified */
    WX_UNSUPPORTED = 1, /* cannot be measured here; the reason says why */
    WX_FAILED = 2,      /* verification or a call failed */
    WX_CRASHED = 3,     /* the child died of a signal */
    WX_TIMEOUT = 4,     /* the child outlived its time limit */
    WX_INTERFERED = 5,  /* other work on the machine spoiled the measurement in every try (a starved
                           victim or measuring thread); never drawn, averaged or compared */
    WX_NSTATUS
} wx_status;

/* "ok", "unsupported", "failed", "crashed", "timeout" or "interfered". */
const char *wx_status_name(wx_status s);

/* The parameter columns of one measured configuration. */
typedef struct wx_case {
    const char *variant;    /* sub-case name, e.g. "flip" */
    int threads;            /* worker threads doing the op (>= 1; 0 means 1) */
    int victims;            /* other threads (or processes) beside them, not doing the op */
    uint64_t size_bytes;    /* swept size, 0 where none */
    int batch;              /* patches per writable window (1 unless swept; 0 means 1) */
    double min_time;        /* seconds Google Benchmark runs it (0: the kernel's rule) */
    uint64_t iterations;    /* fixed op count per repetition (0: let Google Benchmark choose) */
    uintptr_t param;        /* scenario-private parameter */
} wx_case;

struct wx_audit;

/* What a scenario sees of the run it is registering into. */
typedef struct wx_run {
    const wx_strategy *strategy;  /* strategy of this child, NULL for a strategy-free scenario */
    int quick;                    /* 1 under --quick: smaller sweeps */
    int ncpu;                     /* CPUs the process may use */
    long page_size;               /* bytes */
    const char *out_dir;          /* the run's directory (results.csv and side files) */
    double min_time;              /* seconds per repetition in force */
    int repetitions;              /* repetitions in force */
    const struct wx_audit *audit; /* the strategy's audit, for scenarios with needs_audit (else NULL) */
    int attempt;                  /* 1..: this process's try at its repetition (a retry after interference > 1) */
} wx_run;

/* One worker thread of one measured case, as the kernel sees it. */
typedef struct wx_job {
    const wx_strategy *s;    /* the strategy under test; for baseline kernels, the baseline memory's */
    const wx_case *c;        /* the case's parameters */
    const wx_run *run;       /* the run */
    int thread;              /* this worker's index, 0..c->threads-1 */
    int repetition;          /* 1..repetitions: the row this measurement becomes */
    int warmup;              /* 1 in the untimed warm-up pass of a fixed-count case: record nothing */
    const char *core_class;  /* "P", "E" (Apple silicon) or "any": the row's core_class */
    void *state;             /* kernel->state_size bytes, zeroed, this thread's own */
    void *shared;            /* kernel->shared_size bytes, zeroed, one per case for all its threads */
    uint64_t step;           /* ops per call of ops() in the timed loop (setup may change it) */
    double timed_ns;         /* WX_K_MANUAL_TIME: ns of the ops just run that the row counts */
    int sleeps;              /* set by setup: ops may sleep by design (e.g. wait for a lock that another
                                thread of the case holds), so this thread's share of the loop on a CPU says
                                nothing about starvation and is not judged */
    char why[WX_REASON_LEN]; /* what failed, or why unsupported */
} wx_job;

/* Kernel flags. */
enum {
    WX_K_BASELINE = 1u << 0,         /* run on baseline memory (j->s is its strategy): the same
                                        loop without a permission change; unsupported where none */
    WX_K_MANUAL_TIME = 1u << 1,      /* the row's time is what ops puts in j->timed_ns, per op */
    WX_K_VICTIM_PROCESSES = 1u << 2, /* victims are forked processes (before setup), not threads */
    WX_K_SHORT = 1u << 3,            /* a quarter of the run's min time (>= 2 ms; >= 10 ms with
                                        victims), where the case sets none */
    WX_K_SIZED_BATCH = 1u << 4,      /* the set-up is costly (large regions, victims) next to the timed loop:
                                        single-thread cases without a fixed op count size their batch (ops per
                                        ops() call) from an untimed ~1 ms of ops in their first measured pass,
                                        to about a fifth of the min time, so that Google Benchmark's
                                        estimating passes (each a whole set-up) are 2, not 4-6 */
};

/* A kernel: the operation a case measures. Every function but ops is
 * optional. Return values: setup WX_OK, WX_UNSUPPORTED or WX_FAILED (with
 * j->why); ops and verify 0 or -1 (with j->why). */
typedef struct wx_kernel {
    size_t state_size;                 /* bytes of j->state */
    size_t shared_size;                /* bytes of j->shared (threaded cases) */
    uint64_t step;                     /* ops per ops() call (0: 1) */
    unsigned flags;                    /* WX_K_* */
    int (*shared_setup)(wx_job *j);    /* thread 0, before any thread's setup */
    void (*shared_teardown)(wx_job *j);/* thread 0, after every thread's teardown */
    int (*setup)(wx_job *j);           /* this thread's set-up, untimed */
    int (*ops)(wx_job *j, uint64_t n); /* n ops, timed */
    int (*verify)(wx_job *j);          /* after the timed loop, untimed */
    void (*teardown)(wx_job *j);       /* always, once setup was called (it may have failed) */
    /* Victims (c->victims > 0, single-thread cases): victim k runs prepare
     * once, then step in a loop, pinned to its own CPU; mine is its own
     * victim_size bytes (zeroed). Returns as threads.h's victim functions. */
    size_t victim_size;
    int (*victim_prepare)(wx_job *j, int k, void *mine, char *why, size_t len);
    int (*victim_step)(wx_job *j, int k, void *mine, char *why, size_t len);
} wx_kernel;

/* Register case c (copied) measured by kernel k (kept by pointer: a static). */
void wx_add(const wx_case *c, const wx_kernel *k);
/* Register case c as unsupported here, for this reason (one row). */
void wx_add_unsupported(const wx_case *c, const char *reason);
/* Register case c measured by Google Benchmark's own `for (auto _ : state)`
 * loop around an empty op (the harness scenario's native variant). */
void wx_add_native(const wx_case *c);

/* One swept parameter: values, and how many (0: keep the base case's). */
typedef struct wx_axis {
    const uint64_t *v;
    size_t n;
} wx_axis;
/* An axis from an array, and the empty axis. */
#define WX_AXIS(arr) ((wx_axis){(arr), sizeof(arr) / sizeof((arr)[0])})
#define WX_AXIS_NONE ((wx_axis){NULL, 0})
/* The full or the quick axis, by the run's --quick. */
#define WX_AXIS_Q(run, full_arr, quick_arr) ((run)->quick ? WX_AXIS(quick_arr) : WX_AXIS(full_arr))

/* Register base with kernel k once per combination of the axes' values,
 * size_bytes outermost, then victims, threads, batch (Google Benchmark's
 * ArgsProduct). A size that is not a multiple of the run's page size is
 * skipped where page_aligned is set. */
void wx_add_product(const wx_case *base, const wx_kernel *k, wx_axis sizes, wx_axis victims, wx_axis threads,
                    wx_axis batches, int page_aligned);

/* The victim counts a sweep over 0 .. ncpu-1 victims visits (every count up
 * to 4, then powers of two, ending at ncpu-1; quick: 0 and ncpu-1), as an
 * axis into buf (at least 16 entries). */
wx_axis wx_victim_axis(const wx_run *run, uint64_t *buf);
/* 1 .. 2 x ncpu worker threads (every count up to 4, then powers of two,
 * ending at 2 x ncpu; quick: 1 and 2 x ncpu), as an axis into buf (16). */
wx_axis wx_thread_axis(const wx_run *run, uint64_t *buf);

/* In ops/setup/verify: fill j->why ("what: strerror (errno N)") and return -1. */
int wx_job_errno(wx_job *j, const char *what, int err);
/* In ops/setup/verify: fill j->why from a format and return -1. */
int wx_job_fail(wx_job *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A scenario: one question measured across strategies. */
typedef struct wx_scenario {
    const char *name;             /* command-line and results.csv name */
    const char *question;         /* one line: what it answers */
    const char *op;               /* what one op is (README, --list) */
    const char *const *variants;  /* NULL-terminated variant names */
    int strategy_free;            /* 1: runs once with strategy "none" */
    int needs_audit;              /* 1: run->audit holds the strategy's audit (audit.h) */
    /* Register every case for run->strategy (wx_add, wx_add_unsupported...).
     * Called in the child; must not fork, write files or start threads. */
    void (*register_cases)(const wx_run *run);
} wx_scenario;

/* Every scenario compiled in (scenarios/scenarios.def), NULL-terminated. */
extern const wx_scenario *const wx_scenarios[];
/* The scenario called name, or NULL. */
const wx_scenario *wx_scenario_find(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* WX_SCENARIO_H */
