/* trace.c - `wxbench trace [--out DIR] -- COMMAND [ARG...]`: run a real
 * program with the interposer (bench/interpose/wxtrace.c) loaded, then turn
 * the raw files it wrote into DIR/trace.csv (one row per intercepted call on
 * code memory), DIR/regions.csv (each code region's size and resident
 * pages), DIR/processes.csv, DIR/summary.json and DIR/meta.json.
 *
 * What counts as code memory: a region (one mapping as the program made it)
 * that was executable or MAP_JIT at some point of its life; every call on it
 * is a row, from the mmap that made it (even PROT_NONE or RW) to its munmap.
 * Calls on other memory (a garbage collector's read-only pages) are left
 * out. pkey_alloc/pkey_free, memfd_create, membarrier and the macOS JIT calls
 * are always rows. */
#define _GNU_SOURCE 1
#include "trace.h"
#include "options.h"
#include "../core/proc.h"
#include "csv.h"
#include "../core/platform_util.h"
#include "../core/wx.h"
#include "../interpose/wxtrace_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef WX_VERSION
#define WX_VERSION "unknown"
#endif

#if defined(__APPLE__)
#define PRELOAD_VAR "DYLD_INSERT_LIBRARIES"
#define INTERPOSER_NAME "libwxtrace.dylib"
#else
#define PRELOAD_VAR "LD_PRELOAD"
#define INTERPOSER_NAME "libwxtrace.so"
#endif

static int usage(const char *fmt, const char *arg)
{
    fputs("wxbench trace: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nusage: wxbench trace [--out DIR] -- COMMAND [ARG...]\n", stderr);
    return WX_EXIT_USAGE;
}

/* ------------------------------------------------------------------------
 * Before running: can the interposer be loaded into this command at all?
 * --------------------------------------------------------------------- */

/* The interposer beside the wxbench binary (or $WXBENCH_INTERPOSER). */
static int find_interposer(char *out, size_t len)
{
    const char *env = getenv("WXBENCH_INTERPOSER");
    if (env && env[0]) {
        snprintf(out, len, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -1;
    }
    char exe[4096] = "";
#if defined(__linux__)
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
#elif defined(__APPLE__)
    extern int _NSGetExecutablePath(char *, uint32_t *);
    uint32_t sz = sizeof exe;
    if (_NSGetExecutablePath(exe, &sz) != 0)
        return -1;
    char *rp = realpath(exe, NULL);
    if (rp) {
        snprintf(exe, sizeof exe, "%s", rp);
        free(rp);
    }
#endif
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = 0;
    snprintf(out, len, "%s/%s", exe, INTERPOSER_NAME);
    return access(out, R_OK) == 0 ? 0 : -1;
}

/* The file execvp would run for name, or "" when none. */
static void resolve_command(const char *name, char *out, size_t len)
{
    out[0] = 0;
    if (strchr(name, '/')) {
        if (access(name, X_OK) == 0)
            snprintf(out, len, "%s", name);
        return;
    }
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        char cand[4096];
        snprintf(cand, sizeof cand, "%.*s/%s", (int)n, n ? path : ".", name);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
            snprintf(out, len, "%s", cand);
            return;
        }
        path += n + (colon ? 1 : 0);
        if (!colon)
            break;
    }
}

/* Why the interposer cannot be loaded into the program in file (a static
 * ELF; a protected path on macOS), following one #! line; "" when it can
 * (as far as can be told before running it). */
static void cannot_interpose(const char *file, char *why, size_t len, int depth)
{
    why[0] = 0;
#if defined(__APPLE__)
    static const char *const protected_dirs[] = {"/System/", "/usr/bin/", "/bin/", "/sbin/", "/usr/sbin/",
                                                 "/usr/libexec/", NULL};
    for (int i = 0; protected_dirs[i]; i++)
        if (strncmp(file, protected_dirs[i], strlen(protected_dirs[i])) == 0) {
            snprintf(why, len, "%s is protected by System Integrity Protection: macOS strips DYLD_INSERT_LIBRARIES "
                     "from it, so nothing could be recorded (trace a copy outside the system folders, or the "
                     "program it runs)", file);
            return;
        }
#endif
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    unsigned char h[4096];
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    if (n >= 2 && h[0] == '#' && h[1] == '!' && depth == 0) {
        char interp[1024];
        size_t i = 2, k = 0;
        while (i < (size_t)n && (h[i] == ' ' || h[i] == '\t'))
            i++;
        while (i < (size_t)n && h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && k + 1 < sizeof interp)
            interp[k++] = (char)h[i++];
        interp[k] = 0;
        if (k)
            cannot_interpose(interp, why, len, 1);
        return;
    }
#if defined(__linux__)
    /* ELF64: a program without PT_INTERP is static: the dynamic loader never
     * runs, and LD_PRELOAD with it. */
    if (n >= 64 && h[0] == 0x7f && h[1] == 'E' && h[2] == 'L' && h[3] == 'F' && h[4] == 2) {
        uint64_t phoff;
        uint16_t phentsize, phnum, type;
        memcpy(&type, h + 16, 2);
        memcpy(&phoff, h + 32, 8);
        memcpy(&phentsize, h + 54, 2);
        memcpy(&phnum, h + 56, 2);
        if (type != 2 /* ET_EXEC */ && type != 3 /* ET_DYN */)
            return;
        int has_interp = 0, complete = 1;
        for (uint16_t i = 0; i < phnum; i++) {
            uint64_t at = phoff + (uint64_t)i * phentsize;
            if (at + 4 > (uint64_t)n) {
                complete = 0;
                break;
            }
            uint32_t pt;
            memcpy(&pt, h + at, 4);
            if (pt == 3 /* PT_INTERP */)
                has_interp = 1;
        }
        if (complete && !has_interp)
            snprintf(why, len, "%s is a statically linked program: it has no dynamic loader, so LD_PRELOAD cannot "
                     "load the interposer into it and nothing could be recorded", file);
    }
#endif
}

