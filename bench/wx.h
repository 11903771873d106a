/* wx.h - the C API every wxbench scenario includes.
 *
 * Strategies (ways to get memory a JIT can write and then execute), code
 * generation for the host ISA, instruction-cache maintenance, the machine
 * description, counters, and the row/benchmark plumbing scenarios use.
 * The core parts (strategies, codegen, icache, platform) never depend on
 * Google Benchmark; only the wx_bench_* functions do (see gbench_shim.h).
 */
#ifndef WX_H
#define WX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length of every buffer that carries a human-readable reason. */
#define WX_REASON_LEN 256

/* ---------------------------------------------------------------------------
 * Strategies
 * ------------------------------------------------------------------------ */

/* Flags describing what a strategy's permission change affects. */
enum {
    WX_PER_THREAD = 1u << 0,      /* begin/end_write change only the calling thread's view */
    WX_WRITABLE_ALIAS = 1u << 1,  /* a writable view of the code exists permanently */
    WX_ALWAYS_RWX = 1u << 2,      /* memory is writable and executable at once, never switched */
    WX_NO_SWITCH = 1u << 3,       /* begin/end_write do nothing (rwx, dualmap) */
};

/* One region of code memory handed out by a strategy. */
typedef struct wx_region {
    void *write;        /* where code is written (valid while writable) */
    void *exec;         /* where code is executed (valid while executable) */
    size_t size;        /* bytes, a multiple of the page size */
    int fd;             /* file descriptor behind a shared mapping, or -1 */
    int key;            /* protection key, or -1 */
    void *priv;         /* strategy-private pointer */
} wx_region;

/* A strategy: one way to get writable-then-executable memory.
 * Every function returns 0 on success or an errno value; begin_write and
 * end_write always perform the change they stand for (no state tracking),
 * so a caller can time redundant requests. A freshly mapped region is in the
 * executable state. */
typedef struct wx_strategy {
    const char *name;          /* as used on the command line and in results.csv */
    const char *summary;       /* one line: how it works */
    unsigned flags;            /* WX_* flags above */
    /* 1 if the strategy can run here; else 0 with why[] filled in. */
    int (*supported)(char *why, size_t len);
    /* Map a region of at least size bytes; on failure why[] says which call failed. */
    int (*map)(wx_region *r, size_t size, char *why, size_t len);
    /* Make the region writable for the calling thread (code may not run). */
    int (*begin_write)(wx_region *r);
    /* Make the region executable for the calling thread (code may not be written). */
    int (*end_write)(wx_region *r);
    /* Release everything map() acquired. */
    void (*unmap)(wx_region *r);
    /* Optional; NULL for every strategy where a memcpy between begin_write
     * and end_write writes code. Where set (mapjit_callback), the region is
     * writable only inside this call: it becomes writable for the calling
     * thread, len bytes are copied from src to offset off of r->write, and it
     * is executable again when the call returns (len 0: the round trip with
     * nothing copied). begin_write then returns ENOTSUP and end_write does
     * nothing, so code must be written through wx_write_code(). Returns 0 or
     * an errno value. */
    int (*write_code)(wx_region *r, size_t off, const void *src, size_t len);
} wx_strategy;

/* Every strategy compiled in, in display order, NULL-terminated. */
extern const wx_strategy *const wx_strategies[];
/* The strategy called name, or NULL. */
const wx_strategy *wx_strategy_find(const char *name);
/* Number of strategies in wx_strategies. */
size_t wx_strategy_count(void);

/* Map size bytes of plain read+write+execute memory for a baseline loop (the
 * same code with no permission change); on failure why[] says why. */
int wx_baseline_map(wx_region *r, size_t size, char *why, size_t len);
/* Release a region from wx_baseline_map. */
void wx_baseline_unmap(wx_region *r);
/* Map baseline memory, touch every page, put a stub returning value at its
 * start and check that it runs. Returns 0; 1 when no such memory can be
 * mapped here (the row is unsupported); -1 when the check failed (the row
 * failed; nothing is left mapped). why says which. */
int wx_baseline_prepare(wx_region *r, size_t size, uint32_t value, char *why, size_t len);

