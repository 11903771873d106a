/* wxtrace.c - the interposer `wxbench trace` loads into a program
 * (Linux: LD_PRELOAD; macOS: DYLD_INSERT_LIBRARIES, through a __interpose
 * section). It records every call that can change what memory is writable
 * or executable, with its time, duration, thread, region (relative to the
 * mapping it falls in), length and protections before and after, into
 * DIR/raw/<pid>-<ns>.wxt (wxtrace_format.h). It never changes what a call
 * does: the real function is called with the same arguments and its result
 * and errno are handed back untouched.
 *
 * Cost per call: two clock reads, one uncontended mutex, a lookup in the
 * process's table of mappings and a 96-byte store into a buffer in the
 * library's own memory. The buffer goes to the file (open, pwrite, close)
 * when it holds BUF_RECORDS records, FLUSH_NS after the first of them, and
 * at every end of the image: exit, _exit, exec, and before a fork. While
 * recording, the interposer maps no memory of its own (its buffer, its
 * table of mappings and its mincore vector are in its .bss): one mapping
 * more in the process changes what the program's own mprotect calls cost
 * (the kernel's tree of mappings; docs/trace-replay.md, "What tracing
 * costs"), so the traced program keeps the layout it has under the idle
 * library. A program killed by a signal loses the records not yet written
 * (at most BUF_RECORDS calls, made within FLUSH_NS of each other).
 *
 * Followed: every thread (the calls are caught whichever thread makes them),
 * fork children (a new file, the table of mappings inherited), programs
 * started by exec (the library is loaded again from the environment). At
 * the end of each image the resident pages of every code region are
 * recorded (mincore), for `wxbench replay`. */
#define _GNU_SOURCE 1
#define _DARWIN_C_SOURCE 1
#include "wxtrace_format.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <dlfcn.h>
#include <sys/syscall.h>
#endif
#if defined(__APPLE__)
#include <libkern/OSCacheControl.h>
#endif

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#if defined(MAP_JIT)
#define WXT_MAP_JIT MAP_JIT
#else
#define WXT_MAP_JIT 0
#endif

#define EXPORT __attribute__((visibility("default")))
#define BUF_RECORDS 4096u          /* records kept before they are written ... */
#define FLUSH_NS 20000000ull       /* ... or at most this long after the first of them */
#define STATIC_REGIONS 4096u       /* mappings the table holds without mapping memory */
#define VEC_PAGES 32768u           /* pages per mincore call */

/* ------------------------------------------------------------------------
 * The real functions
 * --------------------------------------------------------------------- */

#if defined(__linux__)
static struct {
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    int (*mprotect)(void *, size_t, int);
    int (*madvise)(void *, size_t, int);
    long (*syscall)(long, ...);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    void (*exit_now)(int);
    void (*exit_now2)(int);
    int resolved;
} real;

/* Resolve the next definitions (libc's). dlsym does not map memory through
 * the symbols interposed here, so this cannot recurse. */
static void resolve(void)
{
    if (real.resolved)
        return;
    real.mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    real.munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
    real.mremap = (void *(*)(void *, size_t, size_t, int, ...))dlsym(RTLD_NEXT, "mremap");
    real.mprotect = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "mprotect");
    real.madvise = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "madvise");
    real.syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    real.execve = (int (*)(const char *, char *const[], char *const[]))dlsym(RTLD_NEXT, "execve");
    real.execv = (int (*)(const char *, char *const[]))dlsym(RTLD_NEXT, "execv");
    real.execvp = (int (*)(const char *, char *const[]))dlsym(RTLD_NEXT, "execvp");
    real.execvpe = (int (*)(const char *, char *const[], char *const[]))dlsym(RTLD_NEXT, "execvpe");
    real.fexecve = (int (*)(int, char *const[], char *const[]))dlsym(RTLD_NEXT, "fexecve");
    real.exit_now = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
    real.exit_now2 = (void (*)(int))dlsym(RTLD_NEXT, "_Exit");
    __atomic_store_n(&real.resolved, 1, __ATOMIC_RELEASE);
}
#define REAL(f) (resolve(), real.f)
#else
/* macOS: inside the interposing image, the names are the originals. */
#define REAL(f) f
#endif

/* ------------------------------------------------------------------------
 * State: the file, the table of mappings
 * --------------------------------------------------------------------- */

/* One protection run of a region: pages [start, end) (bytes from the region's start). */
typedef struct seg {
    uint64_t start, end;
    int prot;
} seg;

#define SEGMAX 16 /* protection runs kept per region (beyond: its protections are unknown) */

/* One mapping as the program made it (one mmap call), or first seen. No
 * memory is allocated with malloc inside a hook (a hook may run in a signal
 * handler that interrupted malloc): runs are inline, the table grows by mmap. */
typedef struct region {
    uint32_t id;
    uintptr_t base;
    uint64_t size;
    uint32_t flags;       /* WXT_F_JIT, WXT_F_SYNTHETIC */
    int code;             /* ever executable or MAP_JIT */
    int overflow;         /* more runs than SEGMAX: protections unknown until one call covers the region */
    size_t nsegs;
    seg segs[SEGMAX];
} region;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_on;                 /* recording */
static char g_dir[2048];         /* WXTRACE_DIR */
static char g_path[2300];        /* this image's file */
static union {
    wxt_header h;
    char page[WXT_HEADER_BYTES];
} g_header;                      /* its header page, as written at the file's start */
static wxt_header *g_hdr = &g_header.h;
static wxt_record g_buf[BUF_RECORDS]; /* records not written yet */
static size_t g_nbuf;
static uint64_t g_buf_since;     /* t0 of the first of them */
static uint64_t g_written;       /* records in the file */
static int g_ended;              /* the image's end was recorded: write every later record at once */
static region g_static_regions[STATIC_REGIONS];
#if defined(__APPLE__)
static char g_vec[VEC_PAGES];
#else
static unsigned char g_vec[VEC_PAGES];
#endif
static long g_page;
static region *g_regions;        /* sorted by base */
static size_t g_nregions, g_capregions;
static uint32_t g_next_id = 1;
/* Initial-exec TLS: a preloaded library's thread variables sit in the
 * static TLS block, read without a call to __tls_get_addr. */
