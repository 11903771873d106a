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
    r->write = r->exec = p;
    r->size = size;
    r->fd = -1;
    r->key = -1;
    r->priv = NULL;
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

static int mp_supported(char *why, size_t len)
{
    wx_region r;
    memset(&r, 0, sizeof r);
    if (mp_map(&r, 4096 * 4, why, len) != 0)
        return 0;
    int e = mp_begin_write(&r);
    if (e == 0)
        e = mp_end_write(&r);
    munmap(r.write, r.size);
    if (e != 0) {
        wx_why_errno(why, len, "mprotect", e);
        return 0;
    }
    return 1;
}

static void mp_unmap(wx_region *r)
{
    if (r->write)
        munmap(r->write, r->size);
    r->write = r->exec = NULL;
}

const wx_strategy wx_strategy_mprotect = {
    .name = "mprotect",
    .summary = "one private mapping flipped RW <-> RX with mprotect",
    .flags = 0,
    .supported = mp_supported,
    .map = mp_map,
    .begin_write = mp_begin_write,
    .end_write = mp_end_write,
    .unmap = mp_unmap,
};
