/* test_hook.c - test builds only: a strategy writable only inside its
 * write_code hook (like mapjit_callback), built on mprotect, so that every
 * scenario's write_code path runs on machines without Apple silicon. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../core/wx.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

extern const wx_strategy wx_strategy_mprotect;

static int hook_supported(char *why, size_t len)
{
    return wx_strategy_mprotect.supported(why, len);
}

static int hook_map(wx_region *r, size_t size, char *why, size_t len)
{
    return wx_strategy_mprotect.map(r, size, why, len);
}

/* Writes happen only inside write_code (begin_write refuses); outside it the
 * region is executable already (end_write has nothing to do). */
static int hook_begin_write(wx_region *r)
{
    return r ? ENOTSUP : EINVAL;
}

static int hook_end_write(wx_region *r)
{
    return r ? 0 : EINVAL;
}

static int hook_write_code(wx_region *r, size_t off, const void *src, size_t len)
{
    if (off > r->size || len > r->size - off)
        return EINVAL;
    if (mprotect(r->write, r->size, PROT_READ | PROT_WRITE) != 0)
        return errno;
    if (len)
        memcpy((char *)r->write + off, src, len);
    return mprotect(r->exec, r->size, PROT_READ | PROT_EXEC) != 0 ? errno : 0;
}

#define hook_unmap wx_region_munmap

const wx_strategy wx_strategy_test_hook = {
    .name = "test_hook", .summary = "test only: writable only inside write_code (mprotect RW, copy, mprotect RX)",
    WX_FUNCTIONS(hook), .write_code = hook_write_code};