#define WXT_TLS __thread __attribute__((tls_model("initial-exec")))
/* Inside the interposer: calls go straight to the real function. Volatile:
 * a signal handler that interrupts a hook must see it set (without it, the
 * compiler may set it after taking the lock, and a handler's _exit hook then
 * waits for a lock its own thread holds). */
static WXT_TLS volatile int t_busy;
static WXT_TLS uint32_t t_tid;

/* The clock wxbench's wx_now_ns reads (trace times are relative to its start). */
static uint64_t now_ns(void)
{
#if defined(__APPLE__)
    return clock_gettime_nsec_np(CLOCK_UPTIME_RAW);
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t my_tid(void)
{
    if (!t_tid) {
#if defined(__linux__)
        t_tid = (uint32_t)REAL(syscall)(SYS_gettid);
#else
        uint64_t id = 0;
        pthread_threadid_np(NULL, &id);
        t_tid = (uint32_t)id;
#endif
    }
    return t_tid;
}

/* Write the buffered records, then the header with their count, to the
 * file (lock held, or single-threaded). The file is opened and closed each
 * time: no descriptor stays open for the program to close or reuse.
 * errno is left as it was. */
static void flush(void)
{
    if (!g_on)
        return;
    int saved = errno;
    size_t bytes = g_nbuf * sizeof(wxt_record);
    int fd = open(g_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || (bytes && pwrite(fd, g_buf, bytes, (off_t)(WXT_HEADER_BYTES + g_written * sizeof(wxt_record))) !=
                                (ssize_t)bytes))
        g_hdr->lost += (uint32_t)g_nbuf;
    else
        g_written += g_nbuf;
    g_nbuf = 0;
    g_hdr->count = g_written;
    if (fd >= 0) {
        if (pwrite(fd, g_hdr, sizeof *g_hdr, 0) != (ssize_t)sizeof *g_hdr)
            g_hdr->lost++; /* (the file keeps its older header) */
        close(fd);
    }
    errno = saved;
}

/* Start this image's file (lock held or single-threaded). */
static void open_file(uint32_t started)
{
    char name[64];
    uint64_t t = now_ns();
    snprintf(name, sizeof name, "%d-%llu.wxt", (int)getpid(), (unsigned long long)t);
    snprintf(g_path, sizeof g_path, "%s/raw/%s", g_dir, name);
    memset(&g_header, 0, sizeof g_header);
    g_nbuf = 0;
    g_written = 0;
    g_ended = 0;
    g_hdr->magic = WXT_MAGIC;
    g_hdr->version = 1;
    g_hdr->record_size = sizeof(wxt_record);
    g_hdr->pid = (int32_t)getpid();
    g_hdr->ppid = (int32_t)getppid();
    g_hdr->started = started;
    g_hdr->page_size = (uint32_t)g_page;
    g_hdr->start_ns = t;
#if defined(__linux__)
    ssize_t n = readlink("/proc/self/exe", g_hdr->exe, sizeof g_hdr->exe - 1);
    if (n < 0)
        n = 0;
    g_hdr->exe[n] = 0;
#endif
    int fd = open(g_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    int ok = pwrite(fd, &g_header, sizeof g_header, 0) == (ssize_t)sizeof g_header;
    close(fd);
    g_on = ok;
}

/* The next record slot (lock held), or NULL. */
static wxt_record *slot(void)
{
    if (!g_on)
        return NULL;
    if (g_nbuf == BUF_RECORDS)
        flush();
    return &g_buf[g_nbuf];
}

static void commit(wxt_record *r)
{
    r->valid = WXT_VALID;
    if (g_nbuf++ == 0)
        g_buf_since = r->t0;
    if (g_ended || (r->t0 > g_buf_since && r->t0 - g_buf_since > FLUSH_NS))
        flush();
}

/* ---- the table of mappings (lock held) ---- */

static region *find(uintptr_t a)
{
    size_t lo = 0, hi = g_nregions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g_regions[mid].base + g_regions[mid].size <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < g_nregions && g_regions[lo].base <= a && a < g_regions[lo].base + g_regions[lo].size)
        return &g_regions[lo];
    return NULL;
}

static void seg_put(region *r, uint64_t start, uint64_t end, int prot)
{
    if (start == 0 && end >= r->size) { /* the whole region (the common switch of a JIT's code area) */
        r->segs[0] = (seg){0, r->size, prot};
        r->nsegs = 1;
        r->overflow = 0;
        return;
    }
    /* Cut [start, end) out of the runs, then insert it, then merge neighbours. */
    seg out[SEGMAX + 3];
    size_t n = 0;
    int placed = 0;
    for (size_t i = 0; i < r->nsegs; i++) {
        seg s = r->segs[i];
        if (s.end <= start || s.start >= end) {
            if (!placed && s.start >= end) {
                out[n++] = (seg){start, end, prot};
                placed = 1;
            }
            out[n++] = s;
            continue;
        }
        if (s.start < start)
            out[n++] = (seg){s.start, start, s.prot};
        if (!placed) {
            out[n++] = (seg){start, end, prot};
            placed = 1;
        }
        if (s.end > end)
            out[n++] = (seg){end, s.end, s.prot};
    }
    if (!placed)
        out[n++] = (seg){start, end, prot};
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].start >= out[i].end)
            continue;
        if (m && out[m - 1].end == out[i].start && out[m - 1].prot == out[i].prot)
            out[m - 1].end = out[i].end;
        else
            out[m++] = out[i];
    }
    if (m > SEGMAX) {
        r->overflow = 1;
        m = SEGMAX;
    }
    memcpy(r->segs, out, m * sizeof *out);
    r->nsegs = m;
}

