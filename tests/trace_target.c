/* trace_target.c - a program whose W^X calls are known exactly, for the
 * tests of `wxbench trace` (tests/test_trace_replay.py). P is the page size.
 *
 * process 1, thread 1:
 *   mmap      A: 4 P, rw-                       (region A, offset 0)
 *   mprotect  A + P, 2 P: rw- -> r-x
 *   mprotect  A, 4 P: mixed -> rw-
 *   (a return instruction written at A, run once A is executable)
 *   mprotect  A, 4 P: rw- -> r-x
 * (30 ms asleep)
 * process 1, thread 2 (started and joined by thread 1):
 *   mmap      B: 2 P, r-x
 *   mprotect  B, 2 P: r-x -> rw-
 *   mprotect  B + P, P: rw- -> r-x
 *   munmap    B, 2 P
 * process 2 (forked by thread 1):
 *   mprotect  A + 3 P, P: r-x -> rw-
 *   mprotect  A + 3 P, P: rw- -> r-x
 *   then it runs this program again (exec) with the argument "exec":
 * process 3 (the program process 2 ran; leaves with _exit(0)):
 *   mmap      C: P, r-x
 *   munmap    C, P
 * process 1, thread 1 again:
 *   membarrier(MEMBARRIER_CMD_QUERY) through syscall(2)
 *   munmap    A, 4 P
 *   and on memory that is never executable (no row): mmap D rw-,
 *   mprotect D r--, munmap D.
 * Exit status 3 (the tests check that wxbench trace passes it on).
 *
 * With the argument "signal-exit" it switches one page back and forth until
 * a timer's signal handler calls _exit(0), mostly while inside one of the
 * interposer's hooks (the tests check that this ends the program). */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static long P;

static void die(const char *what)
{
    perror(what);
    exit(10);
}

static void *second_thread(void *arg)
{
    (void)arg;
    char *b = mmap(NULL, 2 * P, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        die("mmap B");
    if (mprotect(b, 2 * P, PROT_READ | PROT_WRITE) != 0)
        die("mprotect B rw");
    memset(b, 0xc3, 2 * P);
    if (mprotect(b + P, P, PROT_READ | PROT_EXEC) != 0)
        die("mprotect B+P rx");
    if (munmap(b, 2 * P) != 0)
        die("munmap B");
    return NULL;
}

static void leave_now(int sig)
{
    (void)sig;
    _exit(0);
}

/* "signal-exit": switch a page back and forth until a timer's signal
 * handler calls _exit, wherever the program is then (inside the
 * interposer's hooks, most of the time). Exits 0; never returns. */
__attribute__((noreturn)) static void signal_exit(void)
{
    char *p = mmap(NULL, P, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    signal(SIGALRM, leave_now);
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 2000}};
    setitimer(ITIMER_REAL, &it, NULL);
    for (;;)
        if (mprotect(p, P, PROT_READ | PROT_WRITE) != 0 || mprotect(p, P, PROT_READ | PROT_EXEC) != 0)
            die("mprotect");
}

int main(int argc, char **argv)
{
    P = sysconf(_SC_PAGESIZE);
    if (argc == 2 && strcmp(argv[1], "signal-exit") == 0)
        signal_exit();
    if (argc == 2 && strcmp(argv[1], "exec") == 0) {
        void *c = mmap(NULL, P, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c == MAP_FAILED || munmap(c, P) != 0)
            die("exec: C");
        _exit(0); /* past the exit handlers: the interposer's _exit hook writes its records */
    }
    unsigned char *a = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
        die("mmap A");
    memset(a, 0, 4 * P);
    if (mprotect(a + P, 2 * P, PROT_READ | PROT_EXEC) != 0)
        die("mprotect A+P rx");
    if (mprotect(a, 4 * P, PROT_READ | PROT_WRITE) != 0)
        die("mprotect A rw");
#if defined(__x86_64__)
    a[0] = 0xc3; /* ret */
#elif defined(__aarch64__)
    static const unsigned char ret[4] = {0xc0, 0x03, 0x5f, 0xd6};
    memcpy(a, ret, 4);
#endif
    if (mprotect(a, 4 * P, PROT_READ | PROT_EXEC) != 0)
        die("mprotect A rx");
#if defined(__x86_64__) || defined(__aarch64__)
    __builtin___clear_cache((char *)a, (char *)a + 4);
    ((void (*)(void))(void *)a)();
#endif

    usleep(30000); /* a known gap: the trace's clock is checked against it */
    pthread_t t;
    if (pthread_create(&t, NULL, second_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
        die("thread");

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        if (mprotect(a + 3 * P, P, PROT_READ | PROT_WRITE) != 0 || mprotect(a + 3 * P, P, PROT_READ | PROT_EXEC) != 0)
            die("child mprotect");
        execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
        die("exec");
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("child");

    syscall(SYS_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0);
    if (munmap(a, 4 * P) != 0)
        die("munmap A");

    char *d = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d == MAP_FAILED)
        die("mmap D");
    d[0] = 1;
    if (mprotect(d, P, PROT_READ) != 0 || munmap(d, P) != 0)
        die("D");
    return 3;
}
