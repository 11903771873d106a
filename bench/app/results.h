/* results.h - the run's measurements as the parent collects them from its
 * children (one value per configuration and repetition, each repetition a
 * process of its own): the 95% interval of each configuration's median for
 * --target-ci, and gb.json, one Google Benchmark JSON document for the
 * whole run. */
#ifndef WX_RESULTS_H
#define WX_RESULTS_H

#include "stats.h"

#include <stdint.h>
#include <stdio.h>

/* One ok row's values. */
typedef struct wx_sample {
    int repetition;       /* the process that measured it */
    uint64_t iterations;  /* ops timed */
    double ns;            /* wall ns per op */
    double cpu_ns;        /* CPU ns per op (< 0: not known) */
    double cycles;        /* cycles per op (< 0: not counted) */
    double tlb;           /* TLB shootdowns per op (< 0: not counted) */
} wx_sample;

/* One configuration: the results.csv columns that name it, and its values. */
typedef struct wx_config {
    const char *scenario, *strategy; /* names that outlive the run (the tables') */
    char variant[64];
    int threads, victims, batch;
    uint64_t size_bytes;
    char core_class[8];
    size_t pair;          /* the (scenario, strategy) pair it belongs to (the runner's index) */
    wx_sample *s;         /* ok values, in the order they came */
    size_t n, cap;
    int not_ok;           /* rows of it that were not ok */
} wx_config;

/* Every configuration seen so far. */
typedef struct wx_results {
    wx_config *c;
    size_t n, cap;
} wx_results;

/* The configuration with these columns (created empty when new), or NULL
 * when out of memory. */
wx_config *wx_results_config(wx_results *r, const char *scenario, const char *strategy, const char *variant,
                             int threads, int victims, uint64_t size_bytes, int batch, const char *core_class,
                             size_t pair);
/* Add a value to c: 0, or ENOMEM. */
int wx_results_add(wx_config *c, const wx_sample *s);
/* The median of c's wall times and its 95% interval. */
void wx_results_ci(const wx_config *c, wx_median_ci *out);
/* The Google Benchmark name of c: scenario/strategy/variant/threads:T/
 * victims:V/size:S/batch:B, and /class:C where the core class is not "any". */
void wx_results_name(const wx_config *c, char *out, size_t len);

/* What gb.json's "context" says besides Google Benchmark's usual keys. */
typedef struct wx_gb_context {
    const char *date;              /* ISO 8601 */
    const char *host_name;
    const char *executable;
    int num_cpus;
    const char *library_version;   /* Google Benchmark's */
    const char *wxbench_version;
    const char *machine, *chip;    /* results.csv's columns */
    double load_avg[3];
} wx_gb_context;

/* Write r as one JSON document in Google Benchmark's schema to f: context,
 * then per configuration its repetitions (run_type "iteration") and the
 * aggregates mean, median, stddev and cv. */
void wx_results_write_gb(const wx_results *r, const wx_gb_context *ctx, FILE *f);

#endif /* WX_RESULTS_H */
