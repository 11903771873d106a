/* fault.h - run a piece of code and report whether it faulted. Part of
 * the C core. */
#ifndef WX_FAULT_H
#define WX_FAULT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Call fn(arg) with SIGSEGV/SIGBUS (and SIGILL) caught on this thread.
 * Returns 0 when fn returned, else the signal number that stopped it. */
int wx_try(void (*fn)(void *), void *arg);
/* Name of a signal, e.g. "SIGSEGV". */
const char *wx_signal_name(int sig);

/* How wx_try_in_child ended. */
typedef struct wx_child_try {
    int sig;          /* 0: fn returned; > 0: the signal that stopped it */
    int killed;       /* 1: the child process died of sig (nothing caught it: e.g. SIGKILL) */
    int failed;       /* 1: no answer (the child could not be started or watched, it hung, or it
                         exited before answering): why says which */
    char why[256];    /* how it ended, in words */
} wx_child_try;

/* Call fn(arg) with wx_try in a forked child process, so that even a signal
 * nothing can catch (a SIGKILL from a kernel that will not resolve a fault)
 * is an answer instead of the end of this process. size bytes at arg are
 * shared with the child and copied back afterwards, also when it died (what
 * it wrote before that is kept). A child that outlives timeout_ms is killed
 * (failed). Returns t->sig, or -1 when t->failed. The child has only the
 * calling thread: fn must not wait for other threads. */
int wx_try_in_child(void (*fn)(void *), void *arg, size_t size, int timeout_ms, wx_child_try *t);

#ifdef __cplusplus
}
#endif

#endif /* WX_FAULT_H */
