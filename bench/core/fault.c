/* fault.c - run a piece of code with SIGSEGV, SIGBUS and SIGILL caught on
 * this thread, to find out whether an access is allowed. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "wx.h"
#include "proc.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

static _Thread_local sigjmp_buf *try_env;   /* where to go back on a fault */
static _Thread_local volatile sig_atomic_t try_sig;

static void on_fault(int sig)
{
    if (!try_env) {
        /* A fault outside wx_try: die of it as if nothing were installed. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    try_sig = sig;
    siglongjmp(*try_env, 1);
}

static void install_once(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &sa, NULL);
}

int wx_try(void (*fn)(void *), void *arg)
{
    /* Installed once and kept: threads may call wx_try at the same time, and
     * a fault outside wx_try still kills the process with its own signal. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_once);

    sigjmp_buf env;
    try_sig = 0;
    if (sigsetjmp(env, 1) == 0) {
        try_env = &env;
        fn(arg);
    }
    try_env = NULL;
    return try_sig;
}

const char *wx_signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    default: return "signal";
    }
}


/* The page a wx_try_in_child child answers on (MAP_SHARED: survives fork). */
typedef struct child_answer {
    volatile int done;   /* 1 once fn returned or a fault was caught */
    volatile int sig;    /* what wx_try said */
} child_answer;

#define ANSWER_OFFSET 64 /* the shared copy of arg starts here (aligned for any type) */

/* What the child of wx_try_in_child runs (a wx_proc_fn). */
typedef struct try_job {
    void (*fn)(void *);
    child_answer *ans;
    void *shared;
} try_job;

static int try_child(void *arg, int fd)
{
    (void)fd; /* the answer goes to the shared page, which outlives a child that dies */
    const try_job *j = arg;
    j->ans->sig = wx_try(j->fn, j->shared);
    j->ans->done = 1;
    return 0;
}

/* Put how the child ended and its answer into t. */
static void classify(const wx_proc_end *end, const child_answer *ans, int timeout_ms, wx_child_try *t)
{
    if (end->how == WX_PROC_TIMED_OUT) {
        t->failed = 1;
        snprintf(t->why, sizeof t->why, "the child process did not answer within %d ms and was killed", timeout_ms);
    } else if (end->how == WX_PROC_LOST) {
        t->failed = 1;
        snprintf(t->why, sizeof t->why, "%s", end->why);
    } else if (end->how == WX_PROC_SIGNALED) {
        t->sig = end->code;
        t->killed = 1;
        snprintf(t->why, sizeof t->why, "the child process was killed by %s (%s)", wx_signal_name(t->sig),
                 strsignal(t->sig));
    } else if (end->code == 0 && ans->done) {
        t->sig = ans->sig;
        if (t->sig)
            snprintf(t->why, sizeof t->why, "%s, caught in the child process", wx_signal_name(t->sig));
        else
            snprintf(t->why, sizeof t->why, "no fault (in a child process)");
    } else {
        t->failed = 1;
        snprintf(t->why, sizeof t->why, "the child process exited with status %d before answering", end->code);
    }
}

int wx_try_in_child(void (*fn)(void *), void *arg, size_t size, int timeout_ms, wx_child_try *t)
{
    memset(t, 0, sizeof *t);
    long page = sysconf(_SC_PAGESIZE);
    size_t total = ANSWER_OFFSET + size;
    total = (total + (size_t)page - 1) / (size_t)page * (size_t)page;
    void *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        t->failed = 1;
        wx_why_errno(t->why, sizeof t->why, "mmap(the child's answer page, MAP_SHARED)", errno);
        return -1;
    }
    try_job job = {.fn = fn, .ans = mem, .shared = (char *)mem + ANSWER_OFFSET};
    if (size)
        memcpy(job.shared, arg, size);
    /* The one fork helper (proc.h): the child writes nothing to the pipe,
     * which closes when it ends; a limit kills it. */
    wx_proc_end end;
    (void)wx_proc_call(try_child, &job, NULL, 0, timeout_ms, &end);
    if (size)
        memcpy(arg, job.shared, size);
    classify(&end, job.ans, timeout_ms, t);
    munmap(mem, total);
    return t->failed ? -1 : t->sig;
}