/* Protection of [start, end) of r: one value, WXT_PROT_MIXED or WXT_PROT_UNKNOWN. */
static int seg_get(const region *r, uint64_t start, uint64_t end)
{
    int p = WXT_PROT_UNKNOWN - 100;
    uint64_t covered = 0;
    if (r->overflow)
        return WXT_PROT_UNKNOWN;
    for (size_t i = 0; i < r->nsegs; i++) {
        const seg *s = &r->segs[i];
        if (s->end <= start || s->start >= end)
            continue;
        uint64_t a = s->start > start ? s->start : start, b = s->end < end ? s->end : end;
        covered += b - a;
        if (p == WXT_PROT_UNKNOWN - 100)
            p = s->prot;
        else if (p != s->prot)
            return WXT_PROT_MIXED;
    }
    if (p == WXT_PROT_UNKNOWN - 100)
        return WXT_PROT_UNKNOWN;
    return covered < end - start ? (p == WXT_PROT_NONE_YET ? WXT_PROT_NONE_YET : WXT_PROT_MIXED) : p;
}

static region *add_region(uintptr_t base, uint64_t size, int prot, uint32_t flags)
{
    if (!g_regions) {
        g_regions = g_static_regions;
        g_capregions = STATIC_REGIONS;
    }
    if (g_nregions == g_capregions) {
        size_t cap = g_capregions ? g_capregions * 2 : 64;
        void *n = REAL(mmap)(NULL, cap * sizeof(region), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (n == MAP_FAILED)
            return NULL;
        memcpy(n, g_regions, g_nregions * sizeof(region));
        if (g_regions != g_static_regions)
            REAL(munmap)(g_regions, g_capregions * sizeof(region));
        g_regions = n;
        g_capregions = cap;
    }
    size_t i = 0;
    while (i < g_nregions && g_regions[i].base < base)
        i++;
    memmove(&g_regions[i + 1], &g_regions[i], (g_nregions - i) * sizeof *g_regions);
    g_nregions++;
    region *r = &g_regions[i];
    memset(r, 0, sizeof *r);
    r->id = g_next_id++;
    r->base = base;
    r->size = size;
    r->flags = flags;
    r->code = (prot & PROT_EXEC) || (flags & WXT_F_JIT);
    seg_put(r, 0, size, prot);
    return r;
}

static void drop_region(region *r)
{
    size_t i = (size_t)(r - g_regions);
    memmove(&g_regions[i], &g_regions[i + 1], (g_nregions - i - 1) * sizeof *g_regions);
    g_nregions--;
}

static uint64_t page_up(uint64_t n)
{
    return (n + (uint64_t)g_page - 1) / (uint64_t)g_page * (uint64_t)g_page;
}

/* One WXT_RESIDENT record: pages [first, end) of r. */
static void resident_run(region *r, uint64_t first, uint64_t end)
{
    wxt_record *rec = slot();
    if (!rec)
        return;
    memset(rec, 0, sizeof *rec);
    rec->t0 = now_ns();
    rec->tid = my_tid();
    rec->call = WXT_RESIDENT;
    rec->region = r->id;
    rec->off = first * (uint64_t)g_page;
    rec->len = (end - first) * (uint64_t)g_page;
    rec->region_size = r->size;
    rec->prot_before = rec->prot_after = seg_get(r, rec->off, rec->off + rec->len);
    commit(rec);
}

/* Record the resident pages of code region r (lock held): mincore, VEC_PAGES
 * pages at a time, into the library's own vector. */
static void record_resident(region *r)
{
    if (!r->code || !g_on)
        return;
    const uint64_t pages = r->size / (uint64_t)g_page;
    uint64_t run = UINT64_MAX; /* first page of the run being read, if any */
    for (uint64_t c = 0; c < pages; c += VEC_PAGES) {
        const uint64_t n = pages - c < VEC_PAGES ? pages - c : VEC_PAGES;
        if (mincore((void *)(r->base + c * (uint64_t)g_page), (size_t)(n * (uint64_t)g_page), g_vec) != 0)
            return; /* (the runs recorded so far stand; the one being read is not known to be whole) */
        for (uint64_t i = 0; i < n; i++) {
            const int in = g_vec[i] & 1;
            if (in && run == UINT64_MAX)
                run = c + i;
            else if (!in && run != UINT64_MAX) {
                resident_run(r, run, c + i);
                run = UINT64_MAX;
            }
        }
    }
    if (run != UINT64_MAX)
        resident_run(r, run, pages);
}

/* Remove [a, a + len) from the table (munmap, or a MAP_FIXED mapping over
 * it); rec (may be NULL) gets the first region it touched. */
static void unmap_range(uintptr_t a, uint64_t len, wxt_record *rec, int resident)
{
    uintptr_t end = a + len;
    for (size_t i = 0; i < g_nregions;) {
        region *r = &g_regions[i];
        if (r->base >= end || r->base + r->size <= a) {
            i++;
            continue;
        }
        uint64_t s = a > r->base ? a - r->base : 0;
        uint64_t e = end < r->base + r->size ? end - r->base : r->size;
        if (rec && !rec->region) {
            rec->region = r->id;
            rec->off = s;
            rec->region_size = r->size;
            rec->prot_before = seg_get(r, s, e);
            rec->flags |= r->flags;
        }
        if (s == 0 && e == r->size) {
            if (resident)
                record_resident(r);
            drop_region(r);
            continue;
        }
        seg_put(r, s, e, WXT_PROT_NONE_YET);
        i++;
    }
}

/* ------------------------------------------------------------------------
 * Start, fork, end
 * --------------------------------------------------------------------- */

/* Before a fork: what is buffered goes to this image's file (the child
 * would otherwise start with a copy of it). */
static void at_fork_prepare(void)
{
    pthread_mutex_lock(&g_lock);
    flush();
}

static void at_fork_parent(void)
{
    pthread_mutex_unlock(&g_lock);
}

/* In the child: the parent's file stays the parent's; a file of its own. */
static void at_fork_child(void)
{
    t_tid = 0;
    if (g_on) {
        g_on = 0;
        open_file(WXT_START_FORK);
    }
    pthread_mutex_init(&g_lock, NULL);
}

__attribute__((constructor(101))) static void wxt_start(void)
{
    t_busy++;
#if defined(__linux__)
    resolve();
#endif
    g_page = sysconf(_SC_PAGESIZE);
    const char *d = getenv(WXT_ENV_DIR);
    char cwd[1024] = "";
    /* The file is opened again at every write: a relative directory would
     * follow the program's chdir. */
    if (d && d[0] && d[0] != '/' && !getcwd(cwd, sizeof cwd))
        d = NULL;
    const size_t nc = strlen(cwd), nd = d ? strlen(d) : 0;
    if (d && d[0] && nc + 1 + nd < sizeof g_dir) {
        memcpy(g_dir, cwd, nc);
        if (nc)
            g_dir[nc] = '/';
        memcpy(g_dir + nc + (nc ? 1 : 0), d, nd + 1);
        pthread_mutex_lock(&g_lock);
        open_file(WXT_START_EXEC);
        pthread_mutex_unlock(&g_lock);
        pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
    }
    t_busy--;
}

/* Whether this is the process the image's file belongs to: not a vfork
 * child borrowing its parent's memory (whose calls to _exit or exec end
 * nothing of the parent's). */
static int own_process(void)
{
    return g_on && g_hdr->pid == (int32_t)getpid();
}

/* The image's end (exit handlers, _exit, exit_group): the resident pages of
 * every code region, the end time, everything written. Calls made after it
 * (later exit handlers) are written one by one. A thread already inside a
 * hook (a signal handler that calls _exit while the hook holds the lock)
 * skips it: its last records are lost rather than the process hung. */
static void image_end(void)
{
    if (t_busy)
        return; /* called from inside a hook of this thread (a signal handler's _exit): the lock is ours already */
    t_busy++;
    pthread_mutex_lock(&g_lock);
    if (own_process() && !g_ended) {
        for (size_t i = 0; i < g_nregions; i++)
            record_resident(&g_regions[i]);
        g_hdr->end_ns = now_ns();
        g_ended = 1;
        flush();
    }
    pthread_mutex_unlock(&g_lock);
    t_busy--;
}

/* Before exec replaces the image: everything written (the new program, if
 * the library is loaded into it, starts a file of its own; end_ns stays 0). */
static void before_exec(void)
{
    if (t_busy)
        return; /* (as in image_end) */
    t_busy++;
    pthread_mutex_lock(&g_lock);
    if (own_process())
        flush();
    pthread_mutex_unlock(&g_lock);
    t_busy--;
}

__attribute__((destructor)) static void wxt_end(void)
{
    image_end();
}

/* ------------------------------------------------------------------------
 * The hooks. Each: time the real call, then (lock held) update the table
 * and write the record. errno is kept as the real call left it.
 * --------------------------------------------------------------------- */

#define BEGIN_RECORD(callid)                                                                                       \
    int saved_errno = errno;                                                                                       \
    t_busy++;                                                                                                      \
    pthread_mutex_lock(&g_lock);                                                                                   \
    wxt_record *rec = slot();                                                                                      \
    wxt_record tmp;                                                                                                \
    if (!rec)                                                                                                      \
        rec = &tmp;                                                                                                \
    memset(rec, 0, sizeof *rec);                                                                                   \
    rec->t0 = t0;                                                                                                  \
    rec->dur = t1 - t0;                                                                                            \
    rec->tid = my_tid();                                                                                           \
    rec->call = (callid);                                                                                          \
    rec->prot_before = rec->prot_after = WXT_PROT_UNKNOWN

#define END_RECORD()                                                                                               \
    if (rec != &tmp)                                                                                               \
        commit(rec);                                                                                               \
    pthread_mutex_unlock(&g_lock);                                                                                 \
    t_busy--;                                                                                                      \
    errno = saved_errno

static int tracing(void)
{
    return g_on && !t_busy;
}

static void note_mmap(uint64_t t0, uint64_t t1, void *want, size_t len, int prot, int flags, void *got, int err,
                      uint32_t rflags)
{
    BEGIN_RECORD(WXT_MMAP);
    rec->len = len;
    rec->detail = flags;
    rec->flags = rflags | (WXT_MAP_JIT != 0 && (flags & WXT_MAP_JIT) ? WXT_F_JIT : 0);
    rec->prot_before = WXT_PROT_NONE_YET;
    rec->prot_after = prot;
    if (got == MAP_FAILED) {
        rec->result = -1;
        rec->err = err;
        region *r = find((uintptr_t)want);
        if (r) {
            rec->region = r->id;
            rec->off = (uintptr_t)want - r->base;
            rec->region_size = r->size;
        }
    } else {
        uint64_t size = page_up(len);
        if (flags & MAP_FIXED)
            unmap_range((uintptr_t)got, size, NULL, 0);
        region *below = (uintptr_t)got > 0 ? find((uintptr_t)got - 1) : NULL;
        region *above = find((uintptr_t)got + size);
        rec->adj_below = below ? below->id : 0;
        rec->adj_above = above ? above->id : 0;
        region *r = add_region((uintptr_t)got, size, prot, rec->flags & WXT_F_JIT);
        if (r) {
            rec->region = r->id;
            rec->region_size = size;
        }
    }
    END_RECORD();
}

/* mprotect-like: region, offset, before, then the table. */
static void note_protect(uint16_t call, uint64_t t0, uint64_t t1, void *addr, size_t len, int prot, int64_t detail,
                         int rc, int err, uint32_t rflags)
{
    BEGIN_RECORD(call);
    rec->len = len;
    rec->detail = detail;
    rec->flags = rflags;
    rec->prot_after = prot;
    rec->result = rc;
    rec->err = rc ? err : 0;
    uintptr_t a = (uintptr_t)addr;
    uint64_t size = page_up(len);
    region *r = find(a);
    if (!r && rc == 0 && size) {
        r = add_region(a, size, WXT_PROT_UNKNOWN, WXT_F_SYNTHETIC);
        if (r)
            rec->flags |= WXT_F_SYNTHETIC;
    }
    if (r) {
        uint64_t off = a - r->base, end = off + size;
        if (end > r->size)
            end = r->size;
        rec->region = r->id;
        rec->off = off;
        rec->region_size = r->size;
        rec->prot_before = seg_get(r, off, end);
        rec->flags |= r->flags;
        if (rc == 0) {
            seg_put(r, off, end, prot);
            if (prot & PROT_EXEC)
                r->code = 1;
            /* The rest of the range, in the regions after this one. */
            uintptr_t stop = a + size;
            for (region *n = find(r->base + r->size); n && n->base < stop; n = find(n->base + n->size)) {
                uint64_t e2 = stop - n->base < n->size ? stop - n->base : n->size;
                seg_put(n, 0, e2, prot);
                if (prot & PROT_EXEC)
                    n->code = 1;
            }
        }
    }
    END_RECORD();
}

static void note_plain(uint16_t call, uint64_t t0, uint64_t t1, int64_t detail, int64_t result, int err,
                       uint32_t rflags)
{
    BEGIN_RECORD(call);
    rec->detail = detail;
    rec->result = result;
    rec->err = result < 0 ? err : 0;
    rec->flags = rflags;
    END_RECORD();
}

static void note_range(uint16_t call, uint64_t t0, uint64_t t1, void *addr, size_t len, int64_t detail, int64_t rc,
                       int err, uint32_t rflags)
{
    BEGIN_RECORD(call);
    rec->len = len;
    rec->detail = detail;
    rec->result = rc;
    rec->err = rc < 0 ? err : 0;
    rec->flags = rflags;
    region *r = find((uintptr_t)addr);
    if (r) {
        rec->region = r->id;
        rec->off = (uintptr_t)addr - r->base;
        rec->region_size = r->size;
        uint64_t end = rec->off + page_up(len);
        rec->prot_before = rec->prot_after = seg_get(r, rec->off, end < r->size ? end : r->size);
        rec->flags |= r->flags;
    }
    END_RECORD();
}

/* Before a munmap: the resident pages of the code regions it touches (the
 * call's own time is taken after this). */
static void resident_before_unmap(void *addr, size_t len)
{
    t_busy++;
    pthread_mutex_lock(&g_lock);
    uintptr_t a = (uintptr_t)addr, end = a + page_up(len);
    for (size_t i = 0; i < g_nregions; i++) {
        region *r = &g_regions[i];
        if (r->code && r->base < end && a < r->base + r->size)
            record_resident(r);
    }
    pthread_mutex_unlock(&g_lock);
    t_busy--;
}

static void note_munmap(uint64_t t0, uint64_t t1, void *addr, size_t len, int rc, int err)
{
    BEGIN_RECORD(WXT_MUNMAP);
    rec->len = len;
    rec->result = rc;
    rec->err = rc ? err : 0;
    rec->prot_after = WXT_PROT_NONE_YET;
    if (rc == 0) {
        unmap_range((uintptr_t)addr, page_up(len), rec, 0);
    } else {
        region *r = find((uintptr_t)addr);
        if (r) {
            rec->region = r->id;
            rec->off = (uintptr_t)addr - r->base;
            rec->region_size = r->size;
        }
    }
    END_RECORD();
}

#if defined(__linux__) /* macOS has no mremap */
static void note_mremap(uint64_t t0, uint64_t t1, void *old, size_t old_len, size_t new_len, int flags, void *got,
                        int err)
{
    BEGIN_RECORD(WXT_MREMAP);
    rec->len = old_len;
    rec->detail = flags;
    region *r = find((uintptr_t)old);
    if (r) {
        rec->region = r->id;
        rec->off = (uintptr_t)old - r->base;
        rec->prot_before = rec->prot_after = seg_get(r, rec->off, rec->off + page_up(old_len));
        rec->flags = r->flags;
    }
    if (got == MAP_FAILED) {
        rec->result = -1;
        rec->err = err;
        rec->region_size = r ? r->size : 0;
    } else if (r) {
        if (rec->off == 0 && page_up(old_len) == r->size) {
            /* The whole mapping moved or changed size: same region, new place. */
            int prot = seg_get(r, 0, r->size);
            uint32_t id = r->id, rf = r->flags;
            int code = r->code;
            drop_region(r);
            region *n = add_region((uintptr_t)got, page_up(new_len), prot, rf);
            if (n) {
                n->id = id;
                n->code = code;
                g_next_id--; /* add_region took a new id that is not used */
            }
        } else {
            seg_put(r, rec->off, rec->off + page_up(old_len), WXT_PROT_NONE_YET);
        }
        rec->region_size = page_up(new_len);
    }
    END_RECORD();
}

#endif

/* ------------------------------------------------------------------------
 * Linux entry points
 * --------------------------------------------------------------------- */
#if defined(__linux__)

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!tracing())
        return REAL(mmap)(addr, len, prot, flags, fd, off);
    uint64_t t0 = now_ns();
    void *p = REAL(mmap)(addr, len, prot, flags, fd, off);
    uint64_t t1 = now_ns();
    note_mmap(t0, t1, addr, len, prot, flags, p, errno, 0);
    return p;
}
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));

