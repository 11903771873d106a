/* threads.h - what scenarios run beside the measuring thread.
 *
 * A reusable barrier (macOS has no pthread_barrier_t) and "victims": threads
 * of this process or forked processes, pinned one per other CPU, started
 * behind a barrier and spinning while they count their progress and report
 * their CPU time, so that a scenario can prove they ran during its timed
 * loop. Portable POSIX; no Google Benchmark.
 */
#ifndef WX_THREADS_H
#define WX_THREADS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Barrier
 * ------------------------------------------------------------------------ */

/* A reusable barrier. The number of parties is given at each wait, so a
 * static barrier can serve benchmarks with different thread counts (every
 * caller of one round must pass the same number). */
typedef struct wx_barrier {
    pthread_mutex_t lock;      /* protects the fields below */
    pthread_cond_t cond;       /* signalled when a round completes */
    unsigned waiting;          /* callers of the current round that arrived */
    unsigned long generation;  /* rounds completed */
} wx_barrier;

/* Static initialiser for a wx_barrier. */
#define WX_BARRIER_INITIALIZER {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

/* Wait until parties callers have arrived; returns 1 in the last to
 * arrive and 0 in the others. */
int wx_barrier_wait(wx_barrier *b, unsigned parties);

/* ---------------------------------------------------------------------------
 * Threads on equal terms with the measuring thread
 * ------------------------------------------------------------------------ */

/* Start a thread at the calling thread's QoS class (macOS:
 * pthread_attr_set_qos_class_np with qos_class_self(); a plain thread
 * elsewhere), so that it competes with the calling thread on equal terms:
 * on Apple silicon a thread created without attributes outranks a
 * QOS_CLASS_BACKGROUND measuring thread on the E-cores and starves it.
 * 0, or an errno with why[] naming the call. */
int wx_thread_create_alike(pthread_t *t, void *(*fn)(void *), void *arg, char *why, size_t len);

/* CPU time of the calling thread, ns (0 where it cannot be read). */
uint64_t wx_thread_cpu_ns(void);

/* The most a measuring thread of a case with victims may wait for a CPU -
 * runnable but not running - over its timed loop for the row to be a
 * measurement of the op beside its victims: three quarters of the loop's
 * wall time. Beyond that it was starved (e.g. by victims that outranked it
 * on Apple's E-cores) and ns_per_op would be more than four times what the
 * op took while it ran. The same bar as the victims' own
 * (WX_VICTIM_MIN_RUNNING: at least a quarter on their CPU), for the same
 * reason: a row is failed where the threads it is about were mostly absent,
 * not where they merely shared a CPU (a machine busy with other work still
 * gives a pinned thread a half or a third of its CPU). Time the thread
 * spent asleep (a lock another process holds, e.g. membarrier's) is not
 * waiting for a CPU: where the OS counts run-queue delay (Linux) only that
 * is used; elsewhere wall minus CPU time stands for it. */
#define WX_MEASURING_MAX_WAITING 0.75

/* 0 when a thread whose timed loop lasted wall_ns, of which it spent cpu_ns
 * on a CPU and wait_ns runnable but waiting for one (-1: not counted here;
 * then wall_ns - cpu_ns), waited at most WX_MEASURING_MAX_WAITING of it, or
 * the loop was shorter than min_window_ns (a Google Benchmark estimating
 * run: not reported, too short to judge); else -1 with why[] saying how
 * long. */
int wx_measuring_check(uint64_t cpu_ns, int64_t wait_ns, uint64_t wall_ns, uint64_t min_window_ns, char *why,
                       size_t len);

/* ---------------------------------------------------------------------------
 * Victims: spinning threads or processes beside the measuring thread
 * ------------------------------------------------------------------------ */

/* Where victims run. */
typedef enum wx_victim_kind {
    WX_VICTIM_THREADS,   /* threads of this process: share its address space */
    WX_VICTIM_PROCESSES, /* forked processes: each its own address space */
} wx_victim_kind;

/* Results of one victim step. */
enum {
    WX_STEP_DONE = 0,   /* one unit of work done: counted */
    WX_STEP_IDLE = 1,   /* nothing done: not counted, the victim sleeps ~1 ms */
    WX_STEP_ERROR = -1, /* failure: why[] filled; the victim stops */
};

/* Run once in the victim (its thread, or its process after fork) before the
 * start barrier: 0, or nonzero with why[] filled. */
typedef int (*wx_victim_prepare_fn)(void *arg, int index, char *why, size_t len);
/* One step of a victim's loop: a WX_STEP_* value. */
typedef int (*wx_victim_step_fn)(void *arg, int index, char *why, size_t len);

/* A running set of victims. */
typedef struct wx_victims wx_victims;