/* ------------------------------------------------------------------------
 * Running the command
 * --------------------------------------------------------------------- */

typedef struct launch {
    char **argv;
    const char *interposer;
    const char *dir;
} launch;

/* In the child: the interposer in the environment, default signal
 * dispositions, then exec. The pipe closes on a successful exec; otherwise
 * it carries why. */
static int launch_child(void *arg, int fd)
{
    launch *l = arg;
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    const char *old = getenv(PRELOAD_VAR);
    char *pre = malloc(strlen(l->interposer) + (old ? strlen(old) : 0) + 2);
    if (!pre)
        return 127;
    sprintf(pre, "%s%s%s", l->interposer, old && old[0] ? ":" : "", old && old[0] ? old : "");
    setenv(PRELOAD_VAR, pre, 1);
    setenv(WXT_ENV_DIR, l->dir, 1);
    execvp(l->argv[0], l->argv);
    int e = errno;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "cannot run %s: %s", l->argv[0], strerror(e));
    if (write(fd, msg, (size_t)n) < 0)
        return 127;
    return e == ENOENT ? 127 : 126;
}

/* ------------------------------------------------------------------------
 * Reading the raw files
 * --------------------------------------------------------------------- */

/* One image of a process (one raw file). */
typedef struct image {
    wxt_header h;
    wxt_record *r;        /* its valid records */
    size_t n;
    int index;            /* process number in the trace (1..) */
    int parent;           /* index of the process it came from (0: none) */
    const char *started;  /* "command", "fork", "exec", "spawn" */
    uint32_t *code;       /* code region ids (sorted) */
    size_t ncode;
    uint32_t *tids;       /* thread ids in order of thread number */
    size_t ntids;
    long rows;
} image;

static int cmp_image(const void *a, const void *b)
{
    const image *x = a, *y = b;
    return x->h.start_ns < y->h.start_ns ? -1 : x->h.start_ns > y->h.start_ns;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int read_image(const char *path, image *im, char *why, size_t len)
{
    memset(im, 0, sizeof *im);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, len, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)WXT_HEADER_BYTES ||
        read(fd, &im->h, sizeof im->h) != (ssize_t)sizeof im->h || im->h.magic != WXT_MAGIC ||
        im->h.record_size != sizeof(wxt_record)) {
        close(fd);
        snprintf(why, len, "%s is not a complete wxtrace file (the interposer started but did not finish "
                 "setting it up)", path);
        return -1;
    }
    uint64_t avail = ((uint64_t)st.st_size - WXT_HEADER_BYTES) / sizeof(wxt_record);
    uint64_t n = im->h.count < avail ? im->h.count : avail;
    im->r = malloc((n ? n : 1) * sizeof *im->r);
    if (!im->r) {
        close(fd);
        snprintf(why, len, "out of memory reading %s", path);
        return -1;
    }
    if (n && pread(fd, im->r, n * sizeof *im->r, WXT_HEADER_BYTES) != (ssize_t)(n * sizeof *im->r)) {
        close(fd);
        snprintf(why, len, "cannot read the records of %s", path);
        return -1;
    }
    close(fd);
    size_t k = 0;
    for (uint64_t i = 0; i < n; i++)
        if (im->r[i].valid == WXT_VALID && im->r[i].call > 0 && im->r[i].call < WXT_NCALLS)
            im->r[k++] = im->r[i];
    im->n = k;
    return 0;
}

static int is_code(const image *im, uint32_t id)
{
    return id && bsearch(&id, im->code, im->ncode, sizeof *im->code, cmp_u32) != NULL;
}

static int prot_exec_or_jit(const wxt_record *r)
{
    return (r->prot_before >= 0 && (r->prot_before & PROT_EXEC)) ||
           (r->prot_after >= 0 && (r->prot_after & PROT_EXEC) && r->call != WXT_RESIDENT) || (r->flags & WXT_F_JIT);
}

