// gbench_shim.cc - the only C++ in wxbench: Google Benchmark behind the C API
// of gbench_shim.h. Benchmarks are registered at run time; results reach C
// through a reporter that hands each repetition to a callback as soon as
// Google Benchmark reports it, and forwards to Google Benchmark's own display
// reporter when the user asked for one (--benchmark_format).
#include "gbench_shim.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#ifndef WX_GBENCH_VERSION
#define WX_GBENCH_VERSION "unknown"
#endif

struct wxgb_state {
    benchmark::State *st;                    // Google Benchmark's per-thread state
    alignas(64) unsigned char scratch[256];  // C-side per-thread data
};

namespace {

std::map<std::string, void *> g_args;  // benchmark name -> what was registered with it
std::string g_format;                  // --benchmark_format value, "" if not given

// Google Benchmark 1.7 reports failures as error_occurred/error_message,
// 1.8 and later as skipped/skip_message: accept both.
template <class R>
auto run_failed(const R &r, int) -> decltype(r.error_occurred, bool()) {
    return r.error_occurred;
}
template <class R>
auto run_failed(const R &r, long) -> decltype(r.skipped, bool()) {
    return static_cast<int>(r.skipped) != 0;
}
template <class R>
auto run_message(const R &r, int) -> decltype(r.error_message, std::string()) {
    return r.error_message;
}
template <class R>
auto run_message(const R &r, long) -> decltype(r.skip_message, std::string()) {
    return r.skip_message;
}

double counter_or(const benchmark::BenchmarkReporter::Run &run, const char *name) {
    auto it = run.counters.find(name);
    return it == run.counters.end() ? -1.0 : static_cast<double>(it->second.value);
}

class CaptureReporter : public benchmark::BenchmarkReporter {
  public:
    CaptureReporter(wxgb_report_fn fn, void *ctx, BenchmarkReporter *inner)
        : fn_(fn), ctx_(ctx), inner_(inner) {}

    bool ReportContext(const Context &context) override {
        return inner_ ? inner_->ReportContext(context) : true;
    }

    void ReportRuns(const std::vector<Run> &runs) override {
        for (const Run &run : runs) {
            if (run.run_type != Run::RT_Iteration)
                continue;  // aggregates (mean, median...) are recomputed from rows
            auto it = g_args.find(run.run_name.function_name);
            wxgb_result r;
            std::memset(&r, 0, sizeof r);
            std::string msg = run_message(run, 0);
            r.arg = it == g_args.end() ? nullptr : it->second;
            r.iterations = static_cast<uint64_t>(run.iterations);
            r.error = run_failed(run, 0) ? 1 : 0;
            r.message = msg.c_str();
            // Google Benchmark divides the threads' mean wall time by the
            // iterations of all threads together; per thread, an op takes
            // `threads` times that (wxgb_result.ns_per_op is per thread).
            r.ns_per_op = r.error || run.iterations == 0
                              ? -1.0
                              : run.GetAdjustedRealTime() * static_cast<double>(run.threads > 0 ? run.threads : 1);
            r.cpu_ns_per_op = r.error || run.iterations == 0 ? -1.0 : run.GetAdjustedCPUTime();
            r.cycles_per_op = counter_or(run, "cycles_per_op");
            r.tlb_per_op = counter_or(run, "tlb_per_op");
            fn_(&r, ctx_);
        }
        if (inner_)
            inner_->ReportRuns(runs);
    }

    void Finalize() override {
        if (inner_)
            inner_->Finalize();
    }

  private:
    wxgb_report_fn fn_;
    void *ctx_;
    BenchmarkReporter *inner_;
};

// B is what RegisterBenchmark returns: benchmark::internal::Benchmark in
// Google Benchmark 1.7 (Debian's), benchmark::Benchmark in current releases,
// which deprecate the internal name (1.9.5 on). Naming either type breaks
// the build (-Werror) with one of them, so the call's argument names it.
template <class B>
B *apply(B *b, const wxgb_options *o) {
    if (o->manual_time)
        b->UseManualTime();  // excludes UseRealTime: Google Benchmark refuses both
    else
        b->UseRealTime();
    b->Unit(benchmark::kNanosecond);
    b->Repetitions(1);  // each repetition is registered as a benchmark of its own: see register_one
    if (o->threads > 1)
        b->Threads(o->threads);
    if (o->iterations > 0)
        b->Iterations(static_cast<benchmark::IterationCount>(o->iterations));
    else if (o->min_time > 0)
        b->MinTime(o->min_time);
    return b;
}

}  // namespace