EXPORT int munmap(void *addr, size_t len)
{
    if (!tracing())
        return REAL(munmap)(addr, len);
    resident_before_unmap(addr, len);
    uint64_t t0 = now_ns();
    int rc = REAL(munmap)(addr, len);
    uint64_t t1 = now_ns();
    note_munmap(t0, t1, addr, len, rc, errno);
    return rc;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    if (!tracing())
        return REAL(mremap)(old, old_len, new_len, flags, want);
    uint64_t t0 = now_ns();
    void *p = REAL(mremap)(old, old_len, new_len, flags, want);
    uint64_t t1 = now_ns();
    note_mremap(t0, t1, old, old_len, new_len, flags, p, errno);
    return p;
}

EXPORT int mprotect(void *addr, size_t len, int prot)
{
    if (!tracing())
        return REAL(mprotect)(addr, len, prot);
    uint64_t t0 = now_ns();
    int rc = REAL(mprotect)(addr, len, prot);
    uint64_t t1 = now_ns();
    note_protect(WXT_MPROTECT, t0, t1, addr, len, prot, 0, rc, errno, 0);
    return rc;
}

EXPORT int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
    uint64_t t0 = now_ns();
    int rc = (int)REAL(syscall)(SYS_pkey_mprotect, addr, len, prot, pkey);
    uint64_t t1 = now_ns();
    if (tracing())
        note_protect(WXT_PKEY_MPROTECT, t0, t1, addr, len, prot, pkey, rc, errno, 0);
    return rc;
}