/* Code regions of im: its own, and those of the processes it was forked from. */
static void find_code(image *ims, size_t n, image *im)
{
    size_t cap = 16;
    im->code = malloc(cap * sizeof *im->code);
    for (const image *a = im; a; a = (a->parent && strcmp(a->started, "fork") == 0) ? &ims[a->parent - 1] : NULL) {
        for (size_t i = 0; i < a->n; i++) {
            const wxt_record *r = &a->r[i];
            if (!r->region || !prot_exec_or_jit(r))
                continue;
            if (im->ncode == cap) {
                cap *= 2;
                im->code = realloc(im->code, cap * sizeof *im->code);
            }
            im->code[im->ncode++] = r->region;
        }
    }
    qsort(im->code, im->ncode, sizeof *im->code, cmp_u32);
    size_t m = 0;
    for (size_t i = 0; i < im->ncode; i++)
        if (!m || im->code[m - 1] != im->code[i])
            im->code[m++] = im->code[i];
    im->ncode = m;
    (void)n;
}

static int thread_number(image *im, uint32_t tid)
{
    for (size_t i = 0; i < im->ntids; i++)
        if (im->tids[i] == tid)
            return (int)i + 1;
    im->tids = realloc(im->tids, (im->ntids + 1) * sizeof *im->tids);
    im->tids[im->ntids++] = tid;
    return (int)im->ntids;
}

/* ------------------------------------------------------------------------
 * Names
 * --------------------------------------------------------------------- */

static const char *call_name(int c)
{
    static const char *const names[WXT_NCALLS] = {
        [WXT_MMAP] = "mmap", [WXT_MUNMAP] = "munmap", [WXT_MREMAP] = "mremap", [WXT_MPROTECT] = "mprotect",
        [WXT_PKEY_MPROTECT] = "pkey_mprotect", [WXT_PKEY_ALLOC] = "pkey_alloc", [WXT_PKEY_FREE] = "pkey_free",
        [WXT_MEMFD_CREATE] = "memfd_create", [WXT_MEMBARRIER] = "membarrier", [WXT_MADVISE] = "madvise",
        [WXT_JIT_WRITE_PROTECT] = "pthread_jit_write_protect_np",
        [WXT_JIT_WRITE_CALLBACK] = "pthread_jit_write_with_callback_np",
        [WXT_ICACHE_INVALIDATE] = "sys_icache_invalidate", [WXT_MACH_VM_REMAP] = "mach_vm_remap",
        [WXT_VM_PROTECT] = "vm_protect", [WXT_RESIDENT] = "resident"};
    return c > 0 && c < WXT_NCALLS && names[c] ? names[c] : "unknown";
}

static void prot_str(int p, char *out, size_t len)
{
    if (p == WXT_PROT_UNKNOWN)
        snprintf(out, len, "?");
    else if (p == WXT_PROT_MIXED)
        snprintf(out, len, "mixed");
    else if (p == WXT_PROT_NONE_YET)
        snprintf(out, len, "unmapped");
    else
        snprintf(out, len, "%c%c%c", p & PROT_READ ? 'r' : '-', p & PROT_WRITE ? 'w' : '-', p & PROT_EXEC ? 'x' : '-');
}

typedef struct { long bit; const char *name; } flagname;

/* Flag names joined by '|', the rest in hex. */
static void flags_str(long v, const flagname *t, char *out, size_t len)
{
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; t[i].name; i++)
        if (t[i].bit && (v & t[i].bit) == t[i].bit) {
            k += (size_t)snprintf(out + k, k < len ? len - k : 0, "%s%s", k ? "|" : "", t[i].name);
            v &= ~t[i].bit;
        }
    if (v && k < len)
        snprintf(out + k, len - k, "%s%#lx", k ? "|" : "", v);
}

