/* rwx.c - one mapping, read+write+execute, never switched: the insecure
 * baseline every other strategy is compared with. Intel Macs need MAP_JIT
 * for it; Apple silicon refuses it (EACCES), which is its answer there. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../core/wx.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

static int rwx_map(wx_region *r, size_t size, char *why, size_t len)
{
    int flags = MAP_PRIVATE | MAP_ANON;
#if defined(__APPLE__) && defined(MAP_JIT) && defined(__x86_64__)
    flags |= MAP_JIT; /* Intel Macs: MAP_JIT pages may be RWX */
#endif
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE | PROT_EXEC, flags, -1, 0);
    if (p == MAP_FAILED) {
#if defined(__APPLE__) && defined(__aarch64__)
        /* Expected on Apple silicon: W+X without MAP_JIT is refused. */
        return wx_why_errno(why, len,
                            "mmap(PROT_READ|PROT_WRITE|PROT_EXEC) without MAP_JIT (macOS refuses W+X memory "
                            "to native arm64 processes)",
                            errno);
#else
        return wx_why_errno(why, len, "mmap(PROT_READ|PROT_WRITE|PROT_EXEC)", errno);
#endif
    }
    wx_region_set(r, p, p, size);
    return 0;
}

static int rwx_supported(char *why, size_t len)
{
    return wx_region_try(rwx_map, wx_region_munmap, 4096 * 4, why, len);
}

/* Nothing to switch: the one view is always writable and executable. */
static int rwx_nothing(wx_region *r)
{
    (void)r;
    return 0;
}

const wx_strategy wx_strategy_rwx = {
    .name = "rwx",
    .summary = "one RWX mapping, never switched (insecure baseline)",
    .flags = WX_ALWAYS_RWX | WX_NO_SWITCH,
    .supported = rwx_supported, .map = rwx_map, .begin_write = rwx_nothing, .end_write = rwx_nothing,
    .unmap = wx_region_munmap,
};
