/* test_hang.c - test builds only: a strategy whose begin_write never
 * returns, to check the runner's per-child time limit (`timeout` row). */
#include "../core/wx.h"

#include <unistd.h>

static int hang_supported(char *why, size_t len)
{
    (void)why;
    (void)len;
    return 1;
}

static int hang_map(wx_region *r, size_t size, char *why, size_t len)
{
    (void)r;
    (void)size;
    (void)why;
    (void)len;
    for (;;)
        pause();
    return 0;
}

static int hang_change(wx_region *r)
{
    (void)r;
    return 0;
}

const wx_strategy wx_strategy_test_hang = {.name = "test_hang", .summary = "test only: never returns from map",
                                           .supported = hang_supported, .map = hang_map, .begin_write = hang_change,
                                           .end_write = hang_change, .unmap = wx_region_munmap};