static const flagname mmap_flags[] = {
    {MAP_SHARED, "MAP_SHARED"}, {MAP_PRIVATE, "MAP_PRIVATE"}, {MAP_FIXED, "MAP_FIXED"},
#ifdef MAP_ANONYMOUS
    {MAP_ANONYMOUS, "MAP_ANONYMOUS"},
#else
    {MAP_ANON, "MAP_ANON"},
#endif
#ifdef MAP_NORESERVE
    {MAP_NORESERVE, "MAP_NORESERVE"},
#endif
#ifdef MAP_FIXED_NOREPLACE
    {MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"},
#endif
#ifdef MAP_POPULATE
    {MAP_POPULATE, "MAP_POPULATE"},
#endif
#ifdef MAP_JIT
    {MAP_JIT, "MAP_JIT"},
#endif
#ifdef MAP_32BIT
    {MAP_32BIT, "MAP_32BIT"},
#endif
#ifdef MAP_STACK
    {MAP_STACK, "MAP_STACK"},
#endif
    {0, NULL}};

static const char *advice_name(long a)
{
    switch (a) {
    case MADV_NORMAL: return "MADV_NORMAL";
    case MADV_RANDOM: return "MADV_RANDOM";
    case MADV_SEQUENTIAL: return "MADV_SEQUENTIAL";
    case MADV_WILLNEED: return "MADV_WILLNEED";
    case MADV_DONTNEED: return "MADV_DONTNEED";
#ifdef MADV_FREE
    case MADV_FREE: return "MADV_FREE";
#endif
#ifdef MADV_DONTFORK
    case MADV_DONTFORK: return "MADV_DONTFORK";
#endif
#ifdef MADV_HUGEPAGE
    case MADV_HUGEPAGE: return "MADV_HUGEPAGE";
    case MADV_NOHUGEPAGE: return "MADV_NOHUGEPAGE";
#endif
    default: return NULL;
    }
}

static const char *membarrier_name(long c)
{
    switch (c) {
    case 0: return "MEMBARRIER_CMD_QUERY";
    case 1: return "MEMBARRIER_CMD_GLOBAL";
    case 2: return "MEMBARRIER_CMD_GLOBAL_EXPEDITED";
    case 4: return "MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED";
    case 8: return "MEMBARRIER_CMD_PRIVATE_EXPEDITED";
    case 16: return "MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED";
    case 32: return "MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE";
    case 64: return "MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE";
    default: return NULL;
    }
}

static void detail_str(const image *im, const wxt_record *r, char *out, size_t len)
{
    out[0] = 0;
    switch (r->call) {
    case WXT_MMAP: {
        flags_str((long)r->detail, mmap_flags, out, len);
        /* Code regions it was mapped right next to (the replay places it so). */
        size_t k = strlen(out);
        if (is_code(im, r->adj_below))
            k += (size_t)snprintf(out + k, len - k, ";below=%u", r->adj_below);
        if (is_code(im, r->adj_above) && k < len)
            snprintf(out + k, len - k, ";above=%u", r->adj_above);
        break;
    }
    case WXT_MREMAP:
        snprintf(out, len, "new_size=%llu%s%s", (unsigned long long)r->region_size,
#ifdef MREMAP_MAYMOVE
                 (r->detail & MREMAP_MAYMOVE) ? "|MREMAP_MAYMOVE" : "", (r->detail & MREMAP_FIXED) ? "|MREMAP_FIXED" : ""
#else
                 "", ""
#endif
        );
        break;
    case WXT_PKEY_MPROTECT:
        snprintf(out, len, "pkey=%lld", (long long)r->detail);
        break;
    case WXT_PKEY_ALLOC:
        snprintf(out, len, "access_rights=%lld", (long long)r->detail);
        break;
    case WXT_PKEY_FREE:
        snprintf(out, len, "pkey=%lld", (long long)r->detail);
        break;
    case WXT_MEMFD_CREATE:
        snprintf(out, len, "flags=%#llx", (unsigned long long)r->detail);
        break;
    case WXT_MADVISE: {
        const char *a = advice_name((long)r->detail);
        if (a)
            snprintf(out, len, "%s", a);
        else
            snprintf(out, len, "advice=%lld", (long long)r->detail);
        break;
    }
    case WXT_MEMBARRIER: {
        const char *m = membarrier_name((long)r->detail);
        if (m)
            snprintf(out, len, "%s", m);
        else
            snprintf(out, len, "cmd=%lld", (long long)r->detail);
        break;
    }
    case WXT_JIT_WRITE_PROTECT:
        snprintf(out, len, "enabled=%lld", (long long)r->detail);
        break;
    case WXT_VM_PROTECT:
        if (r->detail)
            snprintf(out, len, "set_maximum");
        break;
    default:
        break;
    }
    size_t k = strlen(out);
    if (r->flags & WXT_F_SYNTHETIC)
        snprintf(out + k, len - k, "%sfirst_seen", k ? ";" : ""), k = strlen(out);
    if (r->flags & WXT_F_SYSCALL)
        snprintf(out + k, len - k, "%ssyscall", k ? ";" : "");
}

/* The symbolic name of an errno value (EACCES...), or its number. */
static const char *errno_name(int e)
{
    static char buf[16];
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EEXIST: return "EEXIST";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOSYS: return "ENOSYS";
    case ENOSPC: return "ENOSPC";
    case EFAULT: return "EFAULT";
    case ENOTSUP: return "ENOTSUP";
    default: snprintf(buf, sizeof buf, "errno%d", e); return buf;
    }
}

static void result_str(const wxt_record *r, char *out, size_t len)
{
    if (r->err)
        snprintf(out, len, "%lld %s", (long long)r->result, errno_name(r->err));
    else
        snprintf(out, len, "%lld", (long long)r->result);
}

/* ------------------------------------------------------------------------
 * Writing the trace
 * --------------------------------------------------------------------- */

typedef struct callsum {
    long count;
    uint64_t ns, bytes;
} callsum;

/* A row to write, pointing into its image. */
typedef struct row {
    const wxt_record *r;
    image *im;
} row;

static int cmp_row(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->r->t0 != y->r->t0)
        return x->r->t0 < y->r->t0 ? -1 : 1;
    return x->im->index - y->im->index;
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "wxbench trace: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "wxbench trace: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static void remove_raw(const char *raw)
{
    DIR *d = opendir(raw);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", raw, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(raw);
}

typedef struct traced {
    char **argv;
    int argc;
    int exit_status;
    uint64_t start_ns, wall_ns;
    const char *dir;
    const char *interposer;
    const wx_machine *m;
} traced;

