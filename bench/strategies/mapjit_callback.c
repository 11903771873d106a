/* mapjit_callback.c - MAP_JIT region; writes inside pthread_jit_write_with_callback_np.
 * Apple silicon only; everywhere else the strategy reports why it cannot run. */
#include "../wx.h"

#include <errno.h>
#include <stdio.h>

static int s_supported(char *why, size_t len)
{
    snprintf(why, len, "needs macOS on Apple silicon (MAP_JIT and pthread_jit_write_with_callback_np)");
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

const wx_strategy wx_strategy_mapjit_callback = {
    .name = "mapjit_callback",
    .summary = "MAP_JIT region; writes inside pthread_jit_write_with_callback_np",
    .flags = WX_PER_THREAD,
    .supported = s_supported,
    .map = s_map,
    .begin_write = s_change,
    .end_write = s_change,
    .unmap = s_unmap,
};
