/* harness.c - what the harness itself costs per op: an empty op (a compiler
 * barrier) timed through wxbench's kernel loop (the C shim's batched loop)
 * and through the idiomatic native C++ Google Benchmark loop, in the same
 * run. */
#include "../bench/app/scenario.h"

#define HARNESS_BATCH 1000

/* n empty ops. A count-down loop, the shape of Google Benchmark's own
 * iterator (decrement, branch on zero), so both variants time the same op. */
static int shim_empty(wx_job *j, uint64_t n)
{
    (void)j;
    for (uint64_t i = n; i != 0; i--)
        __asm__ __volatile__("" ::: "memory");
    return 0;
}

static const wx_kernel k_shim = {.step = HARNESS_BATCH, .ops = shim_empty};

static void harness_register(const wx_run *run)
{
    (void)run;
    wx_case shim = {.variant = "shim"};
    wx_case native = {.variant = "native"};
    wx_add(&shim, &k_shim);
    wx_add_native(&native); /* Google Benchmark's own `for (auto _ : state)` loop */
}

static const char *const harness_variants[] = {"shim", "native", NULL};

const wx_scenario wx_scenario_harness = {
    .name = "harness", .variants = harness_variants, .register_cases = harness_register, .strategy_free = 1,
    .question = "what does the measuring harness itself add per op?",
    .op = "one empty op (a compiler barrier) inside the timed loop",
};
