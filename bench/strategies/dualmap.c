/* dualmap.c - two views of the same pages: a RW view for writing and a RX
 * view for running, neither ever changes protection.
 * Linux: memfd_create + ftruncate + two MAP_SHARED mmaps.
 * macOS: anonymous memory + a mach_vm_remap alias, maximum protections
 * lowered with vm_protect. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "../core/wx.h"

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
    wx_region_set(r, rw, rx, size);
    return 0;
}

#elif defined(__APPLE__)

/* macOS: ordinary anonymous memory (never MAP_JIT: an alias of MAP_JIT
 * memory keeps the JIT mark), aliased with mach_vm_remap (share, not copy)
 * as JavaScriptCore's separated W^X heap does; then each view's maximum
 * protection is lowered with vm_protect(set_maximum = TRUE), so neither can
 * ever be made W+X: the original becomes R-X, the alias RW-. */
#if __has_include(<mach/mach.h>) && !defined(WX_DECLARE_MACH_VM)
#include <mach/mach.h>
#include <mach/mach_error.h>
#if __has_include(<mach/mach_vm.h>)
#include <mach/mach_vm.h>
#else
/* Some SDKs (zig's macOS headers) lack <mach/mach_vm.h>; the symbol is in
 * libSystem. Prototype as in the macOS SDK. */
extern kern_return_t mach_vm_remap(vm_map_t target_task, mach_vm_address_t *target_address, mach_vm_size_t size,
                                   mach_vm_offset_t mask, int flags, vm_map_t src_task,
                                   mach_vm_address_t src_address, boolean_t copy, vm_prot_t *cur_protection,
                                   vm_prot_t *max_protection, vm_inherit_t inheritance);
#endif
#else
/* No <mach/mach.h> (or WX_DECLARE_MACH_VM, which checks this branch): the
 * few declarations needed, with the SDK's types: kern_return_t int,
 * vm_map_t a mach_port_t (unsigned int), mach_vm addresses and sizes
 * 64-bit, vm_address_t/vm_size_t pointer-sized, vm_prot_t int, vm_inherit_t
 * unsigned int, boolean_t int-sized. */
typedef int kern_return_t;
typedef unsigned int vm_map_t;
typedef uint64_t mach_vm_address_t;
typedef uint64_t mach_vm_size_t;
typedef uint64_t mach_vm_offset_t;
typedef uintptr_t vm_address_t;
typedef uintptr_t vm_size_t;
typedef int vm_prot_t;
typedef unsigned int vm_inherit_t;
#define KERN_SUCCESS 0
#define VM_PROT_READ 0x01
#define VM_PROT_WRITE 0x02
#define VM_PROT_EXECUTE 0x04
#define VM_FLAGS_ANYWHERE 0x0001
#define VM_FLAGS_RANDOM_ADDR 0x0008
#define VM_INHERIT_DEFAULT 1
extern vm_map_t mach_task_self_;
#define mach_task_self() mach_task_self_
extern kern_return_t mach_vm_remap(vm_map_t target_task, mach_vm_address_t *target_address, mach_vm_size_t size,
                                   mach_vm_offset_t mask, int flags, vm_map_t src_task,
                                   mach_vm_address_t src_address, int copy, vm_prot_t *cur_protection,
                                   vm_prot_t *max_protection, vm_inherit_t inheritance);
extern kern_return_t vm_protect(vm_map_t target_task, vm_address_t address, vm_size_t size, int set_maximum,
                                vm_prot_t new_protection);
extern char *mach_error_string(kern_return_t error_value);
#endif

/* "call: mach error text (kern_return_t n)" into why; returns an errno. */
static int dm_why_kern(char *why, size_t len, const char *call, kern_return_t kr)
{
    snprintf(why, len, "%s: %s (kern_return_t %d)", call, mach_error_string(kr), (int)kr);
    return kr == 3 /* KERN_NO_SPACE */ || kr == 6 /* KERN_RESOURCE_SHORTAGE */ ? ENOMEM : EACCES;
}

static int dm_map(wx_region *r, size_t size, char *why, size_t len)
{
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (base == MAP_FAILED)
        return wx_why_errno(why, len, "mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANON)", errno);
    mach_vm_address_t rw = 0;
    vm_prot_t cur = 0, max = 0;
    kern_return_t kr = mach_vm_remap(mach_task_self(), &rw, (mach_vm_size_t)size, 0,
                                     VM_FLAGS_ANYWHERE | VM_FLAGS_RANDOM_ADDR, mach_task_self(),
                                     (mach_vm_address_t)(uintptr_t)base, 0 /* share, not copy */, &cur, &max,
                                     VM_INHERIT_DEFAULT);
    if (kr != KERN_SUCCESS) {
        munmap(base, size);
        return dm_why_kern(why, len, "mach_vm_remap(share)", kr);
    }
    void *alias = (void *)(uintptr_t)rw;
    /* The original: at most R-X from now on, and R-X now (lowering the
     * maximum leaves RW & RX = R-- in force, so the current protection is
     * set after it). The alias: at most RW-. */
    const char *step = "vm_protect(RX view, set_maximum=TRUE, R-X)";
    kr = vm_protect(mach_task_self(), (vm_address_t)(uintptr_t)base, (vm_size_t)size, 1,
                    VM_PROT_READ | VM_PROT_EXECUTE);
    if (kr == KERN_SUCCESS) {
        step = "vm_protect(RX view, set_maximum=FALSE, R-X)";
        kr = vm_protect(mach_task_self(), (vm_address_t)(uintptr_t)base, (vm_size_t)size, 0,
                        VM_PROT_READ | VM_PROT_EXECUTE);
    }
    if (kr == KERN_SUCCESS) {
        step = "vm_protect(RW alias, set_maximum=TRUE, RW-)";
        kr = vm_protect(mach_task_self(), (vm_address_t)rw, (vm_size_t)size, 1, VM_PROT_READ | VM_PROT_WRITE);
    }
    if (kr != KERN_SUCCESS) {
        munmap(alias, size);
        munmap(base, size);
        return dm_why_kern(why, len, step, kr);
    }
    wx_region_set(r, alias, base, size);
    return 0;
}

