/* results.c - the run's measurements in the parent; gb.json. */
#define _GNU_SOURCE 1
#include "results.h"
#include "../core/platform_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

wx_config *wx_results_config(wx_results *r, const char *scenario, const char *strategy, const char *variant,
                             int threads, int victims, uint64_t size_bytes, int batch, const char *core_class,
                             size_t pair)
{
    for (size_t i = 0; i < r->n; i++) {
        wx_config *c = &r->c[i];
        if (c->scenario == scenario && c->strategy == strategy && c->threads == threads && c->victims == victims &&
            c->size_bytes == size_bytes && c->batch == batch && strcmp(c->variant, variant) == 0 &&
            strcmp(c->core_class, core_class) == 0)
            return c;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        wx_config *c = realloc(r->c, cap * sizeof *c);
        if (!c)
            return NULL;
        r->c = c;
        r->cap = cap;
    }
    wx_config *c = &r->c[r->n++];
    memset(c, 0, sizeof *c);
    c->scenario = scenario;
    c->strategy = strategy;
    snprintf(c->variant, sizeof c->variant, "%s", variant);
    c->threads = threads;
    c->victims = victims;
    c->size_bytes = size_bytes;
    c->batch = batch;
    snprintf(c->core_class, sizeof c->core_class, "%s", core_class);
    c->pair = pair;
    return c;
}

int wx_results_add(wx_config *c, const wx_sample *s)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        wx_sample *p = realloc(c->s, cap * sizeof *p);
        if (!p)
            return ENOMEM;
        c->s = p;
        c->cap = cap;
    }
    c->s[c->n++] = *s;
    return 0;
}

void wx_results_ci(const wx_config *c, wx_median_ci *out)
{
    double *x = malloc((c->n ? c->n : 1) * sizeof *x);
    if (!x) {
        memset(out, 0, sizeof *out);
        return;
    }
    for (size_t i = 0; i < c->n; i++)
        x[i] = c->s[i].ns;
    wx_median_ci_of(x, c->n, out);
    free(x);
}

void wx_results_name(const wx_config *c, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s/%s/threads:%d/victims:%d/size:%" PRIu64 "/batch:%d", c->scenario, c->strategy,
                     c->variant, c->threads, c->victims, c->size_bytes, c->batch);
    if (n > 0 && (size_t)n < len && strcmp(c->core_class, "any") != 0)
        snprintf(out + n, len - (size_t)n, "/class:%s", c->core_class);
}

/* A number as JSON (no NaN or infinity there: null). */
static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

/* One benchmarks[] entry. */
static void gb_entry(FILE *f, const wx_config *c, const char *name, size_t family, const char *run_type,
                     const char *aggregate, const char *unit, int rep, uint64_t iterations, double real, double cpu,
                     const wx_sample *s, int *first)
{
    char base[512];
    wx_results_name(c, base, sizeof base);
    fputs(*first ? "\n    {" : ",\n    {", f);
    *first = 0;
    fputs("\"name\": ", f);
    wx_json_str(f, name);
    fprintf(f, ", \"family_index\": %zu, \"per_family_instance_index\": 0, \"run_name\": ", family);
    wx_json_str(f, base);
    fprintf(f, ", \"run_type\": \"%s\", \"repetitions\": %zu", run_type, c->n);
    if (rep > 0)
        fprintf(f, ", \"repetition_index\": %d", rep - 1);
    fprintf(f, ", \"threads\": %d", c->threads);
    if (aggregate)
        fprintf(f, ", \"aggregate_name\": \"%s\", \"aggregate_unit\": \"%s\"", aggregate, unit);
    fprintf(f, ", \"iterations\": %" PRIu64 ", \"real_time\": ", iterations);
    json_num(f, real);
    fputs(", \"cpu_time\": ", f);
    json_num(f, cpu);
    fputs(", \"time_unit\": \"ns\"", f);
    if (s && s->cycles >= 0) {
        fputs(", \"cycles_per_op\": ", f);
        json_num(f, s->cycles);
    }
    if (s && s->tlb >= 0) {
        fputs(", \"tlb_shootdowns_per_op\": ", f);
        json_num(f, s->tlb);
    }
    fputs("}", f);
}

