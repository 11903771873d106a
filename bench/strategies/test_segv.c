/* test_segv.c - test builds only: a strategy whose begin_write dies of a
 * real SIGSEGV (a store to a PROT_NONE page), to check that the runner
 * turns a crash into a `crashed` row and keeps every other row. */
#define _GNU_SOURCE 1
#include "../core/wx.h"

#include <sys/mman.h>

extern const wx_strategy wx_strategy_rwx;

static int segv_supported(char *why, size_t len)
{
    (void)why;
    (void)len;
    return 1;
}

static int segv_begin_write(wx_region *r)
{
    (void)r;
    volatile char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)p != MAP_FAILED)
        p[0] = 1; /* SIGSEGV */
    return 14;    /* EFAULT if the mapping itself failed */
}

static int segv_map(wx_region *r, size_t size, char *why, size_t len)
{
    return wx_strategy_rwx.map(r, size, why, len);
}

static int segv_end_write(wx_region *r)
{
    return r ? 0 : 14;
}

const wx_strategy wx_strategy_test_segv = {.name = "test_segv", .summary = "test only: dies of SIGSEGV in begin_write",
                                           .flags = WX_ALWAYS_RWX, .supported = segv_supported, .map = segv_map,
                                           .begin_write = segv_begin_write, .end_write = segv_end_write,
                                           .unmap = wx_region_munmap};
