/* mprotect.c - one private anonymous mapping flipped RW <-> RX with
 * mprotect (plain memory, never MAP_JIT). */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../core/wx.h"

#include <errno.h>
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

static int mp_supported(char *why, size_t len)
{
    wx_region r;
    memset(&r, 0, sizeof r);
    if (mp_map(&r, 4096 * 4, why, len) != 0)
        return 0;
    int e = mp_begin_write(&r);
    if (e == 0)
        e = mp_end_write(&r);
    mp_unmap(&r);
    return e == 0 ? 1 : (wx_why_errno(why, len, "mprotect", e), 0);
}

const wx_strategy wx_strategy_mprotect = {
    .name = "mprotect",
    .summary = "one private mapping flipped RW <-> RX with mprotect",
    WX_FUNCTIONS(mp),
};
