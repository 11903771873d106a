/* platform.h - the machine: its description, pinning, core classes, the
 * clock and the counters read around timed loops. Part of the C core. */
#ifndef WX_PLATFORM_H
#define WX_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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
/* The fields every platform's meta.json starts with (os, kernel, machine,
 * chip, arch): platform_common.c, for wx_machine_write_meta. */
void wx_machine_write_common(const wx_machine *m, void *file);

/* Pin the calling thread to the index-th CPU it is allowed on (wrapping);
 * returns the CPU number, or -1 with why filled where pinning is impossible. */
int wx_pin_thread(int index, char *why, size_t len);
/* The CPU wx_pin_thread(index) would pin to, without pinning; -1 if none. */
int wx_cpu_for_index(int index);
/* CPU the calling thread runs on now, or -1. */
int wx_current_cpu(void);
/* Number of CPUs this process may run on. */
int wx_cpus_allowed(void);
/* Tasks runnable on the machine right now, this one included (Linux: procs_running
 * of /proc/stat); -1 where the OS does not say. */
int wx_runnable_tasks(void);

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

/* ------------------------------------------------------------------------
 * Code signing, and what the OS enforces on JIT memory (macOS; elsewhere
 * `applicable` is 0, mode is "n/a" and every answer -1). Answers are 1 yes,
 * 0 no, -1 unknown. Read once per process (children inherit the answers).
 * --------------------------------------------------------------------- */

typedef struct wx_signing {
    int applicable;            /* 1 on macOS */
    long long cs_flags;        /* csops(CS_OPS_STATUS) of this process, -1 unknown */
    int hardened_runtime;      /* CS_RUNTIME: the hardened runtime applies */
    int adhoc;                 /* CS_ADHOC: signed ad hoc */
    int linker_signed;         /* CS_LINKER_SIGNED: the linker's own ad-hoc signature */
    int allow_jit;             /* entitlement com.apple.security.cs.allow-jit */
    int jit_write_allowlist;   /* entitlement com.apple.security.cs.jit-write-allowlist */
    long long cs_config;       /* sysctl security.codesigning.config, -1 where it is missing */
    int csm;                   /* the code-signing monitor is on (CS_CONFIG_CSM_ENABLED) */
    int map_jit_enabled;       /* CS_CONFIG_MAP_JIT: MAP_JIT is not turned off system-wide */
    int lockdown;              /* Lockdown Mode (security.mac.lockdown_mode_state) */
    int translated;            /* an x86_64 process under Rosetta 2 (sysctl.proc_translated) */
    char mode[32];             /* "linker-signed", "ad-hoc", "hardened", "hardened-allowlist", "signed",
                                  "unsigned", "unknown", or "n/a" (not macOS) */
    char text[400];            /* what was read, in one sentence */
} wx_signing;

/* This process's signing and the system's code-signing state (cached). */
void wx_signing_describe(wx_signing *s);
/* 1 when the code-signing monitor is on (an execute fault it cannot resolve
 * kills the process with SIGKILL instead of a catchable signal), 0 off, -1
 * unknown; why (may be NULL) gets what was read. */
int wx_code_signing_monitor(char *why, size_t len);
/* 1 when libpthread enforces the JIT write-callback allow-list for this
 * process (the jit-write-allowlist entitlement: pthread_jit_write_protect_np
 * then aborts the process), 0 not, -1 unknown; why (may be NULL) gets the
 * evidence. Cached. */
int wx_jit_allowlist_enforced(char *why, size_t len);
/* 1 when a write to MAP_JIT memory faults while the thread is
 * write-protected (the per-thread toggle is enforced), 0 when it succeeds
 * (not enforced on this machine: a virtual machine?), -1 where it does not
 * apply or could not be checked; why (may be NULL) says which. Checked once,
 * in a child process. */
int wx_jit_toggle_enforced(char *why, size_t len);

/* Nanoseconds the calling thread has spent runnable but waiting for a CPU,
 * where the OS counts that (Linux: run_delay, the second field of
 * /proc/thread-self/schedstat); -1 where it does not (macOS): there wall
 * time minus the thread's CPU time stands for it. */
int64_t wx_thread_wait_ns(void);

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

#ifdef __cplusplus
}
#endif

#endif /* WX_PLATFORM_H */
