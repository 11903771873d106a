/* hook_cost.c - what the interposer adds to one intercepted call, in the
 * patterns of the two engines traced here (their calls counted in their
 * summary.json), so that tracing's cost to a whole run can be worked out
 * from a figure a noisy machine can resolve:
 *
 *   hook_cost redundant   mprotect of a one-page mapping to the protection it has
 *   hook_cost area        LuaJIT's pattern: a 64 KiB code area made writable,
 *                         a byte written, made executable again
 *   hook_cost heap        Ruby YJIT's pattern: one page of a populated 128 MiB
 *                         code region made writable, a byte written, then the
 *                         whole region made executable
 *
 * Prints "PATTERN ns per call": the best of 5 rounds of 20,000 calls.
 * hook_cost.sh runs it plainly and traced, interleaved, and prints the
 * difference per call.
 *   cc -O2 -o /tmp/hook_cost hook_cost.c */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define CALLS 20000

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *pattern = argc > 1 ? argv[1] : "redundant";
    size_t size = strcmp(pattern, "heap") == 0 ? (size_t)128 << 20 : strcmp(pattern, "area") == 0 ? 65536 : 4096;
    char *p = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return perror("mmap"), 1;
    for (size_t i = 0; i < size; i += 4096)
        p[i] = 1;
    if (mprotect(p, size, PROT_READ | PROT_EXEC) != 0)
        return perror("mprotect"), 1;
    double best = 1e18;
    for (int r = 0; r < 5; r++) {
        double a = now();
        for (int i = 0; i < CALLS / 2; i++) {
            int bad;
            if (strcmp(pattern, "heap") == 0) {
                char *q = p + (size_t)((i * 7919) % (int)(size / 4096)) * 4096;
                bad = mprotect(q, 4096, PROT_READ | PROT_WRITE);
                q[0] = 2;
                bad |= mprotect(p, size, PROT_READ | PROT_EXEC);
            } else if (strcmp(pattern, "area") == 0) {
                bad = mprotect(p, size, PROT_READ | PROT_WRITE);
                p[i % size] = 2;
                bad |= mprotect(p, size, PROT_READ | PROT_EXEC);
            } else {
                bad = mprotect(p, size, PROT_READ | PROT_EXEC) | mprotect(p, size, PROT_READ | PROT_EXEC);
            }
            if (bad)
                return perror("mprotect"), 1;
        }
        double ns = (now() - a) / CALLS;
        if (ns < best)
            best = ns;
    }
    printf("%s %.0f ns per call\n", pattern, best);
    return 0;
}
