/* fault.c - run a piece of code with SIGSEGV, SIGBUS and SIGILL caught on
 * this thread, to find out whether an access is allowed. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "wx.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

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