/* Start n (at most WX_VICTIMS_MAX) victims of kind, at the calling
 * thread's QoS class on macOS (threads through wx_thread_create_alike,
 * processes set it after fork): victim k pins itself with wx_pin_thread(k + 1)
 * (index 0 is the measuring thread's CPU; where pinning is impossible it runs
 * unpinned), runs prepare, waits at a start barrier with the others, then
 * calls step in a loop - spinning, never sleeping unless step says idle -
 * counting done steps until stopped. Returns once every victim has counted
 * a step after the barrier, or NULL with why[] (a prepare or step failed, a
 * victim did not start within 5 s, a thread or process could not be made).
 * Processes die with the process that started them (Linux: PR_SET_PDEATHSIG;
 * elsewhere they notice their parent is gone) and are reaped by stop.
 * Start process victims before anything fork must not copy is set up. */
wx_victims *wx_victims_start(wx_victim_kind kind, int n, wx_victim_prepare_fn prepare, wx_victim_step_fn step,
                             void *arg, char *why, size_t len);
/* Most victims one set may hold. */
#define WX_VICTIMS_MAX 64

/* The least share of a timed loop's wall time each victim must spend on its
 * CPU (its own CPU time over the loop's wall time) for the loop to count as
 * measured "with victims": a victim preempted by other work receives none of
 * the interrupts the row is about while it is off its CPU. Below a quarter
 * the victim was mostly absent; between a quarter and all of it the row is a
 * number, and wx_victims_settle starts loops at moments the victims hold
 * their CPUs to keep that share high on a busy machine. */
#define WX_VICTIM_MIN_RUNNING 0.25

/* Every victim's progress at one moment (before a timed loop). */
typedef struct wx_victims_mark {
    uint64_t wall_ns;                  /* wx_now_ns() when taken */
    uint64_t steps[WX_VICTIMS_MAX];    /* done steps of each victim */
    uint64_t idles[WX_VICTIMS_MAX];    /* steps that did nothing, of each victim */
    uint64_t cpu_ns[WX_VICTIMS_MAX];   /* CPU time each victim last reported */
} wx_victims_mark;

/* Number of victims in v. */
int wx_victims_count(const wx_victims *v);
/* Record every victim's progress now into m. */
void wx_victims_mark_now(const wx_victims *v, wx_victims_mark *m);
/* 0 if since m every victim counted a step, spent at least
 * WX_VICTIM_MIN_RUNNING of the wall time on its CPU, and none failed; else
 * why[] names the first victim that did not (index, CPU, steps, share of the
 * time it ran) and the result is 1 when other work kept it off its CPU
 * (interference: measure again) or -1 when it failed or made no progress
 * on its CPU (a defect). A victim that made no step is said to have
 * made no progress when it went idle or had its CPU (a bug), and to have
 * lost its CPU when it was kept off it (a busy machine). A window shorter than min_window_ns is only
 * checked for failed victims: pass the case's min_time, since Google
 * Benchmark's estimating runs are shorter and are not reported, while every
 * run it reports lasts at least that long. */
int wx_victims_check(const wx_victims *v, const wx_victims_mark *since, uint64_t min_window_ns, char *why,
                     size_t len);

/* Verdicts of wx_victim_judge. */
enum { WX_VICTIM_RAN = 0, WX_VICTIM_BUSY = 1, WX_VICTIM_STUCK = 2 };
/* Judge one victim over a timed loop of wall_ns from what it did in it:
 * steps done, idle steps, CPU time. WX_VICTIM_RAN; WX_VICTIM_BUSY (held
 * its CPU for less than WX_VICTIM_MIN_RUNNING of the loop: other work had
 * it); WX_VICTIM_STUCK (no step, although it went idle or held its CPU: a
 * bug). why[] says which, naming kind ("thread"/"process"), index k and its
 * CPU. wx_victims_check applies it to every victim. */
int wx_victim_judge(const char *kind, int k, int cpu_number, uint64_t steps, uint64_t idles, uint64_t cpu_ns,
                    uint64_t wall_ns, char *why, size_t len);

/* Before a timed loop: wait (spinning, up to max_wait_ns) until every
 * victim has just spent at least 90% of a window of window_ns on its CPU,
 * so that a loop does not start while another program holds a victim's CPU.
 * Returns 0 when they did, -1 when the wait ran out (the loop may still run:
 * wx_victims_check judges it). */
int wx_victims_settle(const wx_victims *v, uint64_t window_ns, uint64_t max_wait_ns);
/* Stop every victim, wait for it and free v (NULL is allowed): 0, or -1 with
 * why[] (a victim's error, a process that died or had to be killed). */
int wx_victims_stop(wx_victims *v, char *why, size_t len);

/* The victim counts a sweep over 0 .. ncpu-1 victims visits, into out[]
 * (at most max, at most 64 victims): every count up to 4, then powers of two,
 * always ending at ncpu-1; under quick only 0 and ncpu-1. Returns how many. */
int wx_victim_counts(int ncpu, int quick, int *out, int max);
/* Seconds per repetition of a case with victims, from the run's min_time: a
 * quarter of it; at least 10 ms with victims (several scheduler time slices,
 * so a victim briefly preempted still shows as running), 2 ms without. */
double wx_victim_case_min_time(double run_min_time, int victims);

#ifdef __cplusplus
}
#endif

#endif /* WX_THREADS_H */