/* Map a region with strategy s, write every page (so no page is untouched
 * when timing starts), put a stub returning value at its start, make it
 * executable, call it and check the value. Returns 0, or an errno / -1 with
 * why[] saying which step failed. The region is left executable. */
int wx_region_prepare(const wx_strategy *s, wx_region *r, size_t size, uint32_t value, char *why, size_t len);

/* Write len bytes of code from src at offset off of region r and leave r
 * executable: s->write_code where the strategy has one, else begin_write,
 * memcpy to r->write + off, end_write. len 0 is one writable->executable
 * round trip with nothing copied. Returns 0 or an errno value. Scenarios
 * that write code should call this (or branch on s->write_code themselves)
 * so that mapjit_callback runs them too. The instruction cache is not
 * touched: call wx_icache_flush afterwards. */
int wx_write_code(const wx_strategy *s, wx_region *r, size_t off, const void *src, size_t len);

/* Format "call: strerror(err)" into why; returns err (for one-line error returns). */
int wx_why_errno(char *why, size_t len, const char *call, int err);

/* ---------------------------------------------------------------------------
 * Code generation for the host ISA
 * ------------------------------------------------------------------------ */

/* A generated function: takes nothing, returns a 32-bit constant. */
typedef uint32_t (*wx_stub_fn)(void);

/* Bytes of the smallest stub wx_emit_stub writes. */
size_t wx_stub_size(void);
/* Instruction alignment required for a stub's start. */
size_t wx_stub_align(void);
/* Write a stub returning value at buf (size bytes, >= wx_stub_size(), a
 * multiple of the instruction size): leading no-ops, then the return.
 * Returns the number of bytes written, or 0 if size is too small. */
size_t wx_emit_stub(void *buf, size_t size, uint32_t value);
/* Rewrite only the constant of a stub of size bytes emitted at buf. */
void wx_patch_stub(void *buf, size_t size, uint32_t value);
/* Read the constant back from the bytes of a stub (for tests). */
uint32_t wx_stub_value(const void *buf, size_t size);
/* Turn an executable address into a callable stub pointer. */
wx_stub_fn wx_stub_at(void *exec);
/* Name of the ISA the code generator targets ("x86_64" or "arm64"). */
const char *wx_codegen_isa(void);

/* ---------------------------------------------------------------------------
 * Instruction cache
 * ------------------------------------------------------------------------ */

/* Make len bytes of new code at exec visible to instruction fetch on this
 * thread (write is the address it was written through; may equal exec). */
void wx_icache_flush(void *write, void *exec, size_t len);
/* Name of the method wx_icache_flush uses here. */
const char *wx_icache_method(void);

/* ---------------------------------------------------------------------------
 * Platform: machine description, pinning, counters
 * ------------------------------------------------------------------------ */

/* What wxbench knows about the machine it runs on. */
typedef struct wx_machine {
    char slug[96];          /* e.g. amd-epyc-7b13-vm */
    char chip[128];         /* CPU name as the OS reports it */
    char os[96];            /* e.g. "Linux 6.1.0" */
    char kernel[256];       /* full kernel description */
    char arch[16];          /* arm64 or x86_64 */
    long page_size;         /* bytes */
    long cache_line;        /* bytes, 0 if unknown */
    int ncpu;               /* logical CPUs online */
    int ncpu_allowed;       /* CPUs this process may run on */
    int hypervisor;         /* 1 when running under a hypervisor */
    int pku;                /* CPU has protection keys (-1 unknown) */
    int ospke;              /* OS enabled protection keys (-1 unknown) */
    int poe;                /* arm64 POE present (-1 unknown / not arm64) */
    int ctr_dic;            /* arm64 CTR_EL0.DIC (-1 unknown) */
    int ctr_idc;            /* arm64 CTR_EL0.IDC (-1 unknown) */
    int perf_cores;         /* Apple P-cores (0 where not applicable) */
    int eff_cores;          /* Apple E-cores (0 where not applicable) */
    int emulated;           /* 1 when the CPU is emulated (Rosetta 2, qemu-user), 0 no, -1 unknown */
    long timer_hz;          /* frequency of the clock behind wx_now_ns/Google Benchmark (0 unknown) */
    double timer_step_ns;   /* smallest step seen between two clock readings (0 unknown) */
} wx_machine;