EXPORT int pkey_alloc(unsigned int flags, unsigned int access)
{
    uint64_t t0 = now_ns();
    int rc = (int)REAL(syscall)(SYS_pkey_alloc, flags, access);
    uint64_t t1 = now_ns();
    if (tracing())
        note_plain(WXT_PKEY_ALLOC, t0, t1, access, rc, errno, 0);
    return rc;
}

EXPORT int pkey_free(int key)
{
    uint64_t t0 = now_ns();
    int rc = (int)REAL(syscall)(SYS_pkey_free, key);
    uint64_t t1 = now_ns();
    if (tracing())
        note_plain(WXT_PKEY_FREE, t0, t1, key, rc, errno, 0);
    return rc;
}

EXPORT int memfd_create(const char *name, unsigned int flags)
{
    uint64_t t0 = now_ns();
    int rc = (int)REAL(syscall)(SYS_memfd_create, name, flags);
    uint64_t t1 = now_ns();
    if (tracing())
        note_plain(WXT_MEMFD_CREATE, t0, t1, flags, rc, errno, 0);
    return rc;
}

EXPORT int madvise(void *addr, size_t len, int advice)
{
    if (!tracing())
        return REAL(madvise)(addr, len, advice);
    uint64_t t0 = now_ns();
    int rc = REAL(madvise)(addr, len, advice);
    uint64_t t1 = now_ns();
    note_range(WXT_MADVISE, t0, t1, addr, len, advice, rc, errno, 0);
    return rc;
}

