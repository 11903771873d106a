/* fault.h - run a piece of code and report whether it faulted. Part of
 * the C core. */
#ifndef WX_FAULT_H
#define WX_FAULT_H


#ifdef __cplusplus
extern "C" {
#endif

/* Call fn(arg) with SIGSEGV/SIGBUS (and SIGILL) caught on this thread.
 * Returns 0 when fn returned, else the signal number that stopped it. */
int wx_try(void (*fn)(void *), void *arg);
/* Name of a signal, e.g. "SIGSEGV". */
const char *wx_signal_name(int sig);

#ifdef __cplusplus
}
#endif

#endif /* WX_FAULT_H */