/* Fill m with what the OS says about this machine. */
void wx_machine_describe(wx_machine *m);
/* Write the machine-specific part of meta.json (no surrounding braces; each
 * line "  \"key\": value," ) to f. */
void wx_machine_write_meta(const wx_machine *m, void *file);

/* Pin the calling thread to the index-th CPU it is allowed on (wrapping);
 * returns the CPU number, or -1 with why filled where pinning is impossible. */
int wx_pin_thread(int index, char *why, size_t len);
/* The CPU wx_pin_thread(index) would pin to, without pinning; -1 if none. */
int wx_cpu_for_index(int index);
/* CPU the calling thread runs on now, or -1. */
int wx_current_cpu(void);
/* Number of CPUs this process may run on. */
int wx_cpus_allowed(void);

/* How wx_pin_thread places threads here, for meta.json (one sentence). */
const char *wx_pin_method(void);

/* Core classes every single-thread case is measured on, in order: "P" and
 * "E" on Apple silicon with two performance levels, else just "any".
 * Returns how many (at most max) and points classes[i] at static names. */
int wx_core_classes(const char **classes, int max);
/* Ask the scheduler to run the calling thread on cores of class cls: "P"
 * (macOS QOS_CLASS_USER_INTERACTIVE), "E" (QOS_CLASS_BACKGROUND), "any"
 * (back to the QoS the process started with; nothing on Linux). A request,
 * not a pin: macOS may still move the thread. Returns 0 or an errno value
 * with why filled. */
int wx_set_core_class(const char *cls, char *why, size_t len);
/* Class of CPU number cpu (as wx_current_cpu reports it): 'P', 'E', or 0
 * when unknown or when the machine has one class. */
int wx_cpu_class(int cpu);
/* Put the calling thread's per-thread JIT write state back to executable
 * (macOS on Apple silicon: pthread_jit_write_protect_np(1); nothing
 * elsewhere). Call at the start of every thread and scenario, and after a
 * fault was caught (wx_try) while a strategy's region was writable. */
void wx_jit_thread_reset(void);

/* Monotonic wall clock in nanoseconds. */
uint64_t wx_now_ns(void);

/* Counters read around a timed loop. */
typedef struct wx_counters {
    uint64_t tlb_start;     /* TLB shootdowns counted before */
    int tlb_ok;             /* 1 if the count is available */
    int cycles_fd;          /* perf_event fd counting cycles, or -1 */
    uint64_t cycles_start;  /* cycles before */
} wx_counters;

/* Sum of TLB shootdown interrupts over all CPUs; 0 with *ok = 0 where not counted. */
uint64_t wx_tlb_shootdowns(int *ok);
/* 1 if this thread's cycles can be counted; else 0 and why. */
int wx_cycles_available(char *why, size_t len);
/* Start counting around a timed loop. */
void wx_counters_begin(wx_counters *c);
/* Stop counting: deltas into *tlb and *cycles (negative = not available). */
void wx_counters_end(wx_counters *c, double *tlb, double *cycles);

/* ---------------------------------------------------------------------------
 * Faults: run a piece of code and report whether it faulted
 * ------------------------------------------------------------------------ */

/* Call fn(arg) with SIGSEGV/SIGBUS (and SIGILL) caught on this thread.
 * Returns 0 when fn returned, else the signal number that stopped it. */
int wx_try(void (*fn)(void *), void *arg);
/* Name of a signal, e.g. "SIGSEGV". */
const char *wx_signal_name(int sig);


/* ---------------------------------------------------------------------------
 * Scenarios, cases and rows
 * ------------------------------------------------------------------------ */

/* The parameter columns of one measured configuration (one results.csv row
 * per repetition). */
typedef struct wx_case {
    const char *variant;    /* sub-case name, e.g. "flip" */
    int threads;            /* worker threads doing the op (>= 1) */
    int victims;            /* other threads in the address space, not doing the op */
    uint64_t size_bytes;    /* swept size, 0 where none */
    int batch;              /* patches per writable window (1 unless swept) */
    double min_time;        /* seconds Google Benchmark runs it (0: the run's default) */
    uint64_t iterations;    /* fixed op count (0: let Google Benchmark choose) */
    uintptr_t param;        /* scenario-private parameter */
} wx_case;

