/* platform_linux.c - machine description, pinning and counters on Linux. */
#define _GNU_SOURCE 1
#include "wx.h"
#include "platform_util.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef HWCAP2_POE
#define HWCAP2_POE (1UL << 63)
#endif

/* Value of the first "key : value" line of /proc/cpuinfo whose key is key. */
static int cpuinfo_field(const char *key, char *out, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    size_t k = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, k) != 0 || (line[k] != ' ' && line[k] != '\t' && line[k] != ':'))
            continue;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, len, "%s", colon);
        found = 1;
    }
    fclose(f);
    return found;
}

/* 1 if the cpuinfo flags line holds the word flag, 0 if not, -1 unknown. */
static int cpu_flag(const char *flag)
{
    static char flags[8192];
    static int have = -1;
    if (have < 0)
#if defined(__aarch64__)
        have = cpuinfo_field("Features", flags, sizeof flags); /* "flags" would be a qemu-user host's */
#else
        have = cpuinfo_field("flags", flags, sizeof flags) || cpuinfo_field("Features", flags, sizeof flags);
#endif
    if (!have)
        return -1;
    size_t k = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += k)
        if ((p == flags || p[-1] == ' ') && (p[k] == ' ' || p[k] == 0))
            return 1;
    return 0;
}

static long read_long_file(const char *path, long fallback)
{
    FILE *f = fopen(path, "r");
    long v = fallback;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = fallback;
        fclose(f);
    }
    return v;
}

#if defined(__aarch64__)
/* Name an arm64 CPU from the MIDR fields of /proc/cpuinfo. Under qemu-user
 * the file describes the host (x86 "model name", no "CPU implementer"):
 * then the chip says so rather than naming the host's CPU as this one. */
static void arm64_chip(wx_machine *m)
{
    static const struct {
        unsigned impl, part;
        const char *name;
    } known[] = {
        {0x41, 0xd03, "ARM Cortex-A53"}, {0x41, 0xd05, "ARM Cortex-A55"}, {0x41, 0xd07, "ARM Cortex-A57"},
        {0x41, 0xd08, "ARM Cortex-A72"}, {0x41, 0xd0b, "ARM Cortex-A76"}, {0x41, 0xd0c, "ARM Neoverse-N1"},
        {0x41, 0xd40, "ARM Neoverse-V1"}, {0x41, 0xd49, "ARM Neoverse-N2"}, {0x41, 0xd4f, "ARM Neoverse-V2"},
        {0x41, 0xd8e, "ARM Neoverse-N3"}, {0x41, 0xd84, "ARM Neoverse-V3"},
        {0xc0, 0xac3, "Ampere-1"}, {0xc0, 0xac4, "Ampere-1a"}, {0x46, 0x001, "Fujitsu A64FX"},
    };
    char impl[32] = "", part[32] = "", host[128] = "";
    if (cpuinfo_field("CPU implementer", impl, sizeof impl)) {
        cpuinfo_field("CPU part", part, sizeof part);
        unsigned i = (unsigned)strtoul(impl, NULL, 0), p = (unsigned)strtoul(part, NULL, 0);
        const char *name = NULL;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (known[k].impl == i && known[k].part == p)
                name = known[k].name;
        if (name)
            snprintf(m->chip, sizeof m->chip, "%s", name);
        else
            snprintf(m->chip, sizeof m->chip, "ARM implementer %s part %s", impl, part);
        m->emulated = 0;
    } else if (cpuinfo_field("model name", host, sizeof host) || cpuinfo_field("vendor_id", host, sizeof host)) {
        /* An arm64 process reading another architecture's cpuinfo: user-mode
         * emulation (qemu-user through binfmt_misc or by hand). */
        snprintf(m->chip, sizeof m->chip, "emulated arm64 on %.100s", host);
        m->emulated = 1;
    } else {
        snprintf(m->chip, sizeof m->chip, "unknown arm64 CPU");
        m->emulated = -1;
    }
}
#endif

