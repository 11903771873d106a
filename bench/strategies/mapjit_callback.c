/* mapjit_callback.c - MAP_JIT region; code written only inside
 * pthread_jit_write_with_callback_np (macOS 11.4+ on Apple silicon).
 *
 * The system makes the calling thread's MAP_JIT regions writable, calls an
 * allow-listed callback, and makes them executable again before returning.
 * A writable window cannot stay open across calls, so this strategy has a
 * write_code hook (wx.h) that does "writable, copy, executable" in one call;
 * begin_write refuses (ENOTSUP) and end_write has nothing to do, because
 * outside the callback the region is always executable. This file never
 * calls pthread_jit_write_protect_np: a process holding the
 * jit-write-allowlist entitlement may not use it.
 * Everywhere else the strategy reports why it cannot run. */
#define _DARWIN_C_SOURCE 1
#include "../core/wx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#if defined(__APPLE__)
#include <Availability.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/sysctl.h>
#include <unistd.h>
#endif

#if defined(__APPLE__) && defined(MAP_JIT) && defined(PTHREAD_JIT_WRITE_ALLOW_CALLBACKS_NP) && \
    defined(__MAC_OS_X_VERSION_MIN_REQUIRED) && __MAC_OS_X_VERSION_MIN_REQUIRED >= 110000
#define WX_HAVE_JIT_CALLBACK 1
#endif

#ifdef WX_HAVE_JIT_CALLBACK

/* What the writer callback copies, and the bounds it checks first. */
typedef struct mjc_copy {
    unsigned char *region;  /* start of the MAP_JIT region */
    size_t size;            /* its size */
    size_t off;             /* where to write */
    const void *src;        /* what */
    size_t len;             /* how many bytes (0: nothing) */
} mjc_copy;

/* The one writer: runs while the thread's MAP_JIT regions are writable.
 * It validates its input as Apple asks (an attacker may control it), does
 * no non-local control transfer, and returns an errno value. */
static int mjc_write(void *ctx)
{
    const mjc_copy *c = ctx;
    if (!c || c->off > c->size || c->len > c->size - c->off)
        return EINVAL;
    if (c->len)
        memcpy(c->region + c->off, c->src, c->len);
    return 0;
}

/* Allow-list of the callbacks this image passes (once per image, at file
 * scope). Checked only under the jit-write-allowlist entitlement. */
PTHREAD_JIT_WRITE_ALLOW_CALLBACKS_NP(mjc_write);

static int mjc_write_code(wx_region *r, size_t off, const void *src, size_t len)
{
    mjc_copy c = {.region = r->write, .size = r->size, .off = off, .src = src, .len = len};
    if (__builtin_available(macOS 11.4, *))
        return pthread_jit_write_with_callback_np(mjc_write, &c);
    return ENOTSUP;
}

#define mjc_map wx_mmap_jit
#define mjc_unmap wx_region_munmap

static int mjc_supported(char *why, size_t len)
{
    if (__builtin_available(macOS 11.4, *)) {
        if (!pthread_jit_write_protect_supported_np()) {
            snprintf(why, len,
                     "pthread_jit_write_protect_supported_np() returned 0: no per-thread JIT write protection on "
                     "this CPU (an Intel Mac or an x86_64 process under Rosetta 2, where "
                     "pthread_jit_write_with_callback_np only calls the callback)");
            return 0;
        }
    } else {
        char ver[32] = "unknown";
        size_t n = sizeof ver;
        if (sysctlbyname("kern.osproductversion", ver, &n, NULL, 0) != 0)
            snprintf(ver, sizeof ver, "unknown");
        snprintf(why, len, "needs macOS 11.4 or later (pthread_jit_write_with_callback_np); this is macOS %s", ver);
        return 0;
    }
    return wx_region_try(mjc_map, mjc_unmap, (size_t)getpagesize(), why, len);
}

/* Writes happen only inside write_code. */
static int mjc_begin_write(wx_region *r)
{
    (void)r;
    return ENOTSUP;
}

/* Outside the callback the region is executable already. */
static int mjc_end_write(wx_region *r)
{
    (void)r;
    return 0;
}

#endif

#define MJC_SUMMARY "MAP_JIT region; code written only inside pthread_jit_write_with_callback_np"

#ifdef WX_HAVE_JIT_CALLBACK
const wx_strategy wx_strategy_mapjit_callback = {.name = "mapjit_callback", .summary = MJC_SUMMARY,
                                                 .flags = WX_PER_THREAD | WX_JIT_TOGGLE, WX_FUNCTIONS(mjc),
                                                 .write_code = mjc_write_code};
#else
const wx_strategy wx_strategy_mapjit_callback = {.name = "mapjit_callback", .summary = MJC_SUMMARY,
                                                 .flags = WX_PER_THREAD | WX_JIT_TOGGLE,
#if defined(__APPLE__) && !defined(PTHREAD_JIT_WRITE_ALLOW_CALLBACKS_NP)
    .unavailable = "built against a macOS SDK without pthread_jit_write_with_callback_np (needs the macOS 11.4 SDK "
                   "or later)",
#elif defined(__APPLE__) && !defined(MAP_JIT)
    .unavailable = "this macOS SDK has no MAP_JIT",
#elif defined(__APPLE__)
    .unavailable = "built for a macOS deployment target below 11.0; MAP_JIT write callbacks need 11.4",
#else
    .unavailable = "needs macOS 11.4+ on Apple silicon (MAP_JIT and pthread_jit_write_with_callback_np)",
#endif
};
#endif