/* One thread of a running benchmark (wraps Google Benchmark's State). */
typedef struct wxgb_state wx_bench;

/* Body of a benchmark: sets up, runs the timed loop, verifies, tears down. */
typedef void (*wx_bench_fn)(wx_bench *b, const wx_strategy *s, const wx_case *c);

/* What a scenario sees of the run it is registering into. */
typedef struct wx_run {
    const wx_strategy *strategy;  /* strategy of this child process, or NULL for "none" */
    int quick;                    /* 1 under --quick: smaller sweeps */
    int ncpu;                     /* CPUs the process may use */
    long page_size;               /* bytes */
    const char *out_dir;          /* where results.csv is (for extra files beside it) */
    double min_time;              /* seconds per repetition in force */
    int repetitions;              /* repetitions in force */
} wx_run;

/* A scenario: one question measured across strategies. */
typedef struct wx_scenario {
    const char *name;             /* command-line and results.csv name */
    const char *question;         /* one line: what it answers */
    const char *op;               /* what one op is (README, --list) */
    const char *const *variants;  /* NULL-terminated variant names */
    int strategy_free;            /* 1: runs once with strategy "none" */
    /* Register every case for run->strategy with wx_add_case/wx_add_unsupported. */
    void (*register_cases)(const wx_run *run);
    /* Optional: called instead of register_cases when run->strategy cannot
     * run here (why says why), before the runner writes its unsupported rows;
     * for scenarios that keep a side file (wx_audit's audit.csv). */
    void (*record_unsupported)(const wx_run *run, const char *why);
} wx_scenario;

/* Every scenario compiled in (scenarios/scenarios.def), NULL-terminated. */
extern const wx_scenario *const wx_scenarios[];
/* The scenario called name, or NULL. */
const wx_scenario *wx_scenario_find(const char *name);

/* Register case c (copied) to be measured by body; body NULL registers the
 * idiomatic native Google Benchmark loop over an empty op (harness/native). */
void wx_add_case(const wx_case *c, wx_bench_fn body);
/* Register case c as a row with status unsupported and this reason. */
void wx_add_unsupported(const wx_case *c, const char *reason);

/* The batched timed loop: while (wx_bench_keep_running(b, n)) { n ops }. */
int wx_bench_keep_running(wx_bench *b, uint64_t n);
/* Mark this measurement failed (verification or a call failed); the loop
 * must be left right after. */
