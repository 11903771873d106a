/* mapjit.c - MAP_JIT region; pthread_jit_write_protect_np(0/1) per thread.
 *
 * macOS on Apple silicon: the region is mapped once RWX with MAP_JIT and
 * never mprotect'ed (macOS refuses that since 11.2); each thread sees every
 * MAP_JIT region as RX (write-protected, the state threads start in) or RW,
 * switched by pthread_jit_write_protect_np(1)/(0). libpthread switches a
 * per-thread permission register; wxbench never touches it directly.
 * Everywhere else (Linux, Intel Macs, x86_64 under Rosetta 2, binaries
 * built for macOS < 11) the strategy reports why it cannot run. */
#define _DARWIN_C_SOURCE 1
#include "../core/wx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#if defined(__APPLE__)
#include <Availability.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#if defined(__APPLE__) && defined(MAP_JIT) && defined(__MAC_OS_X_VERSION_MIN_REQUIRED) && \
    __MAC_OS_X_VERSION_MIN_REQUIRED >= 110000
#define WX_HAVE_MAPJIT 1
#endif

#ifdef WX_HAVE_MAPJIT

static int mj_map(wx_region *r, size_t size, char *why, size_t len)
{
    int e = wx_mmap_jit(r, size, why, len);
    if (e == 0)
        pthread_jit_write_protect_np(1); /* the contract: a fresh region is executable for the caller */
    return e;
}

static int mj_begin_write(wx_region *r)
{
    (void)r;
    pthread_jit_write_protect_np(0); /* this thread: every MAP_JIT region RW */
    return 0;
}

static int mj_end_write(wx_region *r)
{
    (void)r;
    pthread_jit_write_protect_np(1); /* this thread: every MAP_JIT region RX */
    return 0;
}

#define mj_unmap wx_region_munmap

static int mj_supported(char *why, size_t len)
{
    if (!pthread_jit_write_protect_supported_np()) {
        snprintf(why, len,
                 "pthread_jit_write_protect_supported_np() returned 0: no per-thread JIT write protection on this "
                 "CPU (an Intel Mac or an x86_64 process under Rosetta 2, where the toggle does nothing and MAP_JIT "
                 "memory is RWX)");
        return 0;
    }
    /* Under the jit-write-allowlist entitlement libpthread aborts the
     * process on every pthread_jit_write_protect_np call (libpthread-539
     * src/pthread.c): only allow-listed write callbacks may switch
     * (mapjit_callback). */
    char allow[WX_REASON_LEN];
    if (wx_jit_allowlist_enforced(allow, sizeof allow) == 1) {
        snprintf(why, len, "pthread_jit_write_protect_np is refused here: JIT write allow-list %.200s", allow);
        return 0;
    }
    return wx_region_try(mj_map, mj_unmap, (size_t)getpagesize(), why, len);
}

#endif

#define MJ_SUMMARY "MAP_JIT region; pthread_jit_write_protect_np(0/1) per thread"

#ifdef WX_HAVE_MAPJIT
const wx_strategy wx_strategy_mapjit = {.name = "mapjit", .summary = MJ_SUMMARY, .flags = WX_PER_THREAD | WX_JIT_TOGGLE,
                                        WX_FUNCTIONS(mj)};
#else
const wx_strategy wx_strategy_mapjit = {.name = "mapjit", .summary = MJ_SUMMARY, .flags = WX_PER_THREAD | WX_JIT_TOGGLE,
#if defined(__APPLE__) && !defined(MAP_JIT)
    .unavailable = "this macOS SDK has no MAP_JIT",
#elif defined(__APPLE__)
    .unavailable = "built for a macOS deployment target below 11.0; pthread_jit_write_protect_np needs 11.0",
#else
    .unavailable = "needs macOS on Apple silicon (MAP_JIT and pthread_jit_write_protect_np)",
#endif
};
#endif