static int write_trace(const traced *t, image *ims, size_t nim)
{
    char path[4400];
    /* Process numbers and parents. */
    qsort(ims, nim, sizeof *ims, cmp_image);
    pid_t root = 0;
    for (size_t i = 0; i < nim; i++) {
        image *im = &ims[i];
        im->index = (int)i + 1;
        im->started = "spawn";
        if (i == 0 && im->h.started == WXT_START_EXEC) {
            root = im->h.pid;
            im->started = "command";
            continue;
        }
        for (size_t k = i; k-- > 0;) {
            if (im->h.started == WXT_START_FORK && ims[k].h.pid == im->h.ppid) {
                im->parent = ims[k].index;
                im->started = "fork";
                break;
            }
            if (im->h.started == WXT_START_EXEC && ims[k].h.pid == im->h.pid) {
                im->parent = ims[k].index;
                im->started = "exec";
                break;
            }
        }
        if (!im->parent && im->h.started == WXT_START_EXEC)
            for (size_t k = i; k-- > 0;)
                if (ims[k].h.pid == im->h.ppid) {
                    im->parent = ims[k].index;
                    break;
                }
        if (!im->parent && im->h.pid == root)
            im->started = "command";
    }
    for (size_t i = 0; i < nim; i++)
        find_code(ims, nim, &ims[i]);

    /* The rows, in time order over every process. */
    size_t nrows = 0;
    for (size_t i = 0; i < nim; i++)
        nrows += ims[i].n;
    row *rows = malloc((nrows ? nrows : 1) * sizeof *rows);
    if (!rows)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < nim; i++) {
        image *im = &ims[i];
        /* the main thread is thread 1 */
        thread_number(im, (uint32_t)im->h.pid);
        for (size_t j = 0; j < im->n; j++) {
            const wxt_record *r = &im->r[j];
            int keep;
            switch (r->call) {
            case WXT_RESIDENT:
                keep = 0;
                break;
            case WXT_PKEY_ALLOC: case WXT_PKEY_FREE: case WXT_MEMFD_CREATE: case WXT_MEMBARRIER:
            case WXT_JIT_WRITE_PROTECT: case WXT_JIT_WRITE_CALLBACK: case WXT_ICACHE_INVALIDATE:
                keep = 1;
                break;
            default:
                keep = r->region ? is_code(im, r->region) : prot_exec_or_jit(r);
                break;
            }
            if (keep)
                rows[k++] = (row){r, im};
        }
    }
    nrows = k;
    qsort(rows, nrows, sizeof *rows, cmp_row);

    FILE *f = open_out(t->dir, WX_TRACE_CSV, path, sizeof path);
    if (!f)
        return -1;
    fputs(WX_TRACE_HEADER, f);
    callsum sums[WXT_NCALLS];
    memset(sums, 0, sizeof sums);
    /* distinct (process, thread) pairs with rows */
    size_t threads = 0;
    char *seen_thread = calloc(nim * 4096 + 1, 1);
    for (size_t i = 0; i < nrows; i++) {
        const wxt_record *r = rows[i].r;
        image *im = rows[i].im;
        int th = thread_number(im, r->tid);
        im->rows++;
        if (th < 4096 && seen_thread && !seen_thread[(size_t)(im->index - 1) * 4096 + (size_t)th]) {
            seen_thread[(size_t)(im->index - 1) * 4096 + (size_t)th] = 1;
            threads++;
        }
        char pb[16], pa[16], det[256], res[64], reg[24] = "", rsz[24] = "", off[24] = "";
        prot_str(r->prot_before, pb, sizeof pb);
        prot_str(r->prot_after, pa, sizeof pa);
        if (r->call == WXT_PKEY_ALLOC || r->call == WXT_PKEY_FREE || r->call == WXT_MEMFD_CREATE ||
            r->call == WXT_MEMBARRIER || r->call == WXT_JIT_WRITE_PROTECT || r->call == WXT_JIT_WRITE_CALLBACK)
            pb[0] = pa[0] = 0;
        detail_str(im, r, det, sizeof det);
        result_str(r, res, sizeof res);
        if (r->region) {
            snprintf(reg, sizeof reg, "%u", r->region);
            snprintf(rsz, sizeof rsz, "%llu", (unsigned long long)r->region_size);
            snprintf(off, sizeof off, "%llu", (unsigned long long)r->off);
        }
        uint64_t tt = r->t0 > t->start_ns ? r->t0 - t->start_ns : 0;
        fprintf(f, "%d,%d,%llu,%llu,%s,%s,%s,%s,%llu,%s,%s,", im->index, th, (unsigned long long)tt,
                (unsigned long long)r->dur, call_name(r->call), reg, rsz, off, (unsigned long long)r->len, pb, pa);
        wx_csv_field(f, det);
        fputc(',', f);
        wx_csv_field(f, res);
        fputc('\n', f);
        sums[r->call].count++;
        sums[r->call].ns += r->dur;
        sums[r->call].bytes += r->len;
    }
    free(seen_thread);
    if (close_out(f, path) != 0)
        return -1;

    /* Regions: every code region seen in a row, per process, with what was
     * resident at the end of that process. */
    f = open_out(t->dir, WX_TRACE_REGIONS_CSV, path, sizeof path);
    if (!f)
        return -1;
    fputs(WX_TRACE_REGIONS_HEADER, f);
    long nregions = 0;
    for (size_t i = 0; i < nim; i++) {
        image *im = &ims[i];
        for (size_t c = 0; c < im->ncode; c++) {
            uint32_t id = im->code[c];
            uint64_t size = 0, resident = 0;
            int used = 0;
            for (size_t j = 0; j < nrows; j++)
                if (rows[j].im == im && rows[j].r->region == id) {
                    used = 1;
                    if (rows[j].r->region_size > size)
                        size = rows[j].r->region_size;
                }
            if (!used)
                continue;
            nregions++;
            /* The union of every resident run recorded for it (before
             * each munmap of it, and at the end of the process). */
            size_t nr = 0;
            uint64_t (*iv)[2] = malloc((im->n + 1) * sizeof *iv);
            for (size_t j = 0; iv && j < im->n; j++) {
                const wxt_record *r = &im->r[j];
                if (r->call == WXT_RESIDENT && r->region == id) {
                    iv[nr][0] = r->off;
                    iv[nr][1] = r->off + r->len;
                    nr++;
                }
            }
            for (size_t a = 1; a < nr; a++) /* insertion sort: few runs */
                for (size_t b = a; b > 0 && iv[b - 1][0] > iv[b][0]; b--) {
                    uint64_t t0v = iv[b][0], t1v = iv[b][1];
                    iv[b][0] = iv[b - 1][0], iv[b][1] = iv[b - 1][1];
                    iv[b - 1][0] = t0v, iv[b - 1][1] = t1v;
                }
            char *runs = NULL;
            size_t rl = 0;
            FILE *rf = open_memstream(&runs, &rl);
            for (size_t a = 0; a < nr;) {
                uint64_t s0 = iv[a][0], e0 = iv[a][1];
                size_t b = a + 1;
                while (b < nr && iv[b][0] <= e0) {
                    if (iv[b][1] > e0)
                        e0 = iv[b][1];
                    b++;
                }
                fprintf(rf, "%s%llu:%llu", resident ? " " : "", (unsigned long long)s0, (unsigned long long)(e0 - s0));
                resident += e0 - s0;
                a = b;
            }
            fclose(rf);
            free(iv);
            fprintf(f, "%d,%u,%llu,%llu,%s\n", im->index, id, (unsigned long long)size,
                    (unsigned long long)resident, runs ? runs : "");
            free(runs);
        }
    }
    if (close_out(f, path) != 0)
        return -1;

    f = open_out(t->dir, WX_TRACE_PROCESSES_CSV, path, sizeof path);
    if (!f)
        return -1;
    fputs(WX_TRACE_PROCESSES_HEADER, f);
    for (size_t i = 0; i < nim; i++) {
        image *im = &ims[i];
        uint64_t s = im->h.start_ns > t->start_ns ? im->h.start_ns - t->start_ns : 0;
        char end[24] = "";
        if (im->h.end_ns)
            snprintf(end, sizeof end, "%llu",
                     (unsigned long long)(im->h.end_ns > t->start_ns ? im->h.end_ns - t->start_ns : 0));
        /* threads: those with rows */
        long th = 0;
        for (size_t j = 0; j < nrows; j++)
            if (rows[j].im == im) {
                int n = thread_number(im, rows[j].r->tid);
                if (n > th)
                    th = n;
            }
        fprintf(f, "%d,%d,%d,%s,%llu,%s,%ld,%ld,", im->index, (int)im->h.pid, im->parent, im->started,
                (unsigned long long)s, end, th, im->rows);
        wx_csv_field(f, im->h.exe);
        fputc('\n', f);
    }
    if (close_out(f, path) != 0)
        return -1;

    /* summary.json */
    f = open_out(t->dir, WX_TRACE_SUMMARY, path, sizeof path);
    if (!f)
        return -1;
    fputs("{\n  \"command\": [", f);
    for (int i = 0; i < t->argc; i++) {
        if (i)
            fputs(", ", f);
        wx_json_str(f, t->argv[i]);
    }
    fprintf(f, "],\n  \"exit_status\": %d,\n  \"wall_ns\": %llu,\n  \"threads\": %zu,\n  \"regions\": %ld,\n"
               "  \"calls\": {",
            t->exit_status, (unsigned long long)t->wall_ns, threads, nregions);
    int first = 1;
    for (int c = 1; c < WXT_NCALLS; c++) {
        if (!sums[c].count)
            continue;
        fprintf(f, "%s\n    \"%s\": {\"count\": %ld, \"in_call_ns\": %llu, \"bytes\": %llu}", first ? "" : ",",
                call_name(c), sums[c].count, (unsigned long long)sums[c].ns, (unsigned long long)sums[c].bytes);
        first = 0;
    }
    fputs(first ? "}\n}\n" : "\n  }\n}\n", f);
    if (close_out(f, path) != 0)
        return -1;

    /* meta.json: where and how it was traced */
    f = open_out(t->dir, WX_TRACE_META, path, sizeof path);
    if (!f)
        return -1;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    unsigned long lost = 0;
    for (size_t i = 0; i < nim; i++)
        lost += ims[i].h.lost;
    fputs("{\n  \"wxbench_version\": ", f);
    wx_json_str(f, WX_VERSION);
    fputs(",\n  \"date\": ", f);
    wx_json_str(f, date);
    fputs(",\n  \"machine\": ", f);
    wx_json_str(f, t->m->slug);
    fputs(",\n  \"chip\": ", f);
    wx_json_str(f, t->m->chip);
    fputs(",\n  \"os\": ", f);
    wx_json_str(f, t->m->os);
    fputs(",\n  \"arch\": ", f);
    wx_json_str(f, t->m->arch);
    fprintf(f, ",\n  \"page_size\": %ld,\n  \"ncpu\": %d,\n  \"interposer\": ", t->m->page_size, t->m->ncpu);
    wx_json_str(f, t->interposer);
    fprintf(f, ",\n  \"processes\": %zu,\n  \"records_lost\": %lu,\n  \"rows\": %zu\n}\n", nim, lost, nrows);
    if (close_out(f, path) != 0)
        return -1;

    /* What it found, on stderr. */
    fprintf(stderr, "wxbench trace: %zu process%s, %zu thread%s with W^X calls, %ld code region%s, %zu rows\n", nim,
            nim == 1 ? "" : "es", threads, threads == 1 ? "" : "s", nregions, nregions == 1 ? "" : "s", nrows);
    fprintf(stderr, "  %-34s %10s %14s %12s %8s\n", "call", "count", "in call (ms)", "bytes", "of wall");
    for (int c = 1; c < WXT_NCALLS; c++)
        if (sums[c].count)
            fprintf(stderr, "  %-34s %10ld %14.3f %12llu %7.1f%%\n", call_name(c), sums[c].count, sums[c].ns / 1e6,
                    (unsigned long long)sums[c].bytes, t->wall_ns ? 100.0 * (double)sums[c].ns / (double)t->wall_ns : 0);
    for (size_t i = 0; i < nim; i++) {
        int replaced = 0;
        for (size_t k = i + 1; k < nim; k++)
            replaced |= ims[k].h.pid == ims[i].h.pid && strcmp(ims[k].started, "exec") == 0;
        if (!ims[i].h.end_ns && !replaced)
            fprintf(stderr, "wxbench trace: warning: process %d (pid %d, %s) did not reach its end (exit, _exit or "
                    "exec): it was killed (its calls since the interposer last wrote them, at most 4096, are "
                    "missing), or ran a program into which the interposer was not loaded (%s removed, a static or "
                    "set-user-ID program), whose calls are not in the trace; its resident pages are those seen at "
                    "its munmap calls\n",
                    ims[i].index, (int)ims[i].h.pid, ims[i].h.exe, PRELOAD_VAR);
    }
    if (lost)
        fprintf(stderr, "wxbench trace: warning: %lu records could not be written (the trace file could not grow)\n",
                lost);
    free(rows);
    return 0;
}