/* syscall(2): the same calls made without their libc wrappers (membarrier
 * has none); everything else goes through untouched. */
EXPORT long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_execve && tracing())
        before_exec();
    else if (n == SYS_exit_group && tracing())
        image_end();
    int watched = 0;
#ifdef SYS_membarrier
    watched |= n == SYS_membarrier;
#endif
    watched |= n == SYS_mprotect || n == SYS_pkey_mprotect || n == SYS_pkey_alloc || n == SYS_pkey_free ||
               n == SYS_memfd_create || n == SYS_madvise || n == SYS_munmap || n == SYS_mmap;
    if (!watched || !tracing())
        return REAL(syscall)(n, a1, a2, a3, a4, a5, a6);
    uint64_t t0 = now_ns();
    long rc = REAL(syscall)(n, a1, a2, a3, a4, a5, a6);
    uint64_t t1 = now_ns();
    int err = errno;
    if (n == SYS_mprotect || n == SYS_pkey_mprotect)
        note_protect(n == SYS_mprotect ? WXT_MPROTECT : WXT_PKEY_MPROTECT, t0, t1, (void *)a1, (size_t)a2, (int)a3,
                     n == SYS_mprotect ? 0 : a4, (int)rc, err, WXT_F_SYSCALL);
    else if (n == SYS_pkey_alloc)
        note_plain(WXT_PKEY_ALLOC, t0, t1, a2, rc, err, WXT_F_SYSCALL);
    else if (n == SYS_pkey_free)
        note_plain(WXT_PKEY_FREE, t0, t1, a1, rc, err, WXT_F_SYSCALL);
    else if (n == SYS_memfd_create)
        note_plain(WXT_MEMFD_CREATE, t0, t1, a2, rc, err, WXT_F_SYSCALL);
    else if (n == SYS_madvise)
        note_range(WXT_MADVISE, t0, t1, (void *)a1, (size_t)a2, a3, rc, err, WXT_F_SYSCALL);
    else if (n == SYS_munmap) /* (resident pages not known: the call is made) */
        note_munmap(t0, t1, (void *)a1, (size_t)a2, (int)rc, err);
    else if (n == SYS_mmap)
        note_mmap(t0, t1, (void *)a1, (size_t)a2, (int)a3, (int)a4, rc == -1 ? MAP_FAILED : (void *)rc, err,
                  WXT_F_SYSCALL);
