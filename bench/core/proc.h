/* proc.h - run a function in a forked child with a time limit, read what it
 * writes to a pipe, and classify how it ended. The one fork helper of
 * wxbench, in the C core: the runner's children, the probe and audit
 * children, the --list support checks, the Google Benchmark flag check and
 * fault.c's wx_try_in_child use it. */
#ifndef WX_PROC_H
#define WX_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "strategy.h"

/* A running child. */
typedef struct wx_proc {
    pid_t pid;           /* the child, or -1 */
    int fd;              /* read end of its pipe, or -1 */
    uint64_t deadline;   /* wx_now_ns() after which it is killed (0: none) */
} wx_proc;

/* How a child ended. */
typedef enum wx_proc_how {
    WX_PROC_EXITED,      /* exited; code = its exit status */
    WX_PROC_SIGNALED,    /* killed by a signal; code = the signal */
    WX_PROC_TIMED_OUT,   /* outlived its limit and was killed */
    WX_PROC_LOST,        /* could not be started or watched; why says which call failed */
} wx_proc_how;

/* How a child ended, and in words ("exited with status 3", "killed by
 * SIGSEGV (Segmentation fault)", "did not finish within 30 s"). */
typedef struct wx_proc_end {
    wx_proc_how how;
    int code;
    char why[WX_REASON_LEN];
} wx_proc_end;

/* The function a child runs: writes what it has to say to fd; its return
 * value is the child's exit status. */
typedef int (*wx_proc_fn)(void *arg, int fd);

/* Start fn(arg, fd) in a forked child that dies with this process (Linux:
 * PR_SET_PDEATHSIG), with a limit of timeout_ms (0: none). 0, or an errno
 * (nothing started). */
int wx_proc_start(wx_proc *p, wx_proc_fn fn, void *arg, int timeout_ms);

/* Results of wx_proc_read. */
enum { WX_READ_EOF = 0, WX_READ_AGAIN = -1, WX_READ_TIMEOUT = -2, WX_READ_ERROR = -3 };
/* Wait up to slice_ms (and never past the deadline) for what the child
 * writes: > 0 bytes read into buf (at most cap), WX_READ_EOF when it closed
 * its end, WX_READ_AGAIN when nothing came in the slice, WX_READ_TIMEOUT at
 * the deadline, WX_READ_ERROR (errno set) when it cannot be watched. */
long wx_proc_read(wx_proc *p, void *buf, size_t cap, int slice_ms);

/* Wait for the child (killing it first when kill_it is set) and say how it
 * ended; timed_out marks a child killed at its limit. */
void wx_proc_finish(wx_proc *p, int kill_it, int timed_out, wx_proc_end *end);

/* All of it: start fn, read up to cap bytes into buf until it closes its
 * end or the limit, finish. Returns the bytes read (end says how it ended;
 * WX_PROC_EXITED with code 0 is a clean run). */
size_t wx_proc_call(wx_proc_fn fn, void *arg, void *buf, size_t cap, int timeout_ms, wx_proc_end *end);

/* A strategy's supported(), asked in a child (a check must not take wxbench
 * down; 30 s at most): 1 when supported, else 0 with the reason in why, or
 * how the check ended ("the check was killed by ..."). */
int wx_proc_supported(const wx_strategy *s, char *why, size_t len);

#endif /* WX_PROC_H */
