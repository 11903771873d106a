/* mprotect.c - one private anonymous mapping flipped RW <-> RX with
 * mprotect (plain memory, never MAP_JIT). */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../core/wx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static int mp_map(wx_region *r, size_t size, char *why, size_t len)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (p == MAP_FAILED)
        return wx_why_errno(why, len, "mmap(PROT_READ|PROT_WRITE)", errno);
    if (mprotect(p, size, PROT_READ | PROT_EXEC) != 0) {
        int e = errno;
        munmap(p, size);
        return wx_why_errno(why, len, "mprotect(PROT_READ|PROT_EXEC)", e);
    }
    wx_region_set(r, p, p, size);
    return 0;
}

static int mp_begin_write(wx_region *r)
{
    return mprotect(r->write, r->size, PROT_READ | PROT_WRITE) == 0 ? 0 : errno;
}

static int mp_end_write(wx_region *r)
{
    return mprotect(r->exec, r->size, PROT_READ | PROT_EXEC) == 0 ? 0 : errno;
}

#define mp_unmap wx_region_munmap

#if defined(__APPLE__)
/* In a child process: code written to the region, made RX, called. */
typedef struct mp_check {
    wx_region r;
    int err;          /* begin_write/end_write's errno */
    uint32_t got;     /* what the stub returned */
} mp_check;

static void mp_run_stub(void *arg)
{
    mp_check *c = arg;
    if ((c->err = mp_begin_write(&c->r)) != 0)
        return;
    wx_emit_stub(c->r.write, wx_stub_size(), 0x0c0de123u);
    if ((c->err = mp_end_write(&c->r)) != 0)
        return;
    wx_icache_flush(c->r.write, c->r.exec, wx_stub_size());
    c->got = wx_stub_at(c->r.exec)();
}
#endif

static int mp_supported(char *why, size_t len)
{
    wx_region r;
    memset(&r, 0, sizeof r);
    if (mp_map(&r, 4096 * 4, why, len) != 0)
        return 0;
    int e = mp_begin_write(&r);
    if (e == 0)
        e = mp_end_write(&r);
#if defined(__APPLE__)
    /* Code written to anonymous memory must also run: under the hardened
     * runtime (without allow-unsigned-executable-memory) macOS may refuse
     * the RX change or kill the process on its first unsigned instruction;
     * asked in a child process so that either is a reason, not a crash. */
    if (e == 0) {
        mp_check c = {.r = r};
        wx_child_try t;
        int sig = wx_try_in_child(mp_run_stub, &c, sizeof c, 10000, &t);
        mp_unmap(&r);
        if (sig != 0) {
            wx_signing sg;
            wx_signing_describe(&sg);
            snprintf(why, len, "code written to anonymous memory and made executable with mprotect did not run: "
                     "%.120s%s", t.why,
                     sg.hardened_runtime == 1 ? " (this binary runs under the hardened runtime)" : "");
            return 0;
        }
        if (c.err != 0)
            return wx_why_errno(why, len, "mprotect (in a child process)", c.err), 0;
        if (c.got != 0x0c0de123u) {
            snprintf(why, len, "code written to anonymous memory and made executable with mprotect returned %#x, "
                     "expected 0xc0de123", c.got);
            return 0;
        }
        return 1;
    }
#endif
    mp_unmap(&r);
    return e == 0 ? 1 : (wx_why_errno(why, len, "mprotect", e), 0);
}

const wx_strategy wx_strategy_mprotect = {
    .name = "mprotect",
    .summary = "one private mapping flipped RW <-> RX with mprotect",
    WX_FUNCTIONS(mp),
};
