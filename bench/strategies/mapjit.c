/* mapjit.c - MAP_JIT region; pthread_jit_write_protect_np(0/1) per thread.
 * Apple silicon only; everywhere else the strategy reports why it cannot run. */
#include "../wx.h"

#include <errno.h>
#include <stdio.h>

static int s_supported(char *why, size_t len)
{
    snprintf(why, len, "needs macOS on Apple silicon (MAP_JIT and pthread_jit_write_protect_np)");
    return 0;
}

static int s_map(wx_region *r, size_t size, char *why, size_t len)
{
    (void)r;
    (void)size;
    s_supported(why, len);
    return ENOTSUP;
}

static int s_change(wx_region *r)
{
    (void)r;
    return ENOTSUP;
}

static void s_unmap(wx_region *r)
{
    (void)r;
}

const wx_strategy wx_strategy_mapjit = {
    .name = "mapjit",
    .summary = "MAP_JIT region; pthread_jit_write_protect_np(0/1) per thread",
    .flags = WX_PER_THREAD,
    .supported = s_supported,
    .map = s_map,
    .begin_write = s_change,
    .end_write = s_change,
    .unmap = s_unmap,
};