void wx_bench_fail(wx_bench *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Start the counters (cycles, TLB shootdowns): call just before the loop. */
void wx_bench_counters_begin(wx_bench *b);
/* Stop the counters and attach per-op values: call just after the loop. */
void wx_bench_counters_end(wx_bench *b);
/* Index of the calling worker thread (0..threads-1). */
int wx_bench_thread_index(const wx_bench *b);
/* Number of worker threads of this benchmark. */
int wx_bench_threads(const wx_bench *b);
/* Core class of the case being measured, as its rows' core_class column
 * says: "P" or "E" (Apple silicon, single-thread cases) or "any". For
 * side files that must name the row they belong to. */
const char *wx_bench_core_class(const wx_bench *b);

/* Fault injection for tests (builds with -DWX_TESTING only; 0 otherwise):
 * 1 if the named fault ("skip_write", "corrupt_stub", ...) is requested. */
int wx_test_inject(const char *fault);

/* ---------------------------------------------------------------------------
 * JIT workload and W^X audit (jit_workload, wx_audit): 8-byte-constant
 * stubs, cases timed by their body, the audit, side files beside results.csv
 * ------------------------------------------------------------------------ */

/* A generated function returning a 64-bit constant. */
typedef uint64_t (*wx_stub64_fn)(void);

/* Bytes of the smallest 8-byte-constant stub (x86_64 17, arm64 20). */
size_t wx_stub64_size(void);
/* Write a stub returning value at buf (size bytes, >= wx_stub64_size(), a
 * multiple of 4 on arm64): leading no-ops, then
 *   x86_64: movabs rax, imm64 ; ret ; up to 7 int3 - the immediate on an
 *           8-byte boundary relative to buf;
 *   arm64:  movz x0 ; movk x0, lsl 16 ; movk x0, lsl 32 ; movk x0, lsl 48 ; ret.
 * Returns the number of bytes written, or 0 if size does not fit. */
size_t wx_emit_stub64(void *buf, size_t size, uint64_t value);
/* Rewrite only the constant of a stub64 of size bytes at buf: one aligned
 * 8-byte store on x86_64 when buf is 8-byte aligned; on arm64 four aligned
 * 4-byte stores, so each instruction is either old or new, never torn. */
void wx_patch_stub64(void *buf, size_t size, uint64_t value);
/* Read the constant back from the bytes of a stub64 (for tests). */
uint64_t wx_stub64_value(const void *buf, size_t size);
/* Turn an executable address into a callable stub64 pointer. */
wx_stub64_fn wx_stub64_at(void *exec);

/* Register case c like wx_add_case, but the row's ns_per_op is the time the
 * body reports with wx_bench_batch_time, per op, instead of the wall time of
 * the whole loop: for an op that is one timed part of each loop step
 * (wx_audit/exposure_window). */
void wx_add_case_manual_time(const wx_case *c, wx_bench_fn body);
/* In a wx_add_case_manual_time body: the ns the ops of the batch just run
 * took; call once after each wx_bench_keep_running batch. */
void wx_bench_batch_time(wx_bench *b, double ns);

/* The W^X properties the audit answers, in audit.csv order. A "yes" is
 * always a weakness: code can be written while it, or another view of it,
 * can run, or by a thread that did not ask for it. */
enum {
    WX_AUDIT_WRITABLE_AT_REST,  /* a thread can write the code while no thread asked for write access */
    WX_AUDIT_PERMANENT_ALIAS,   /* a second view of the code is writable at all times */
    WX_AUDIT_WRITER_EXECUTES,   /* the writing thread can run the code while it holds write access */
    WX_AUDIT_OTHER_WRITES,      /* another thread can write while the writer holds write access */
    WX_AUDIT_OTHER_EXECUTES,    /* another thread can run the code while the writer holds write access */
    WX_AUDIT_INHERITED_WRITE,   /* a thread started during a write window can still write after it closed */
    WX_AUDIT_NPROPS,
};

/* Answers of the audit of one strategy. */
typedef struct wx_audit {
    int result[WX_AUDIT_NPROPS];                   /* 1 yes, 0 no, -1 n/a */
    char evidence[WX_AUDIT_NPROPS][WX_REASON_LEN]; /* the access or signal that decided it, or why n/a */
    int complete;                                  /* 1 when every check ran (unsupported counts as complete) */
} wx_audit;

/* Property names as audit.csv spells them, indexed by WX_AUDIT_*. */
extern const char *const wx_audit_property_names[WX_AUDIT_NPROPS];
/* "yes", "no" or "n/a" for a result. */
const char *wx_audit_result_name(int result);
/* The exact audit.csv header line, newline included. */
extern const char wx_audit_csv_header[];
/* Audit strategy s in this process (faults are provoked on purpose: call it
 * in a child). An unsupported strategy gets n/a answers saying why. */
void wx_audit_strategy(const wx_strategy *s, wx_audit *a);
/* Audit s in a forked child with a time limit; a child that dies or hangs
 * gives n/a answers naming the signal or the limit, and complete = 0. */
void wx_audit_strategy_isolated(const wx_strategy *s, wx_audit *a, int timeout_s);
/* Set every answer of a to n/a with this evidence. */
void wx_audit_all_na(wx_audit *a, const char *evidence);
/* Append a's rows for strategy to dir/audit.csv (wx_side_csv_append), one
 * write per row. Returns 0, or an errno with why[] filled. */
int wx_audit_write_csv(const char *dir, const char *strategy, const wx_audit *a, char *why, size_t len);

/* Append one line (newline included) to dir/name, a CSV file beside
 * results.csv shared by every child of the run: the file comes into being
 * with its header already in it (written aside, then linked into place), and
 * the line goes out in one write() on an O_APPEND descriptor, so children
 * never interleave rows or repeat the header. Returns 0, or an errno with
 * why[] filled. */
int wx_side_csv_append(const char *dir, const char *name, const char *header, const char *line, char *why,
                       size_t len);
/* Format n fields as one RFC 4180 line (newline included) in a malloc'd
 * string (caller frees); NULL when out of memory. */
char *wx_csv_line(const char *const *fields, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* WX_H */
