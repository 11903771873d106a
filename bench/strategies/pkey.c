/* pkey.c - memory protection keys: the pages stay RWX in the page table
 * and write access is toggled per thread in a register (x86 PKU: PKRU via
 * pkey_set, i.e. WRPKRU). One key is shared by every region of the process,
 * as the hardware has only 15; it is allocated with the first region and
 * kept for the life of the process, as a JIT keeps its key, so that creating
 * a region (dualmap_overhead/setup) does not time pkey_alloc + pkey_free. */
#define _GNU_SOURCE 1
#include "../core/wx.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__) && defined(PKEY_DISABLE_WRITE) && defined(__x86_64__)
#include <pthread.h>

static pthread_mutex_t pk_lock = PTHREAD_MUTEX_INITIALIZER;
static int pk_key = -1;   /* the process's key, -1 until the first region */

static int pk_supported(char *why, size_t len)
{
    int key = pkey_alloc(0, 0);
    if (key < 0)
        return wx_why_errno(why, len, "pkey_alloc", errno), 0;
    pkey_free(key);
    return 1;
}

static int pk_map(wx_region *r, size_t size, char *why, size_t len)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return wx_why_errno(why, len, "mmap(PROT_READ|PROT_WRITE)", errno);
    pthread_mutex_lock(&pk_lock);
    if (pk_key < 0) {
        pk_key = pkey_alloc(0, PKEY_DISABLE_WRITE);
        if (pk_key < 0) {
            int e = errno;
            pthread_mutex_unlock(&pk_lock);
            munmap(p, size);
            return wx_why_errno(why, len, "pkey_alloc", e);
        }
    }
    int key = pk_key;
    pthread_mutex_unlock(&pk_lock);
    /* Executable state for this thread: writes disabled by the key. */
    if (pkey_set(key, PKEY_DISABLE_WRITE) != 0 ||
        pkey_mprotect(p, size, PROT_READ | PROT_WRITE | PROT_EXEC, key) != 0) {
        int e = errno;
        munmap(p, size);
        return wx_why_errno(why, len, "pkey_mprotect(PROT_READ|PROT_WRITE|PROT_EXEC)", e);
    }
    wx_region_set(r, p, p, size);
    r->key = key;
    return 0;
}

static int pk_begin_write(wx_region *r)
{
    return pkey_set(r->key, 0) == 0 ? 0 : errno;
}

static int pk_end_write(wx_region *r)
{
    return pkey_set(r->key, PKEY_DISABLE_WRITE) == 0 ? 0 : errno;
}

static void pk_unmap(wx_region *r)
{
    if (!r->write)
        return;
    munmap(r->write, r->size);
    r->write = r->exec = NULL; /* the key stays: see the top of this file */
}

#define PK_FUNCTIONS 1
#endif

#define PK_SUMMARY "RWX pages under a protection key; write access toggled per thread (pkey_set/WRPKRU)"

#ifdef PK_FUNCTIONS
const wx_strategy wx_strategy_pkey = {.name = "pkey", .summary = PK_SUMMARY, .flags = WX_PER_THREAD, WX_FUNCTIONS(pk)};
#else
const wx_strategy wx_strategy_pkey = {.name = "pkey", .summary = PK_SUMMARY, .flags = WX_PER_THREAD,
#if defined(__linux__)
    .unavailable = "protection keys are implemented for x86_64 PKU only (arm64 POE pending)",
#else
    .unavailable = "memory protection keys need Linux (pkey_alloc)",
#endif
};
#endif
