/* reftime.c - an independent measurement of a few ops wxbench measures, for
 * the tests to hold wxbench's figures against (tests/test_reference.py).
 *
 * It shares no code with wxbench: its own mmap/mprotect/memfd calls, its own
 * machine code bytes, its own clock loop. Each op is measured in FORKS fresh
 * child processes (the scatter between processes is where the variance is);
 * each child calls the op in batches for about 20 ms, checks every call, and
 * reports the median ns per op of its batches; the parent prints the median
 * over children.
 *
 *   reftime OP     OP: mprotect_flip  one RW->RX round trip of a one-page mapping of its own
 *                      rwx_patch      write a new constant into a RWX page, call it, check it
 *                      dualmap_patch  write a new constant through a RW view, call it through a RX
 *                                     view of the same memfd pages, check it
 *                      empty          one turn of an empty count-down loop
 * prints "OP ns_per_op" and exits 0, or prints why and exits 1 (77: not available here).
 */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FORKS 5
#define BATCH 100
#define BATCHES_MAX 20000
#define RUN_NS 20000000.0

typedef unsigned (*fn)(void);

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* "return v" as machine code, written byte by byte. */
static void put_return(unsigned char *p, unsigned v)
{
#if defined(__x86_64__)
    p[0] = 0xB8; /* mov eax, imm32 */
    memcpy(p + 1, &v, 4);
    p[5] = 0xC3; /* ret */
#elif defined(__aarch64__)
    uint32_t insn[3] = {0x52800000u | ((v & 0xffffu) << 5), 0x72a00000u | ((v >> 16) << 5), 0xd65f03c0u};
    memcpy(p, insn, sizeof insn);
#else
#error "x86_64 or aarch64 only"
#endif
}

static void sync_code(unsigned char *p)
{
    __builtin___clear_cache((char *)p, (char *)p + 16);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp);
    return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

/* The state of one child's op. */
static unsigned char *rw, *rx;
static long page;
static unsigned value;

static int setup(const char *op)
{
    page = sysconf(_SC_PAGESIZE);
    if (strcmp(op, "mprotect_flip") == 0 || strcmp(op, "rwx_patch") == 0) {
        int prot = strcmp(op, "rwx_patch") == 0 ? PROT_READ | PROT_WRITE | PROT_EXEC : PROT_READ | PROT_WRITE;
        rw = mmap(NULL, (size_t)page, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (rw == MAP_FAILED)
            return 77;
        rx = rw;
        memset(rw, 0, (size_t)page);
        put_return(rw, 7);
        if (prot != (PROT_READ | PROT_WRITE | PROT_EXEC) && mprotect(rw, (size_t)page, PROT_READ | PROT_EXEC) != 0)
            return 1;
    } else if (strcmp(op, "dualmap_patch") == 0) {
#if defined(__linux__)
        int fd = memfd_create("reftime", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, page) != 0)
            return 77;
        rw = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        rx = mmap(NULL, (size_t)page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
        close(fd);
        if (rw == MAP_FAILED || rx == MAP_FAILED)
            return 77;
        put_return(rw, 7);
#else
        return 77; /* no memfd here */
#endif
    } else if (strcmp(op, "empty") != 0) {
        return 2;
    }
    if (rx) {
        sync_code(rx);
        if (((fn)(void *)rx)() != 7)
            return 1;
    }
    value = 7;
    return 0;
}

/* BATCH ops; 0, or 1 when a check failed. */
static int batch(const char *op)
{
    if (op[0] == 'm') {
        for (int i = 0; i < BATCH; i++)
            if (mprotect(rw, (size_t)page, PROT_READ | PROT_WRITE) != 0 ||
                mprotect(rw, (size_t)page, PROT_READ | PROT_EXEC) != 0)
                return 1;
        return ((fn)(void *)rx)() == 7 ? 0 : 1;
    }
    if (op[0] == 'r' || op[0] == 'd') {
        for (int i = 0; i < BATCH; i++) {
            unsigned v = ++value;
            put_return(rw, v);
            sync_code(rx);
            if (((fn)(void *)rx)() != v)
                return 1;
        }
        return 0;
    }
    for (unsigned long i = BATCH * 1000ul; i != 0; i--)
        __asm__ __volatile__("" ::: "memory");
    return 0;
}

/* One child: its median ns per op, written to fd. */
static int child(const char *op, int fd)
{
    int rc = setup(op);
    if (rc != 0)
        return rc;
    static double per[BATCHES_MAX];
    const double ops = op[0] == 'e' ? BATCH * 1000.0 : BATCH;
    int n = 0;
    double start = now_ns();
    batch(op); /* warm-up */
    while (n < BATCHES_MAX && now_ns() - start < RUN_NS) {
        double t0 = now_ns();
        if (batch(op) != 0)
            return 1;
        per[n++] = (now_ns() - t0) / ops;
    }
    double m = median(per, n);
    return write(fd, &m, sizeof m) == (ssize_t)sizeof m ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: reftime mprotect_flip|rwx_patch|dualmap_patch|empty\n");
        return 2;
    }
    double m[FORKS];
    for (int k = 0; k < FORKS; k++) {
        int fds[2];
        if (pipe(fds) != 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            _exit(child(argv[1], fds[1]));
        }
        close(fds[1]);
        ssize_t got = read(fds[0], &m[k], sizeof m[k]);
        close(fds[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got != (ssize_t)sizeof m[k]) {
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
            fprintf(stderr, "reftime %s: the measuring child %s %d\n", argv[1],
                    WIFEXITED(st) ? "exited with" : "died of signal", WIFEXITED(st) ? code : WTERMSIG(st));
            return code == 77 ? 77 : code == 2 ? 2 : 1;
        }
    }
    printf("%s %.4f\n", argv[1], median(m, FORKS));
    return 0;
}
