/* icache_manual.c - the aarch64 `manual` flush of icache_flush (bench/core/
 * icache_ops.h) outside the benchmark, for qemu-aarch64: built and run by
 * tests/scenarios/test_icache_flush.py where aarch64-linux-gnu-gcc and
 * qemu-aarch64 exist.
 *
 * Under emulation the cache maintenance instructions do nothing (qemu keeps
 * its translated code coherent itself), so this shows what emulation can: the
 * function builds, CTR_EL0 is read without a trap, the loops visit exactly
 * the lines the CTR_EL0 fields call for (checked with invented CTR values,
 * IDC/DIC set and clear, unaligned ranges), code patched in place (one RWX
 * mapping) and flushed runs with its new value, and code patched through one
 * view of a dual mapping runs with its new value through the other whenever
 * the compiler's own __builtin___clear_cache manages that under this
 * emulator (qemu-user 7.2 keeps stale translated code for writes through an
 * alias whatever the guest does; that case is reported, not failed).
 * Prints "ok" and exits 0, or says what failed.
 */
#define _GNU_SOURCE 1
#include "../../bench/core/wx.h"
#include "../../bench/core/icache_ops.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(WX_HAVE_MANUAL_FLUSH)
#error "build this for aarch64 Linux"
#endif

/* An invented CTR_EL0: DminLine and IminLine as log2(words), IDC, DIC. */
static uint64_t fake_ctr(unsigned dlog, unsigned ilog, int idc, int dic)
{
    return ((uint64_t)dlog << 16) | ilog | ((uint64_t)idc << 28) | ((uint64_t)dic << 29);
}

static int failures;

static void expect_ops(const char *what, size_t got, size_t want)
{
    if (got != want) {
        printf("FAIL %s: %zu maintenance instructions, expected %zu\n", what, got, want);
        failures++;
    }
}

/* How new code is made visible: the function under test, or the compiler's. */
typedef void (*flush_fn)(unsigned char *w, unsigned char *x, size_t len, uint64_t ctr);

static void flush_manual(unsigned char *w, unsigned char *x, size_t len, uint64_t ctr)
{
    (void)wx_flush_manual(w, x, len, ctr);
}

static void flush_builtin(unsigned char *w, unsigned char *x, size_t len, uint64_t ctr)
{
    (void)w;
    (void)ctr;
    __builtin___clear_cache((char *)x, (char *)x + len);
}

/* Patch a stub of len bytes at w, flush, run it at x, 200 times with new
 * values: 0 when every value comes back; else -1 (and a message if loud). */
static int patch_and_run(unsigned char *w, unsigned char *x, size_t len, uint64_t ctr, flush_fn flush,
                         const char *what, int loud)
{
    static uint32_t seq;
    for (int i = 0; i < 200; i++) {
        uint32_t v = ++seq * 2654435761u;
        if (wx_emit_stub(w, len, v) != len) {
            printf("FAIL %s: cannot emit a stub of %zu bytes\n", what, len);
            return -1;
        }
        flush(w, x, len, ctr);
        uint32_t got = wx_stub_at(x)();
        if (got != v) {
            if (loud)
                printf("FAIL %s: stub of %zu bytes returned %#x, expected %#x\n", what, len, got, v);
            return -1;
        }
    }
    return 0;
}

int main(void)
{
    uint64_t ctr = wx_read_ctr_el0();
    printf("CTR_EL0 %#llx: D-line %zu B, I-line %zu B, IDC %d, DIC %d\n", (unsigned long long)ctr,
           wx_ctr_dline(ctr), wx_ctr_iline(ctr), (int)((ctr >> 28) & 1), (int)((ctr >> 29) & 1));
    if (wx_ctr_dline(ctr) < 4 || wx_ctr_iline(ctr) < 4) {
        printf("FAIL: implausible line sizes\n");
        return 1;
    }

    /* Line arithmetic on a buffer of our own. */
    static unsigned char buf[3 * 4096] __attribute__((aligned(4096)));
    unsigned char *a = buf + 4096;
    expect_ops("64 B lines, 4 KiB aligned", wx_flush_manual(a, a, 4096, fake_ctr(4, 4, 0, 0)), 64 + 64);
    expect_ops("IDC set", wx_flush_manual(a, a, 4096, fake_ctr(4, 4, 1, 0)), 64);
    expect_ops("DIC set", wx_flush_manual(a, a, 4096, fake_ctr(4, 4, 0, 1)), 64);
    expect_ops("IDC and DIC set", wx_flush_manual(a, a, 4096, fake_ctr(4, 4, 1, 1)), 0);
    expect_ops("D 64 B, I 128 B", wx_flush_manual(a, a, 4096, fake_ctr(4, 5, 0, 0)), 64 + 32);
    expect_ops("1 byte", wx_flush_manual(a + 5, a + 5, 1, fake_ctr(4, 4, 0, 0)), 1 + 1);
    expect_ops("64 B straddling two lines", wx_flush_manual(a + 32, a + 32, 64, fake_ctr(4, 4, 0, 0)), 2 + 2);
    expect_ops("write and exec views apart", wx_flush_manual(a + 8, buf + 64, 128, fake_ctr(4, 4, 0, 0)), 3 + 2);

    /* One RWX mapping: patched in place. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *rwx = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rwx == MAP_FAILED) {
        printf("FAIL mmap(RWX): %s\n", strerror(errno));
        return 1;
    }
    for (size_t len = 12; len <= 4 * page; len *= 4)
        if (patch_and_run(rwx, rwx, len, ctr, flush_manual, "rwx, manual", 1) != 0)
            failures++;

    /* Two views of one memfd: written through RW, run through RX. */
    int fd = memfd_create("wxbench-cross", 0);
    if (fd < 0 || ftruncate(fd, (off_t)(4 * page)) != 0) {
        printf("FAIL memfd_create/ftruncate: %s\n", strerror(errno));
        return 1;
    }
    unsigned char *w = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    unsigned char *x = mmap(NULL, 4 * page, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (w == MAP_FAILED || x == MAP_FAILED) {
        printf("FAIL mmap(two views): %s\n", strerror(errno));
        return 1;
    }
    if (patch_and_run(w, x, 12, ctr, flush_builtin, "dualmap, builtin", 0) != 0) {
        printf("dualmap: not checked: even __builtin___clear_cache leaves stale code behind an alias here "
               "(an emulator limitation)\n");
    } else {
        for (size_t len = 12; len <= 4 * page; len *= 4)
            if (patch_and_run(w, x, len, ctr, flush_manual, "dualmap, manual", 1) != 0)
                failures++;
    }

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