#endif

#if defined(__linux__) || defined(__APPLE__)

/* Both views go, whichever way they were made (nothing mapped: nothing to do). */
#define dm_unmap wx_region_munmap

#if defined(__APPLE__)
/* The self-check, run in a child process: write v1 through the alias, run
 * it through the RX view, write v2 through the alias after that code has
 * run, run it again. step says how far it got (kept if the child dies). */
typedef struct dm_check {
    void *write, *exec;
    uint32_t got1, got2;     /* what the two calls returned */
    int step;                /* 1 writing v1, 2 running v1, 3 writing v2, 4 running v2, 5 done */
} dm_check;

#define DM_V1 0x600dc0deu
#define DM_V2 0x5ecc0de5u

static void dm_selfcheck(void *arg)
{
    dm_check *c = arg;
    c->step = 1;
    wx_emit_stub(c->write, wx_stub_size(), DM_V1);
    wx_icache_flush(c->write, c->exec, wx_stub_size());
    c->step = 2;
    c->got1 = wx_stub_at(c->exec)();
    c->step = 3;
    wx_emit_stub(c->write, wx_stub_size(), DM_V2);
    wx_icache_flush(c->write, c->exec, wx_stub_size());
    c->step = 4;
    c->got2 = wx_stub_at(c->exec)();
    c->step = 5;
}

static const char *const dm_steps[] = {"before the first write", "writing v1 through the alias",
                                       "running v1 through the RX view", "writing v2 through the alias after v1 ran",
                                       "running v2 through the RX view", "done"};
#endif

static int dm_supported(char *why, size_t len)
{
#if defined(__APPLE__)
    /* Under Rosetta 2, translated code does not see later writes made
     * through another mapping of its pages (the .NET runtime turns its dual
     * mapping off there for that reason). */
    wx_signing sg;
    wx_signing_describe(&sg);
    if (sg.translated == 1) {
        snprintf(why, len, "running under Rosetta 2 (sysctl.proc_translated = 1): translated code does not see code "
                           "rewritten through a second mapping of its pages");
        return 0;
    }
#endif
    wx_region r;
    memset(&r, 0, sizeof r);
    if (dm_map(&r, (size_t)sysconf(_SC_PAGESIZE) * 2, why, len) != 0)
        return 0;
#if defined(__APPLE__)
    /* The facts behind the macOS dual mapping are less certain than the
     * API, and the scenarios (and the baseline) write again through the
     * alias after the code has run: check exactly that, in a child process,
     * so that a fault, or a kill, is a reason and not a crash. */
    dm_check c = {.write = r.write, .exec = r.exec};
    wx_child_try t;
    int sig = wx_try_in_child(dm_selfcheck, &c, sizeof c, 10000, &t);
    dm_unmap(&r);
    const char *at = dm_steps[c.step >= 0 && c.step <= 5 ? c.step : 0];
    if (sig < 0) {
        snprintf(why, len, "the dual-mapping self-check gave no answer (%s) while %s", t.why, at);
        return 0;
    }
    if (sig > 0) {
        snprintf(why, len, "the mach_vm_remap dual mapping failed its self-check: %s while %s", t.why, at);
        return 0;
    }
    if (c.got1 != DM_V1) {
        snprintf(why, len, "code written through the mach_vm_remap alias ran through the RX view but returned %#x, "
                 "expected %#x (the views do not share pages)", c.got1, DM_V1);
        return 0;
    }
    if (c.got2 != DM_V2) {
        snprintf(why, len, "code rewritten through the mach_vm_remap alias after it ran was not seen by the RX view "
                 "(returned %#x, expected %#x): the executable view keeps stale code", c.got2, DM_V2);
        return 0;
    }
    return 1;
#else
    dm_unmap(&r);
    return 1;
#endif
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
#if defined(__APPLE__)
    .summary = "RW view + RX view of the same pages (mach_vm_remap alias, maximum protections set)",
#else
    .summary = "RW view + RX view of the same pages (memfd, two MAP_SHARED maps)",
#endif
    .flags = WX_WRITABLE_ALIAS | WX_NO_SWITCH,
    .supported = dm_supported, .map = dm_map, .begin_write = dm_nothing, .end_write = dm_nothing, .unmap = dm_unmap,
};

#else

const wx_strategy wx_strategy_dualmap = {.name = "dualmap", .summary = "RW view + RX view of the same pages",
                                         .flags = WX_WRITABLE_ALIAS | WX_NO_SWITCH,
                                         .unavailable = "dual mapping is not implemented for this OS"};

#endif
