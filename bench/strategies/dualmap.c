/* dualmap.c - two views of the same pages: a RW view for writing and a RX
 * view for running, neither ever changes protection.
 * Linux: memfd_create + ftruncate + two MAP_SHARED mmaps. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../wx.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__)

static int dm_map(wx_region *r, size_t size, char *why, size_t len)
{
    int fd = memfd_create("wxbench-dualmap", MFD_CLOEXEC);
    if (fd < 0)
        return wx_why_errno(why, len, "memfd_create", errno);
    if (ftruncate(fd, (off_t)size) != 0) {
        int e = errno;
        close(fd);
        return wx_why_errno(why, len, "ftruncate", e);
    }
    void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rw == MAP_FAILED) {
        int e = errno;
        close(fd);
        return wx_why_errno(why, len, "mmap(RW view, MAP_SHARED)", e);
    }
    void *rx = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (rx == MAP_FAILED) {
        int e = errno;
        munmap(rw, size);
        close(fd);
        return wx_why_errno(why, len, "mmap(RX view, MAP_SHARED)", e);
    }
    /* The two mappings keep the file alive; the descriptor is not needed. */
    close(fd);
    r->write = rw;
    r->exec = rx;
    r->size = size;
    r->fd = -1;
    r->key = -1;
    r->priv = NULL;
    return 0;
}

static void dm_unmap(wx_region *r)
{
    if (r->write)
        munmap(r->write, r->size);
    if (r->exec)
        munmap(r->exec, r->size);
    r->write = r->exec = NULL;
}

#else

static int dm_map(wx_region *r, size_t size, char *why, size_t len)
{
    (void)r;
    (void)size;
    snprintf(why, len, "dual mapping is not implemented for this OS");
    return ENOSYS;
}

static void dm_unmap(wx_region *r)
{
    (void)r;
}

#endif

static int dm_supported(char *why, size_t len)
{
    wx_region r;
    memset(&r, 0, sizeof r);
    if (dm_map(&r, (size_t)sysconf(_SC_PAGESIZE) * 2, why, len) != 0)
        return 0;
    dm_unmap(&r);
    return 1;
}

/* Nothing to switch: the RW view is always writable, the RX view always
 * executable. */
static int dm_nothing(wx_region *r)
{
    (void)r;
    return 0;
}

const wx_strategy wx_strategy_dualmap = {
    .name = "dualmap",
    .summary = "RW view + RX view of the same pages (memfd, two MAP_SHARED maps)",
    .flags = WX_WRITABLE_ALIAS | WX_NO_SWITCH,
    .supported = dm_supported,
    .map = dm_map,
    .begin_write = dm_nothing,
    .end_write = dm_nothing,
    .unmap = dm_unmap,
};