/* ------------------------------------------------------------------------
 * The command
 * --------------------------------------------------------------------- */

int wx_trace_main(int argc, char **argv)
{
    const char *out = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs("usage: wxbench trace [--out DIR] -- COMMAND [ARG...]\n"
                  "Runs COMMAND with an interposer that records its W^X calls (mprotect, pkey_*, mmap/munmap/\n"
                  "mremap of code, memfd_create, membarrier, madvise; macOS: the JIT calls) into DIR/trace.csv,\n"
                  "DIR/summary.json (default DIR: data/<machine>/traces/<UTC time>). Exits with COMMAND's status\n"
                  "(128 + signal when it was killed); 2 for its own usage errors.\n",
                  stdout);
            return WX_EXIT_OK;
        } else if (strcmp(a, "--out") == 0 || strncmp(a, "--out=", 6) == 0) {
            const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !v[0])
                return usage("--out needs a directory%s", "");
            out = v;
        } else if (a[0] == '-') {
            return usage("unknown option '%s'", a);
        } else {
            break; /* the command, without -- */
        }
    }
    if (i >= argc)
        return usage("no command to trace%s", "");
    char **cmd = argv + i;
    int cmdc = argc - i;

    char interposer[4096];
    if (find_interposer(interposer, sizeof interposer) != 0) {
        fprintf(stderr, "wxbench trace: the interposer %s is missing (expected %s; run make, or set "
                "WXBENCH_INTERPOSER)\n", INTERPOSER_NAME, interposer);
        return WX_EXIT_USAGE;
    }
    char file[4096], why[8192];
    resolve_command(cmd[0], file, sizeof file);
    if (!file[0]) {
        fprintf(stderr, "wxbench trace: %s: command not found\n", cmd[0]);
        return WX_EXIT_USAGE;
    }
    cannot_interpose(file, why, sizeof why, 0);
    if (why[0]) {
        fprintf(stderr, "wxbench trace: cannot trace: %s\n", why);
        return WX_EXIT_USAGE;
    }

    static wx_machine m;
    wx_machine_describe(&m);
    char dir[4096];
    if (out) {
        snprintf(dir, sizeof dir, "%s", out);
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(dir, sizeof dir, "data/%s/traces/%s", m.slug, stamp);
    }
    char raw[4200], probe[4300];
    snprintf(raw, sizeof raw, "%s/raw", dir);
    /* The raw files live in memory where there is a tmpfs (/dev/shm): the
     * interposer's stores then never wait for a file system. */
    char shm[64] = "/dev/shm/wxtrace-XXXXXX";
    int in_shm = access("/dev/shm", W_OK) == 0 && mkdtemp(shm) != NULL;
    snprintf(probe, sizeof probe, "%s/%s", dir, WX_TRACE_CSV);
    if (access(probe, F_OK) == 0) {
        fprintf(stderr, "wxbench trace: %s already exists; refusing to overwrite a trace (choose another --out)\n",
                probe);
        return WX_EXIT_USAGE;
    }
    if (wx_mkdir_p(dir) != 0 || access(dir, W_OK) != 0 || (!in_shm && (wx_mkdir_p(raw) != 0 || access(raw, W_OK) != 0))) {
        fprintf(stderr, "wxbench trace: cannot write to %s: %s\n", dir, strerror(errno));
        if (in_shm)
            rmdir(shm);
        return WX_EXIT_USAGE;
    }
    /* The interposer writes by absolute path (the program may chdir), into
     * <that>/raw. */
    char absraw[4200];
    if (in_shm) {
        snprintf(absraw, sizeof absraw, "%s", shm);
        snprintf(raw, sizeof raw, "%s/raw", shm);
        if (mkdir(raw, 0700) != 0) {
            fprintf(stderr, "wxbench trace: cannot write to %s: %s\n", raw, strerror(errno));
            rmdir(shm);
            return WX_EXIT_USAGE;
        }
    } else {
        char *real_dir = realpath(dir, NULL);
        snprintf(absraw, sizeof absraw, "%s", real_dir ? real_dir : dir);
        free(real_dir);
    }

    launch l = {.argv = cmd, .interposer = interposer, .dir = absraw};
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    uint64_t t0 = wx_now_ns();
    char msg[512];
    wx_proc_end end;
    size_t n = wx_proc_call(launch_child, &l, msg, sizeof msg - 1, 0, &end);
    uint64_t t1 = wx_now_ns();
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    msg[n] = 0;
    int status = end.how == WX_PROC_EXITED ? end.code : end.how == WX_PROC_SIGNALED ? 128 + end.code : 1;
    if (n > 0) {
        fprintf(stderr, "wxbench trace: %s\n", msg);
        remove_raw(raw);
        if (in_shm)
            rmdir(shm);
        rmdir(dir);
        return WX_EXIT_USAGE;
    }

    /* The raw files. */
    image *ims = NULL;
    size_t nim = 0;
    DIR *d = opendir(raw);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".wxt") != 0)
            continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", raw, e->d_name);
        image im;
        if (read_image(p, &im, why, sizeof why) != 0) {
            fprintf(stderr, "wxbench trace: warning: %s\n", why);
            continue;
        }
        ims = realloc(ims, (nim + 1) * sizeof *ims);
        ims[nim++] = im;
    }
    if (d)
        closedir(d);
    remove_raw(raw);
    if (in_shm)
        rmdir(shm);
    if (nim == 0) {
        fprintf(stderr,
                "wxbench trace: the interposer never started in %s (%s): nothing was recorded, so no trace was "
                "written.\n  Possible causes: a statically linked program; a set-user-ID program (the loader "
                "ignores %s); a program that clears %s from its environment before starting its real work; on "
                "macOS a binary with the hardened runtime or protected by System Integrity Protection (dyld "
                "strips DYLD_INSERT_LIBRARIES).\n",
                cmd[0], end.why, PRELOAD_VAR, PRELOAD_VAR);
        rmdir(dir);
        return WX_EXIT_USAGE;
    }
    /* Nothing recorded, and a process whose end was not seen: most likely
     * it ran a program without the interposer. An empty trace would say
     * "no W^X calls", which is not known: say so instead. */
    size_t records = 0;
    int unseen = -1;
    for (size_t k = 0; k < nim; k++) {
        records += ims[k].n;
        int replaced = 0;
        for (size_t q = 0; q < nim; q++)
            replaced |= q != k && ims[q].h.pid == ims[k].h.pid && ims[q].h.start_ns > ims[k].h.start_ns;
        if (!ims[k].h.end_ns && !replaced)
            unseen = (int)k;
    }
    if (records == 0 && unseen >= 0) {
        fprintf(stderr,
                "wxbench trace: nothing was recorded, and %s (pid %d) did not reach its end (exit, _exit or exec): "
                "it ran a program into which the interposer was not loaded (%s removed from the environment, a "
                "static or set-user-ID program), or it was killed before the interposer wrote anything. No trace "
                "was written: it would claim that no W^X call was made.\n",
                ims[unseen].h.exe, (int)ims[unseen].h.pid, PRELOAD_VAR);
        rmdir(dir);
        return WX_EXIT_USAGE;
    }
    traced t = {.argv = cmd, .argc = cmdc, .exit_status = status, .start_ns = t0, .wall_ns = t1 - t0,
                .dir = dir, .interposer = interposer, .m = &m};
    if (write_trace(&t, ims, nim) != 0)
        return WX_EXIT_FAILURES;
    fprintf(stderr, "wxbench trace: %s %s; trace: %s/%s\n", cmd[0], end.why, dir, WX_TRACE_CSV);
    return status;
}
