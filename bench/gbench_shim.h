/* gbench_shim.h - a C API over Google Benchmark, the only C++ in wxbench.
 * Register benchmarks at run time with their parameters, run a batched
 * keep-running loop, attach per-op counters, and receive each result in a
 * C callback. */
#ifndef WX_GBENCH_SHIM_H
#define WX_GBENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One thread of one running benchmark. */
typedef struct wxgb_state wxgb_state;

/* Body of a benchmark; arg is what was registered with it. */
typedef void (*wxgb_body)(wxgb_state *st, void *arg);

/* How a benchmark is run. */
typedef struct wxgb_options {
    int threads;          /* worker threads (>= 1) */
    double min_time;      /* seconds per repetition (0: Google Benchmark's default) */
    uint64_t iterations;  /* fixed iteration count (0: automatic) */
    int manual_time;      /* 1: the body reports its time (wxgb_set_batch_time), not the loop's wall time */
} wxgb_options;

/* One benchmark's result. */
typedef struct wxgb_result {
    void *arg;            /* what was registered with the benchmark */
    uint64_t iterations;  /* ops timed (all threads) */
    double ns_per_op;     /* wall ns per op (per thread when threads > 1) */
    double cpu_ns_per_op; /* CPU ns per op, all threads' CPU time over all ops (< 0: failed) */
    double cycles_per_op; /* < 0 when not counted */
    double tlb_per_op;    /* < 0 when not counted */
    int error;            /* 1 if the body called wxgb_fail */
    const char *message;  /* the failure message, "" otherwise */
} wxgb_result;

/* Receives each benchmark's result as soon as Google Benchmark reports it. */
typedef void (*wxgb_report_fn)(const wxgb_result *r, void *ctx);

/* Parse Google Benchmark's flags out of argv (they are removed). Returns 0,
 * or -1 with why[] naming the first argument Google Benchmark does not know. */
int wxgb_init(int *argc, char **argv, char *why, size_t len);
/* Register body(arg) as a benchmark called name, run once (one repetition). */
void wxgb_register(const char *name, wxgb_body body, void *arg, const wxgb_options *o);
/* Register the native C++ loop over an empty op (harness/native); before
 * (nonzero: do not run the loop) and after run around it on each thread. */
void wxgb_register_native_empty(const char *name, void *arg, const wxgb_options *o,
                                int (*before)(wxgb_state *st, void *arg), void (*after)(wxgb_state *st, void *arg));
/* Run every registered benchmark; report(result, ctx) per benchmark.
 * Returns the number of benchmarks run. */
size_t wxgb_run(wxgb_report_fn report, void *ctx);
/* Google Benchmark's version string. */
const char *wxgb_version(void);

/* Batched loop: true while n more ops should run. */
int wxgb_keep_running(wxgb_state *st, uint64_t n);
/* Mark the run failed; the body must leave its loop right after. */
void wxgb_fail(wxgb_state *st, const char *message);
/* With manual_time: the seconds the batch just run took (once per batch). */
void wxgb_set_batch_time(wxgb_state *st, double seconds);
/* Attach a counter: total over this thread's loop; reported summed over the
 * threads that set it and divided by all threads' ops (per op). */
void wxgb_set_counter(wxgb_state *st, const char *name, double total);
/* The calling worker's index and the number of workers. */
int wxgb_thread_index(const wxgb_state *st);
int wxgb_threads(const wxgb_state *st);
/* Per-thread scratch the C side may use (counters), zeroed per body call. */
void *wxgb_scratch(wxgb_state *st, size_t size);

#ifdef __cplusplus
}
#endif

#endif