#ifdef SYS_membarrier
    else
        note_plain(WXT_MEMBARRIER, t0, t1, a1, rc, err, WXT_F_SYSCALL);
#endif
    errno = err;
    return rc;
}

/* The ends of an image that skip the exit handlers: exec (every libc
 * entry, since libc's own calls between them are not interposable) and
 * _exit. What is buffered is written first. */
EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    before_exec();
    return REAL(execve)(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
    before_exec();
    return REAL(execv)(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[])
{
    before_exec();
    return REAL(execvp)(file, argv);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    before_exec();
    return REAL(execvpe)(file, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    before_exec();
    return REAL(fexecve)(fd, argv, envp);
}

/* execl, execlp, execle: the arguments gathered into an array (on the
 * stack: no allocation between vfork and exec). */
#define WXT_MAX_EXECL_ARGS 4096
#define GATHER_ARGS(first, ap, argv, n)                                                                                char *argv[WXT_MAX_EXECL_ARGS + 1];                                                                                size_t n = 0;                                                                                                      argv[n++] = (char *)(first);                                                                                       while (argv[n - 1] && n <= WXT_MAX_EXECL_ARGS)                                                                         argv[n++] = va_arg(ap, char *);                                                                                if (argv[n - 1]) {                                                                                                     va_end(ap);                                                                                                        errno = E2BIG;                                                                                                     return -1;                                                                                                     }

EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    GATHER_ARGS(arg, ap, argv, n);
    va_end(ap);
    (void)n;
    return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    GATHER_ARGS(arg, ap, argv, n);
    va_end(ap);
    (void)n;
    return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    GATHER_ARGS(arg, ap, argv, n);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    (void)n;
    return execve(path, argv, envp);
}

EXPORT void _exit(int status)
{
    image_end();
    REAL(exit_now)(status);
    __builtin_unreachable();
}

EXPORT void _Exit(int status)
{
    image_end();
    REAL(exit_now2)(status);
    __builtin_unreachable();
}

#endif /* __linux__ */

/* ------------------------------------------------------------------------
 * macOS entry points: a __interpose section (dyld replaces every other
 * image's references to the original with ours; ours reach the original).
 * --------------------------------------------------------------------- */
#if defined(__APPLE__)

#if __has_include(<mach/mach.h>) && !defined(WXT_DECLARE_MACH_VM)
#include <mach/mach.h>
#if __has_include(<mach/mach_vm.h>)
#include <mach/mach_vm.h>
#else
extern kern_return_t mach_vm_remap(vm_map_t, mach_vm_address_t *, mach_vm_size_t, mach_vm_offset_t, int, vm_map_t,
                                   mach_vm_address_t, boolean_t, vm_prot_t *, vm_prot_t *, vm_inherit_t);
extern kern_return_t mach_vm_protect(vm_map_t, mach_vm_address_t, mach_vm_size_t, boolean_t, vm_prot_t);
#endif
#else
typedef int kern_return_t;
typedef unsigned int vm_map_t;
typedef uint64_t mach_vm_address_t;
typedef uint64_t mach_vm_size_t;
typedef uint64_t mach_vm_offset_t;
typedef uintptr_t vm_address_t;
typedef uintptr_t vm_size_t;
typedef int vm_prot_t;
typedef unsigned int vm_inherit_t;
typedef int boolean_t;
extern kern_return_t mach_vm_remap(vm_map_t, mach_vm_address_t *, mach_vm_size_t, mach_vm_offset_t, int, vm_map_t,
                                   mach_vm_address_t, boolean_t, vm_prot_t *, vm_prot_t *, vm_inherit_t);
extern kern_return_t mach_vm_protect(vm_map_t, mach_vm_address_t, mach_vm_size_t, boolean_t, vm_prot_t);
extern kern_return_t vm_protect(vm_map_t, vm_address_t, vm_size_t, boolean_t, vm_prot_t);
#endif

typedef struct wxt_interpose {
    const void *replacement;
    const void *original;
} wxt_interpose;
#define WXT_INTERPOSE(repl, orig)                                                                                  \
    __attribute__((used)) static const wxt_interpose wxt_interpose_##orig                                          \
        __attribute__((section("__DATA,__interpose"))) = {(const void *)(uintptr_t)&repl,                          \
                                                          (const void *)(uintptr_t)&orig}

static void *wxt_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!tracing())
        return mmap(addr, len, prot, flags, fd, off);
    uint64_t t0 = now_ns();
    void *p = mmap(addr, len, prot, flags, fd, off);
    uint64_t t1 = now_ns();
    note_mmap(t0, t1, addr, len, prot, flags, p, errno, 0);
    return p;
}
WXT_INTERPOSE(wxt_mmap, mmap);

static int wxt_munmap(void *addr, size_t len)
{
    if (!tracing())
        return munmap(addr, len);
    resident_before_unmap(addr, len);
    uint64_t t0 = now_ns();
    int rc = munmap(addr, len);
    uint64_t t1 = now_ns();
    note_munmap(t0, t1, addr, len, rc, errno);
    return rc;
}
WXT_INTERPOSE(wxt_munmap, munmap);

static int wxt_mprotect(void *addr, size_t len, int prot)
{
    if (!tracing())
        return mprotect(addr, len, prot);
    uint64_t t0 = now_ns();
    int rc = mprotect(addr, len, prot);
    uint64_t t1 = now_ns();
    note_protect(WXT_MPROTECT, t0, t1, addr, len, prot, 0, rc, errno, 0);
    return rc;
}
WXT_INTERPOSE(wxt_mprotect, mprotect);