void wx_machine_describe(wx_machine *m)
{
    memset(m, 0, sizeof *m);
    struct utsname u;
    if (uname(&u) == 0) {
        char rel[65];
        snprintf(rel, sizeof rel, "%s", u.release);
        rel[strcspn(rel, "-+")] = 0; /* 6.1.0-18-amd64 -> 6.1.0 */
        snprintf(m->os, sizeof m->os, "Linux %s", rel);
        snprintf(m->kernel, sizeof m->kernel, "%.64s %.64s %.64s %.32s", u.sysname, u.release, u.version,
                 u.machine);
    } else {
        snprintf(m->os, sizeof m->os, "Linux");
    }
#if defined(__x86_64__)
    snprintf(m->arch, sizeof m->arch, "x86_64");
#elif defined(__aarch64__)
    snprintf(m->arch, sizeof m->arch, "arm64");
#endif
#if defined(__aarch64__)
    arm64_chip(m);
#else
    if (!cpuinfo_field("model name", m->chip, sizeof m->chip)) {
        char impl[32] = "", part[32] = "";
        cpuinfo_field("CPU implementer", impl, sizeof impl);
        cpuinfo_field("CPU part", part, sizeof part);
        if (impl[0])
            snprintf(m->chip, sizeof m->chip, "ARM implementer %s part %s", impl, part);
        else
            snprintf(m->chip, sizeof m->chip, "unknown %s CPU", m->arch);
    }
    m->emulated = 0;
#endif
    m->page_size = sysconf(_SC_PAGESIZE);
    m->cache_line = read_long_file("/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size", 0);
#ifdef _SC_LEVEL1_DCACHE_LINESIZE
    if (m->cache_line <= 0)
        m->cache_line = sysconf(_SC_LEVEL1_DCACHE_LINESIZE) > 0 ? sysconf(_SC_LEVEL1_DCACHE_LINESIZE) : 0;
#endif
    m->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    m->ncpu_allowed = wx_cpus_allowed();
    m->hypervisor = cpu_flag("hypervisor") == 1 || access("/sys/hypervisor/type", F_OK) == 0;
    m->pku = m->ospke = m->poe = m->ctr_dic = m->ctr_idc = -1;
#if defined(__x86_64__)
    m->pku = cpu_flag("pku");
    m->ospke = cpu_flag("ospke");
#elif defined(__aarch64__)
    m->poe = (getauxval(AT_HWCAP2) & HWCAP2_POE) ? 1 : 0;
    uint64_t ctr;
    __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
    m->ctr_dic = (int)((ctr >> 29) & 1);
    m->ctr_idc = (int)((ctr >> 28) & 1);
#endif
    wx_slugify(m->chip, m->hypervisor, m->slug, sizeof m->slug);
}

/* Governors of every CPU that exposes one, e.g. "performance" or
 * "performance,powersave"; a sentence where none is exposed. */
static void frequency_scaling(char *out, size_t len)
{
    out[0] = 0;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);
    for (int c = 0; c < ncpu && c < 4096; c++) {
        char path[128], gov[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor", c);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(gov, sizeof gov, f)) {
            gov[strcspn(gov, "\n")] = 0;
            if (!strstr(out, gov) && strlen(out) + strlen(gov) + 2 < len) {
                if (out[0])
                    strcat(out, ",");
                strcat(out, gov);
            }
        }
        fclose(f);
    }
    if (!out[0])
        snprintf(out, len, "not exposed (no cpufreq governor in /sys; typical of a VM)");
    long boost = read_long_file("/sys/devices/system/cpu/cpufreq/boost", -1);
    long noturbo = read_long_file("/sys/devices/system/cpu/intel_pstate/no_turbo", -1);
    size_t n = strlen(out);
    if (boost >= 0)
        snprintf(out + n, len - n, "; boost=%ld", boost);
    else if (noturbo >= 0)
        snprintf(out + n, len - n, "; intel_pstate no_turbo=%ld", noturbo);
}