/* mean, median, stddev, cv of x (n values; sorted here). */
static void summary(double *x, size_t n, double out[4])
{
    wx_median_ci m;
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean = n ? mean / (double)n : 0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    wx_median_ci_of(x, n, &m);
    out[0] = mean;
    out[1] = m.median;
    out[2] = n > 1 ? sqrt(ss / (double)(n - 1)) : 0;
    out[3] = mean > 0 ? out[2] / mean : 0;
}

void wx_results_write_gb(const wx_results *r, const wx_gb_context *ctx, FILE *f)
{
    fputs("{\n  \"context\": {\n    \"date\": ", f);
    wx_json_str(f, ctx->date);
    fputs(",\n    \"host_name\": ", f);
    wx_json_str(f, ctx->host_name);
    fputs(",\n    \"executable\": ", f);
    wx_json_str(f, ctx->executable);
    fprintf(f, ",\n    \"num_cpus\": %d,\n    \"mhz_per_cpu\": 0,\n    \"cpu_scaling_enabled\": false,\n"
               "    \"caches\": [],\n    \"load_avg\": [%.2f, %.2f, %.2f],\n    \"library_version\": ",
            ctx->num_cpus, ctx->load_avg[0], ctx->load_avg[1], ctx->load_avg[2]);
    wx_json_str(f, ctx->library_version);
    fputs(",\n    \"library_build_type\": \"release\",\n    \"json_schema_version\": 1,\n    \"wxbench_version\": ", f);
    wx_json_str(f, ctx->wxbench_version);
    fputs(",\n    \"machine\": ", f);
    wx_json_str(f, ctx->machine);
    fputs(",\n    \"chip\": ", f);
    wx_json_str(f, ctx->chip);
    fputs(",\n    \"repetitions_are\": \"processes: each repetition of a configuration was measured by a fresh "
          "child process, in a seeded random order (meta.json)\"\n  },\n  \"benchmarks\": [",
          f);
    int first = 1;
    size_t family = 0;
    for (size_t i = 0; i < r->n; i++) {
        const wx_config *c = &r->c[i];
        if (c->n == 0)
            continue;
        char name[512];
        wx_results_name(c, name, sizeof name);
        /* repetitions in their order */
        const wx_sample **by_rep = malloc(c->n * sizeof *by_rep);
        double *real = malloc(c->n * sizeof *real), *cpu = malloc(c->n * sizeof *cpu);
        if (!by_rep || !real || !cpu) {
            free(by_rep), free(real), free(cpu);
            continue;
        }
        for (size_t k = 0; k < c->n; k++)
            by_rep[k] = &c->s[k];
        for (size_t a = 1; a < c->n; a++) /* insertion sort by repetition: n is small */
            for (size_t b = a; b > 0 && by_rep[b - 1]->repetition > by_rep[b]->repetition; b--) {
                const wx_sample *t = by_rep[b];
                by_rep[b] = by_rep[b - 1];
                by_rep[b - 1] = t;
            }
        int have_cpu = 1;
        for (size_t k = 0; k < c->n; k++) {
            const wx_sample *s = by_rep[k];
            gb_entry(f, c, name, family, "iteration", NULL, NULL, s->repetition, s->iterations, s->ns,
                     s->cpu_ns >= 0 ? s->cpu_ns : NAN, s, &first);
            real[k] = s->ns;
            cpu[k] = s->cpu_ns;
            have_cpu &= s->cpu_ns >= 0;
        }
        double rs[4], cs[4] = {NAN, NAN, NAN, NAN};
        summary(real, c->n, rs);
        if (have_cpu)
            summary(cpu, c->n, cs);
        static const char *const aggs[4] = {"mean", "median", "stddev", "cv"};
        for (int a = 0; a < 4; a++) {
            char an[600];
            snprintf(an, sizeof an, "%s_%s", name, aggs[a]);
            gb_entry(f, c, an, family, "aggregate", aggs[a], a == 3 ? "percentage" : "time", 0, (uint64_t)c->n,
                     rs[a], cs[a], NULL, &first);
        }
        family++;
        free(by_rep);
        free(real);
        free(cpu);
    }
    fputs("\n  ]\n}\n", f);
}