static int wxt_madvise(void *addr, size_t len, int advice)
{
    if (!tracing())
        return madvise(addr, len, advice);
    uint64_t t0 = now_ns();
    int rc = madvise(addr, len, advice);
    uint64_t t1 = now_ns();
    note_range(WXT_MADVISE, t0, t1, addr, len, advice, rc, errno, 0);
    return rc;
}
WXT_INTERPOSE(wxt_madvise, madvise);

static void wxt_sys_icache_invalidate(void *start, size_t len)
{
    if (!tracing()) {
        sys_icache_invalidate(start, len);
        return;
    }
    uint64_t t0 = now_ns();
    sys_icache_invalidate(start, len);
    uint64_t t1 = now_ns();
    note_range(WXT_ICACHE_INVALIDATE, t0, t1, start, len, 0, 0, 0, 0);
}
WXT_INTERPOSE(wxt_sys_icache_invalidate, sys_icache_invalidate);

#if defined(MAP_JIT) && defined(__MAC_OS_X_VERSION_MIN_REQUIRED) && __MAC_OS_X_VERSION_MIN_REQUIRED >= 110000
static void wxt_jit_write_protect(int enabled)
{
    if (!tracing()) {
        pthread_jit_write_protect_np(enabled);
        return;
    }
    uint64_t t0 = now_ns();
    pthread_jit_write_protect_np(enabled);
    uint64_t t1 = now_ns();
    /* Per thread, every MAP_JIT region at once: no region. */
    note_plain(WXT_JIT_WRITE_PROTECT, t0, t1, enabled, 0, 0, WXT_F_JIT);
}
WXT_INTERPOSE(wxt_jit_write_protect, pthread_jit_write_protect_np);
#endif

#if defined(PTHREAD_JIT_WRITE_ALLOW_CALLBACKS_NP)
static int wxt_jit_write_with_callback(pthread_jit_write_callback_t cb, void *ctx)
{
    if (!tracing())
        return pthread_jit_write_with_callback_np(cb, ctx);
    uint64_t t0 = now_ns();
    int rc = pthread_jit_write_with_callback_np(cb, ctx);
    uint64_t t1 = now_ns();
    note_plain(WXT_JIT_WRITE_CALLBACK, t0, t1, 0, rc, 0, WXT_F_JIT);
    return rc;
}
WXT_INTERPOSE(wxt_jit_write_with_callback, pthread_jit_write_with_callback_np);
#endif

static kern_return_t wxt_mach_vm_remap(vm_map_t target, mach_vm_address_t *addr, mach_vm_size_t size,
                                       mach_vm_offset_t mask, int flags, vm_map_t src_task, mach_vm_address_t src,
                                       boolean_t copy, vm_prot_t *cur, vm_prot_t *max, vm_inherit_t inherit)
{
    if (!tracing())
        return mach_vm_remap(target, addr, size, mask, flags, src_task, src, copy, cur, max, inherit);
    uint64_t t0 = now_ns();
    kern_return_t kr = mach_vm_remap(target, addr, size, mask, flags, src_task, src, copy, cur, max, inherit);
    uint64_t t1 = now_ns();
    /* The alias is a new region; the record names the source's. */
    note_range(WXT_MACH_VM_REMAP, t0, t1, (void *)(uintptr_t)src, (size_t)size, copy, kr, 0, 0);
    if (kr == 0) {
        pthread_mutex_lock(&g_lock);
        add_region((uintptr_t)*addr, page_up(size), cur ? *cur : WXT_PROT_UNKNOWN, 0);
        pthread_mutex_unlock(&g_lock);
    }
    return kr;
}
WXT_INTERPOSE(wxt_mach_vm_remap, mach_vm_remap);

static kern_return_t wxt_vm_protect(vm_map_t task, vm_address_t addr, vm_size_t size, boolean_t set_max,
                                    vm_prot_t prot)
{
    if (!tracing())
        return vm_protect(task, addr, size, set_max, prot);
    uint64_t t0 = now_ns();
    kern_return_t kr = vm_protect(task, addr, size, set_max, prot);
    uint64_t t1 = now_ns();
    if (set_max)
        note_range(WXT_VM_PROTECT, t0, t1, (void *)addr, size, 1, kr, 0, 0);
    else
        note_protect(WXT_VM_PROTECT, t0, t1, (void *)addr, size, prot, 0, kr, 0, 0);
    return kr;
}
WXT_INTERPOSE(wxt_vm_protect, vm_protect);

static kern_return_t wxt_mach_vm_protect(vm_map_t task, mach_vm_address_t addr, mach_vm_size_t size,
                                         boolean_t set_max, vm_prot_t prot)
{
    if (!tracing())
        return mach_vm_protect(task, addr, size, set_max, prot);
    uint64_t t0 = now_ns();
    kern_return_t kr = mach_vm_protect(task, addr, size, set_max, prot);
    uint64_t t1 = now_ns();
    if (set_max)
        note_range(WXT_VM_PROTECT, t0, t1, (void *)(uintptr_t)addr, (size_t)size, 1, kr, 0, 0);
    else
        note_protect(WXT_VM_PROTECT, t0, t1, (void *)(uintptr_t)addr, (size_t)size, prot, 0, kr, 0, 0);
    return kr;
}
WXT_INTERPOSE(wxt_mach_vm_protect, mach_vm_protect);

/* The ends of an image that skip the exit handlers. libSystem's exec
 * family reaches execve from another image, so one hook catches them all. */
static int wxt_execve(const char *path, char *const argv[], char *const envp[])
{
    before_exec();
    return execve(path, argv, envp);
}
WXT_INTERPOSE(wxt_execve, execve);

static void wxt_exit_now(int status)
{
    image_end();
    _exit(status);
}
WXT_INTERPOSE(wxt_exit_now, _exit);

#endif /* __APPLE__ */