void wx_machine_write_meta(const wx_machine *m, void *file)
{
    FILE *f = file;
    wx_machine_write_common(m, f);
    fputs("  \"cpu_features\": {\"hypervisor\": ", f); wx_json_tri(f, m->hypervisor);
    fputs(", \"pku\": ", f); wx_json_tri(f, m->pku);
    fputs(", \"ospke\": ", f); wx_json_tri(f, m->ospke);
    fputs(", \"poe\": ", f); wx_json_tri(f, m->poe);
    fputs(", \"ctr_el0_dic\": ", f); wx_json_tri(f, m->ctr_dic);
    fputs(", \"ctr_el0_idc\": ", f); wx_json_tri(f, m->ctr_idc);
    fputs("},\n", f);
    fprintf(f, "  \"cores\": {\"logical_online\": %d, \"allowed\": %d, \"performance\": null, \"efficiency\": null},\n",
            m->ncpu, m->ncpu_allowed);
    fprintf(f, "  \"page_size\": %ld,\n", m->page_size);
    if (m->cache_line > 0)
        fprintf(f, "  \"cache_line_size\": %ld,\n", m->cache_line);
    else
        fputs("  \"cache_line_size\": null,\n", f);
    struct timespec res;
    long res_ns = clock_getres(CLOCK_MONOTONIC, &res) == 0 ? res.tv_sec * 1000000000L + res.tv_nsec : -1;
    fprintf(f, "  \"timer\": {\"name\": \"clock_gettime(CLOCK_MONOTONIC) (std::chrono::steady_clock in Google Benchmark)\", \"resolution_ns\": %ld},\n",
            res_ns);
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) == 3)
        fprintf(f, "  \"load_average\": [%.2f, %.2f, %.2f],\n", load[0], load[1], load[2]);
    else
        fputs("  \"load_average\": null,\n", f);
    char fs[256];
    frequency_scaling(fs, sizeof fs);
    fputs("  \"frequency_scaling\": ", f); wx_json_str(f, fs); fputs(",\n", f);
    char why[WX_REASON_LEN] = "";
    int cyc = wx_cycles_available(why, sizeof why);
    fputs("  \"cycles\": {\"available\": ", f); wx_json_tri(f, cyc);
    fputs(", \"source\": \"perf_event_open(PERF_COUNT_HW_CPU_CYCLES, user+kernel)\", \"reason\": ", f);
    wx_json_str(f, cyc ? "" : why); fputs("},\n", f);
    int tlb_ok = 0;
    wx_tlb_shootdowns(&tlb_ok);
    fputs("  \"tlb_shootdowns\": {\"available\": ", f); wx_json_tri(f, tlb_ok);
    fputs(", \"source\": ", f);
    wx_json_str(f, tlb_ok ? "/proc/interrupts TLB row, summed over CPUs"
                          : "not counted: no TLB row in /proc/interrupts (arm64 broadcasts TLB invalidation in hardware)");
    fputs("},\n", f);
}

/* The CPUs the process may run on, as inherited at start: threads pinned
 * earlier must not shrink the set later threads choose from. */
static cpu_set_t allowed_set;
static int allowed_ok = -1;

static void load_allowed(void)
{
    if (allowed_ok < 0)
        allowed_ok = sched_getaffinity(0, sizeof allowed_set, &allowed_set) == 0;
}

int wx_cpus_allowed(void)
{
    load_allowed();
    return allowed_ok ? CPU_COUNT(&allowed_set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
}

int wx_cpu_for_index(int index)
{
    load_allowed();
    if (!allowed_ok)
        return -1;
    int n = CPU_COUNT(&allowed_set);
    if (n <= 0 || index < 0)
        return -1;
    int want = index % n, seen = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed_set) && seen++ == want)
            return c;
    return -1;
}

int wx_pin_thread(int index, char *why, size_t len)
{
    int cpu = wx_cpu_for_index(index);
    if (cpu < 0)
        return snprintf(why, len, "no allowed CPU for thread index %d (sched_getaffinity failed or empty)", index), -1;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    /* pid 0 = the calling thread */
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        return wx_why_errno(why, len, "sched_setaffinity", errno), -1;
    return cpu;
}

int wx_runnable_tasks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "procs_running %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

int wx_current_cpu(void)
{
    return sched_getcpu();
}

const char *wx_pin_method(void)
{
    if (wx_cpu_for_index(0) < 0)
        return "none: pinning failed";
    return "sched_setaffinity: the measuring thread of every child on this CPU; "
           "extra threads pinned one per other allowed CPU by index";
}

int wx_core_classes(const char **classes, int max)
{
    /* Linux big.LITTLE machines exist, but wxbench does not split them yet. */
    if (max < 1)
        return 0;
    classes[0] = "any";
    return 1;
}

int wx_set_core_class(const char *cls, char *why, size_t len)
{
    if (strcmp(cls, "any") == 0)
        return 0;
    snprintf(why, len, "core class %s exists on Apple silicon only", cls);
    return EINVAL;
}

