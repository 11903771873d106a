/* harness.c - what the harness itself costs per op: an empty op (a compiler
 * barrier) timed through the C shim's batched loop and through the idiomatic
 * native C++ Google Benchmark loop, in the same run. */
#include "../bench/wx.h"

#define HARNESS_BATCH 1000

static void shim_empty(wx_bench *b, const wx_strategy *s, const wx_case *c)
{
    (void)s;
    (void)c;
    /* A count-down loop, the shape of Google Benchmark's own iterator
     * (decrement, branch on zero), so both variants time the same op. */
    while (wx_bench_keep_running(b, HARNESS_BATCH))
        for (unsigned long i = HARNESS_BATCH; i != 0; i--)
            __asm__ __volatile__("" ::: "memory");
}

static void harness_register(const wx_run *run)
{
    (void)run;
    wx_case shim = {.variant = "shim", .threads = 1, .batch = 1};
    wx_case native = {.variant = "native", .threads = 1, .batch = 1};
    wx_add_case(&shim, shim_empty);
    wx_add_case(&native, NULL); /* Google Benchmark's own `for (auto _ : state)` loop */
}

static const char *const harness_variants[] = {"shim", "native", NULL};

const wx_scenario wx_scenario_harness = {
    .name = "harness",
    .question = "what does the measuring harness itself add per op?",
    .op = "one empty op (a compiler barrier) inside the timed loop",
    .variants = harness_variants,
    .strategy_free = 1,
    .register_cases = harness_register,
};