extern "C" int wxgb_init(int *argc, char **argv, char *why, size_t len) {
    for (int i = 1; i < *argc; i++)
        if (std::strncmp(argv[i], "--benchmark_format=", 19) == 0)
            g_format = argv[i] + 19;
    benchmark::Initialize(argc, argv);
    if (*argc > 1) {
        std::snprintf(why, len, "unknown Google Benchmark argument '%s'", argv[1]);
        return -1;
    }
    if (!g_format.empty() && g_format != "console" && g_format != "json" && g_format != "csv") {
        std::snprintf(why, len, "--benchmark_format must be console, json or csv, not '%s'", g_format.c_str());
        return -1;
    }
    return 0;
}

// Each registered benchmark has Repetitions(1); the caller registers one
// per repetition under its own name. Google Benchmark computes aggregates
// over the repetitions of one benchmark, and that code dereferences the
// first repetition's statistics (null when it failed) and checks that every
// repetition ran the same number of iterations (a failed one may not), so a
// case that fails in some repetitions and not in others would kill the
// child. One repetition per benchmark has no aggregates.
template <class F>
void register_one(const char *name, void *arg, const wxgb_options *o, F fn) {
    g_args[name] = arg;
    apply(benchmark::RegisterBenchmark(name, fn), o);
}

extern "C" void wxgb_register(const char *name, wxgb_body body, void *arg, const wxgb_options *o) {
    register_one(name, arg, o, [body, arg](benchmark::State &st) {
        wxgb_state w;
        w.st = &st;
        std::memset(w.scratch, 0, sizeof w.scratch);
        body(&w, arg);
    });
}

// The idiomatic Google Benchmark loop around the same empty op the C side
// times (a compiler barrier), to measure what the shim adds. before/after
// run outside the timed loop (core class, progress), as for C bodies.
extern "C" void wxgb_register_native_empty(const char *name, void *arg, const wxgb_options *o,
                                           int (*before)(wxgb_state *, void *),
                                           void (*after)(wxgb_state *, void *)) {
    register_one(name, arg, o, [arg, before, after](benchmark::State &st) {
        wxgb_state w;
        w.st = &st;
        std::memset(w.scratch, 0, sizeof w.scratch);
        if (before && before(&w, arg) != 0)
            return;
        for (auto _ : st)
            __asm__ __volatile__("" ::: "memory");
        if (after)
            after(&w, arg);
    });
}

extern "C" size_t wxgb_run(wxgb_report_fn report, void *ctx) {
    std::unique_ptr<benchmark::BenchmarkReporter> inner;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    if (g_format == "console")
        inner.reset(new benchmark::ConsoleReporter);
    else if (g_format == "json")
        inner.reset(new benchmark::JSONReporter);
    else if (g_format == "csv")
        inner.reset(new benchmark::CSVReporter);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    CaptureReporter capture(report, ctx, inner.get());
    size_t n = benchmark::RunSpecifiedBenchmarks(&capture);
    std::fflush(stdout);
    return n;
}

extern "C" const char *wxgb_version(void) { return WX_GBENCH_VERSION; }

extern "C" int wxgb_keep_running(wxgb_state *st, uint64_t n) {
    return st->st->KeepRunningBatch(static_cast<benchmark::IterationCount>(n)) ? 1 : 0;
}

extern "C" void wxgb_fail(wxgb_state *st, const char *message) { st->st->SkipWithError(message); }

extern "C" void wxgb_set_batch_time(wxgb_state *st, double seconds) { st->st->SetIterationTime(seconds); }

extern "C" void wxgb_set_counter(wxgb_state *st, const char *name, double total) {
    // Summed over the threads that set it, divided by the iterations of all
    // threads: per op. (kAvgThreads would divide by the thread count again.)
    st->st->counters[name] = benchmark::Counter(total, benchmark::Counter::kAvgIterations);
}

extern "C" int wxgb_thread_index(const wxgb_state *st) { return static_cast<int>(st->st->thread_index()); }

extern "C" int wxgb_threads(const wxgb_state *st) { return static_cast<int>(st->st->threads()); }

extern "C" void *wxgb_scratch(wxgb_state *st, size_t size) {
    return size <= sizeof st->scratch ? st->scratch : nullptr;
}