int wx_cpu_class(int cpu)
{
    (void)cpu;
    return 0;
}

void wx_jit_thread_reset(void)
{
    /* No per-thread JIT write state on Linux (pkey regions are reset by
     * their strategy's end_write). */
}

int64_t wx_thread_wait_ns(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long run = 0, wait = 0;
    int n = f ? fscanf(f, "%llu %llu", &run, &wait) : 0;
    if (f)
        fclose(f);
    return n == 2 ? (int64_t)wait : -1;
}

/* Code signing is a macOS matter: nothing applies here. */
void wx_signing_describe(wx_signing *s)
{
    memset(s, 0, sizeof *s);
    s->cs_flags = s->cs_config = -1;
    s->hardened_runtime = s->adhoc = s->linker_signed = s->allow_jit = s->jit_write_allowlist = -1;
    s->csm = s->map_jit_enabled = s->lockdown = s->translated = -1;
    snprintf(s->mode, sizeof s->mode, "n/a");
    snprintf(s->text, sizeof s->text, "not applicable: code signing, the hardened runtime and the code-signing "
                                      "monitor are macOS mechanisms");
}

static int not_macos(char *why, size_t len, const char *what)
{
    if (why && len)
        snprintf(why, len, "not applicable: %s exists on macOS only", what);
    return -1;
}

int wx_code_signing_monitor(char *why, size_t len)
{
    return not_macos(why, len, "the code-signing monitor");
}

int wx_jit_allowlist_enforced(char *why, size_t len)
{
    not_macos(why, len, "the JIT write-callback allow-list");
    return 0;
}

int wx_jit_toggle_enforced(char *why, size_t len)
{
    return not_macos(why, len, "the per-thread JIT write protection (MAP_JIT)");
}

uint64_t wx_tlb_shootdowns(int *ok)
{
    *ok = 0;
    FILE *f = fopen("/proc/interrupts", "r");
    if (!f)
        return 0;
    /* Own buffer per call: worker threads read this at the same time. */
    char *line = NULL;
    size_t cap = 0;
    uint64_t sum = 0;
    while (getline(&line, &cap, f) > 0) {
        char *p = line;
        while (*p == ' ')
            p++;
        if (strncmp(p, "TLB:", 4) != 0)
            continue;
        p += 4;
        for (;;) {
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p)
                break;
            sum += v;
            p = end;
        }
        *ok = 1;
        break;
    }
    free(line);
    fclose(f);
    return sum;
}

static int open_cycles(int *err)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = PERF_COUNT_HW_CPU_CYCLES;
    a.disabled = 1;
    a.exclude_hv = 1;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    *err = fd < 0 ? errno : 0;
    return fd;
}

int wx_cycles_available(char *why, size_t len)
{
    int err, fd = open_cycles(&err);
    if (fd < 0) {
        wx_why_errno(why, len, "perf_event_open(cycles)", err);
        return 0;
    }
    close(fd);
    return 1;
}

void wx_counters_begin(wx_counters *c)
{
    int err;
    c->cycles_fd = open_cycles(&err);
    c->cycles_start = 0;
    if (c->cycles_fd >= 0 && (ioctl(c->cycles_fd, PERF_EVENT_IOC_RESET, 0) != 0 ||
                              ioctl(c->cycles_fd, PERF_EVENT_IOC_ENABLE, 0) != 0)) {
        close(c->cycles_fd); /* not counting: leave cycles_per_op empty rather than 0 */
        c->cycles_fd = -1;
    }
    c->tlb_start = wx_tlb_shootdowns(&c->tlb_ok);
}

void wx_counters_end(wx_counters *c, double *tlb, double *cycles)
{
    uint64_t n = 0;
    *cycles = -1;
    if (c->cycles_fd >= 0) {
        ioctl(c->cycles_fd, PERF_EVENT_IOC_DISABLE, 0);
        if (read(c->cycles_fd, &n, sizeof n) == (ssize_t)sizeof n)
            *cycles = (double)n;
        close(c->cycles_fd);
        c->cycles_fd = -1;
    }
    int ok = 0;
    uint64_t end = wx_tlb_shootdowns(&ok);
    *tlb = (c->tlb_ok && ok) ? (double)(end - c->tlb_start) : -1;
}
