/* icache.c - making newly written code visible to instruction fetch. */
#include "wx.h"

#if defined(__APPLE__)
#include <libkern/OSCacheControl.h>

void wx_icache_flush(void *write, void *exec, size_t len)
{
    (void)write;
    sys_icache_invalidate(exec, len);
}

const char *wx_icache_method(void) { return "sys_icache_invalidate"; }

#else

void wx_icache_flush(void *write, void *exec, size_t len)
{
    (void)write;
    /* Lines are cleaned/invalidated by virtual address; the executable view
     * maps the same physical lines as the writable one. */
    __builtin___clear_cache((char *)exec, (char *)exec + len);
}

const char *wx_icache_method(void)
{
#if defined(__x86_64__)
    return "__builtin___clear_cache (nothing to do: x86 instruction fetch is coherent)";
#else
    return "__builtin___clear_cache (dc cvau / ic ivau by CTR_EL0 line size)";
#endif
}

#endif
