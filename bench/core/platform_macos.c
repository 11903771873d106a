/* platform_macos.c - machine description, thread placement and counters on
 * macOS (Apple silicon first, Intel Macs too).
 *
 * Written from Apple's open-source xnu and libpthread and public write-ups
 * (see the references in docs/platforms.md); every call is checked, and
 * what cannot be had (cycle counters without root, pinning) is recorded in
 * meta.json with the reason instead of failing the run. */
#define _DARWIN_C_SOURCE 1
#include "wx.h"
#include "platform_util.h"

#include <Availability.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <pthread/qos.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/qos.h>
#include <sys/sysctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#if defined(MAP_JIT) && defined(__MAC_OS_X_VERSION_MIN_REQUIRED) && __MAC_OS_X_VERSION_MIN_REQUIRED >= 110000
#define WX_HAVE_JIT_TOGGLE 1  /* pthread_jit_write_protect_np callable without a run-time check */
#endif

/* ------------------------------------------------------------------------
 * sysctl: ask the size first, then read (several hw.* values are 64-bit)
 * --------------------------------------------------------------------- */

/* String sysctl name into out; 0 with errno-style reason when missing. */
static int sysctl_str(const char *name, char *out, size_t len)
{
    size_t n = 0;
    out[0] = 0;
    if (sysctlbyname(name, NULL, &n, NULL, 0) != 0 || n == 0)
        return 0;
    char *buf = malloc(n + 1);
    if (!buf)
        return 0;
    if (sysctlbyname(name, buf, &n, NULL, 0) != 0) {
        free(buf);
        return 0;
    }
    buf[n] = 0;
    snprintf(out, len, "%s", buf);
    free(buf);
    return 1;
}

/* Integer sysctl name (4 or 8 bytes, whichever the kernel gives), or
 * fallback when it does not exist. */
static long long sysctl_int(const char *name, long long fallback)
{
    size_t n = 0;
    if (sysctlbyname(name, NULL, &n, NULL, 0) != 0)
        return fallback;
    if (n == sizeof(int32_t)) {
        int32_t v = 0;
        if (sysctlbyname(name, &v, &n, NULL, 0) == 0 && n == sizeof v)
            return v;
    } else if (n == sizeof(int64_t)) {
        int64_t v = 0;
        if (sysctlbyname(name, &v, &n, NULL, 0) == 0 && n == sizeof v)
            return v;
    }
    return fallback;
}

/* One performance level (hw.perflevelN.*): a kind of core. */
typedef struct perflevel {
    char name[32];        /* "Performance" or "Efficiency" */
    int physical;         /* physicalcpu */
    int logical;          /* logicalcpu */
    long long l1i, l1d;   /* bytes per core, -1 unknown */
    long long l2;         /* bytes per cluster, -1 unknown */
    int cpus_per_l2;      /* cores sharing one L2, -1 unknown */
} perflevel;

static void read_perflevel(int i, perflevel *p)
{
    char key[64];
#define PL(field) (snprintf(key, sizeof key, "hw.perflevel%d." field, i), key)
    memset(p, 0, sizeof *p);
    if (!sysctl_str(PL("name"), p->name, sizeof p->name))
        snprintf(p->name, sizeof p->name, "perflevel%d", i);
    p->physical = (int)sysctl_int(PL("physicalcpu"), 0);
    p->logical = (int)sysctl_int(PL("logicalcpu"), 0);
    p->l1i = sysctl_int(PL("l1icachesize"), -1);
    p->l1d = sysctl_int(PL("l1dcachesize"), -1);
    p->l2 = sysctl_int(PL("l2cachesize"), -1);
    p->cpus_per_l2 = (int)sysctl_int(PL("cpusperl2"), -1);
#undef PL
}

/* Performance levels: 2 on Apple silicon with P and E cores (perflevel0 =
 * P, perflevel1 = E), 1 on single-type chips, 0 where hw.nperflevels is
 * missing (Intel Macs, macOS < 12). */
static int perflevels(perflevel out[2])
{
    int n = (int)sysctl_int("hw.nperflevels", 0);
    if (n > 2)
        n = 2;
    for (int i = 0; i < n; i++)
        read_perflevel(i, &out[i]);
    return n;
}

/* ------------------------------------------------------------------------
 * Where threads run: QoS core classes and CPU numbers
 * --------------------------------------------------------------------- */

int wx_runnable_tasks(void)
{
    return -1; /* macOS has no count of runnable tasks short of walking every task */
}

int wx_current_cpu(void)
{
    size_t cpu = 0;
    if (__builtin_available(macOS 11.0, *)) {
        if (pthread_cpu_number_np(&cpu) == 0)
            return (int)cpu;
    }
    return -1;
}

int wx_cpus_allowed(void)
{
    long long n = sysctl_int("hw.logicalcpu", 0);
    return n > 0 ? (int)n : (int)sysconf(_SC_NPROCESSORS_ONLN);
}

int wx_cpu_for_index(int index)
{
    (void)index;
    return -1; /* no affinity: the scheduler decides */
}

int wx_pin_thread(int index, char *why, size_t len)
{
    (void)index;
    snprintf(why, len, "macOS has no thread affinity API (THREAD_AFFINITY_POLICY is a hint on Intel and not "
                       "supported on Apple silicon); threads are placed by QoS core class instead");
    return -1;
}

const char *wx_pin_method(void)
{
    return "none: macOS cannot pin threads; single-thread cases are placed by QoS "
           "(core_class P: QOS_CLASS_USER_INTERACTIVE, E: QOS_CLASS_BACKGROUND) and the CPUs they ran on "
           "(pthread_cpu_number_np) are checked against their class";
}

/* The E/P map of CPU numbers, learned once (before the runner forks). */
static struct {
    int ready;
    int levels;           /* 0, 1 or 2 */
    int eff;              /* E-core logical CPUs */
    int ncpu;             /* logical CPUs */
    int checked;          /* 1: the map held against a BACKGROUND and a USER_INTERACTIVE thread */
    char text[512];       /* what was learned, for meta.json */
} g_map;

/* CPUs a thread of one QoS class was seen on. */
typedef struct qos_probe {
    uint64_t seen;        /* CPUs it ran on (bit per CPU < 64) */
    int samples;          /* readings taken */
    int below;            /* readings on a CPU below the E-core count */
} qos_probe;

static void *qos_sampler(void *arg)
{
    qos_probe *b = arg;
    int eff = g_map.eff;
    uint64_t end = wx_now_ns() + 30 * 1000000ull; /* 30 ms of samples */
    while (wx_now_ns() < end && b->samples < 100000) {
        int cpu = wx_current_cpu();
        if (cpu >= 0 && cpu < 64)
            b->seen |= 1ull << cpu;
        if (cpu >= 0 && cpu < eff)
            b->below++;
        b->samples++;
        for (volatile int spin = 0; spin < 1000; spin++)
            ;
    }
    return NULL;
}

/* Sample the CPUs a new thread of class q runs on; 0, or an errno. */
static int sample_qos(qos_class_t q, qos_probe *b)
{
    pthread_attr_t attr;
    pthread_t t;
    memset(b, 0, sizeof *b);
    int e = pthread_attr_init(&attr);
    if (e != 0)
        return e;
    e = pthread_attr_set_qos_class_np(&attr, q, 0);
    if (e == 0)
        e = pthread_create(&t, &attr, qos_sampler, b);
    if (e == 0)
        pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    return e;
}

/* "0,1,2" from a bit set of CPUs. */
static void cpu_list(uint64_t seen, char *out, size_t len)
{
    size_t o = 0;
    out[0] = 0;
    for (int c = 0; c < 64 && o < len; c++)
        if (seen >> c & 1)
            o += (size_t)snprintf(out + o, len - o, "%s%d", o ? "," : "", c);
}

/* Apple silicon has so far numbered its E-cores first (CPUs 0..E-1). That
 * is an assumption, not a documented fact, so it is checked both ways: a
 * QOS_CLASS_BACKGROUND thread (which macOS keeps on E-cores) must only be
 * seen on CPUs below E, and a QOS_CLASS_USER_INTERACTIVE thread (which
 * prefers P-cores) must be seen mostly on CPUs E and above. Otherwise the
 * class of a CPU number stays unknown and rows show raw CPU numbers. */
static void learn_cpu_classes(void)
{
    if (g_map.ready)
        return;
    g_map.ready = 1;
    perflevel pl[2];
    g_map.levels = perflevels(pl);
    g_map.ncpu = wx_cpus_allowed();
    if (g_map.levels < 2) {
        snprintf(g_map.text, sizeof g_map.text, "one kind of core (hw.nperflevels %d): core_class any", g_map.levels);
        return;
    }
    g_map.eff = pl[1].logical;
    qos_probe bg, ui;
    int e = sample_qos(QOS_CLASS_BACKGROUND, &bg);
    if (e != 0) {
        snprintf(g_map.text, sizeof g_map.text,
                 "unknown: could not start a QOS_CLASS_BACKGROUND thread to check the map (%s)", strerror(e));
        return;
    }
    e = sample_qos(QOS_CLASS_USER_INTERACTIVE, &ui);
    if (e != 0) {
        snprintf(g_map.text, sizeof g_map.text,
                 "unknown: could not start a QOS_CLASS_USER_INTERACTIVE thread to check the map (%s)", strerror(e));
        return;
    }
    char bgl[160], uil[160];
    cpu_list(bg.seen, bgl, sizeof bgl);
    cpu_list(ui.seen, uil, sizeof uil);
    int outside = -1;
    for (int c = g_map.eff; c < 64 && outside < 0; c++)
        if (bg.seen >> c & 1)
            outside = c;
    if (!bg.seen || !ui.seen) {
        snprintf(g_map.text, sizeof g_map.text,
                 "unknown: pthread_cpu_number_np gave no CPU number to a %s thread",
                 !bg.seen ? "QOS_CLASS_BACKGROUND" : "QOS_CLASS_USER_INTERACTIVE");
    } else if (outside >= 0) {
        snprintf(g_map.text, sizeof g_map.text,
                 "unknown: a QOS_CLASS_BACKGROUND thread ran on CPU %d, not among the first %d (so E-cores are "
                 "not numbered first here; CPUs seen: %s)",
                 outside, g_map.eff, bgl);
    } else if (2 * ui.below > ui.samples) {
        snprintf(g_map.text, sizeof g_map.text,
                 "unknown: a QOS_CLASS_USER_INTERACTIVE thread ran below CPU %d in %d of %d samples (CPUs seen: "
                 "%s), so P-cores are not shown to be numbered after the E-cores (or they were busy); a "
                 "QOS_CLASS_BACKGROUND thread ran on CPUs %s",
                 g_map.eff, ui.below, ui.samples, uil, bgl);
    } else {
        g_map.checked = 1;
        snprintf(g_map.text, sizeof g_map.text,
                 "E-cores are CPUs 0-%d and P-cores %d-%d (assumed: E-cores numbered first; checked: a "
                 "QOS_CLASS_BACKGROUND thread ran only on CPUs %s in %d samples, a QOS_CLASS_USER_INTERACTIVE "
                 "thread on CPUs %s, at or above %d in %d of %d samples)",
                 g_map.eff - 1, g_map.eff, g_map.ncpu - 1, bgl, bg.samples, uil, g_map.eff,
                 ui.samples - ui.below, ui.samples);
    }
}

int wx_cpu_class(int cpu)
{
    learn_cpu_classes();
    if (!g_map.checked || cpu < 0 || cpu >= g_map.ncpu)
        return 0;
    return cpu < g_map.eff ? 'E' : 'P';
}

int wx_core_classes(const char **classes, int max)
{
    static int levels = -1;
    if (levels < 0) {
        perflevel pl[2];
        levels = perflevels(pl);
    }
    if (levels >= 2 && max >= 2) {
        classes[0] = "P";
        classes[1] = "E";
        return 2;
    }
    if (max >= 1)
        classes[0] = "any";
    return max >= 1 ? 1 : 0;
}

int wx_set_core_class(const char *cls, char *why, size_t len)
{
    qos_class_t q;
    const char *qname;
    if (strcmp(cls, "P") == 0) {
        q = QOS_CLASS_USER_INTERACTIVE;
        qname = "QOS_CLASS_USER_INTERACTIVE";
    } else if (strcmp(cls, "E") == 0) {
        q = QOS_CLASS_BACKGROUND;
        qname = "QOS_CLASS_BACKGROUND";
    } else {
        q = qos_class_main(); /* what the process started with */
        if (q == QOS_CLASS_UNSPECIFIED)
            q = QOS_CLASS_DEFAULT;
        qname = "the main thread's initial QoS";
    }
    int e = pthread_set_qos_class_self_np(q, 0);
    if (e != 0) {
        snprintf(why, len, "pthread_set_qos_class_self_np(%s): %s (errno %d)", qname, strerror(e), e);
        return e;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Code signing and what the system enforces on JIT memory
 * --------------------------------------------------------------------- */

/* From Apple's xnu (xnu-11417). csops() is exported by libSystem but
 * declared only in the private <System/sys/codesign.h>; its operations are
 * in bsd/sys/codesign.h (CS_OPS_STATUS 0, CS_OPS_ENTITLEMENTS_BLOB 7: the
 * XML entitlements as a blob with a big-endian 8-byte header, magic and
 * length; ERANGE with the length when the buffer is too small; nothing
 * copied when there are no entitlements: bsd/kern/kern_proc.c), its flags
 * in osfmk/kern/cs_blobs.h. */
extern int csops(pid_t pid, unsigned int ops, void *useraddr, size_t usersize);
#define WX_CS_OPS_STATUS 0u
#define WX_CS_OPS_ENTITLEMENTS_BLOB 7u
#define WX_CS_VALID 0x00000001u
#define WX_CS_ADHOC 0x00000002u
#define WX_CS_RUNTIME 0x00010000u       /* the hardened runtime applies */
#define WX_CS_LINKER_SIGNED 0x00020000u /* signed by the linker, ad hoc */
/* sysctl security.codesigning.config (a 32-bit value: bsd/kern/kern_codesigning.c) holds the bits of
 * bsd/sys/code_signing.h: CS_CONFIG_MAP_JIT (1 << 26), MAP_JIT available (csm_check_lockdown_mode in
 * kern_codesigning.c clears it under Lockdown Mode where the monitor's policy turns JIT off), and
 * CS_CONFIG_CSM_ENABLED (1 << 31), the code-signing monitor is on. Apple's own libpthread test
 * (libpthread-539 tests/pthread_jit_write_protection.c, through code_signing_monitor_enabled() in
 * tests/pthread_jit_write_test_inline.h) reads this bit and skips its execute-while-writable check when it
 * is set, because an execute fault the monitor cannot resolve then kills the process with SIGKILL. With the
 * monitor on, xnu refuses MAP_JIT it does not allow with EPERM ("code signing monitor denies JIT mapping",
 * bsd/kern/kern_mman.c). Lockdown Mode: sysctl security.mac.lockdown_mode_state (bsd/kern/lockdown_mode.c). */
#define WX_CS_CONFIG_MAP_JIT (1u << 26)
#define WX_CS_CONFIG_CSM_ENABLED (1u << 31)

/* The XML entitlements of this process (malloc'ed, NUL-terminated; NULL
 * when it has none): 0, or an errno from csops. */
static int read_entitlements(char **xml)
{
    *xml = NULL;
    unsigned char hdr[8] = {0};
    if (csops(getpid(), WX_CS_OPS_ENTITLEMENTS_BLOB, hdr, sizeof hdr) == 0)
        return 0; /* none (or an empty blob) */
    if (errno != ERANGE)
        return errno;
    uint32_t be;
    memcpy(&be, hdr + 4, sizeof be);
    size_t n = ntohl(be);
    if (n <= 8 || n > (1u << 24))
        return EINVAL;
    char *buf = calloc(1, n + 1);
    if (!buf)
        return ENOMEM;
    if (csops(getpid(), WX_CS_OPS_ENTITLEMENTS_BLOB, buf, n) != 0) {
        int e = errno;
        free(buf);
        return e;
    }
    memmove(buf, buf + 8, n - 8);
    buf[n - 8] = 0;
    *xml = buf;
    return 0;
}

/* 1 when the XML plist has <key>key</key> set to <true/>, else 0. */
static int entitled(const char *xml, const char *key)
{
    char want[160];
    snprintf(want, sizeof want, "<key>%s</key>", key);
    const char *p = xml ? strstr(xml, want) : NULL;
    if (!p)
        return 0;
    p += strlen(want);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return strncmp(p, "<true/>", 7) == 0;
}

static const char *tri(int v, const char *yes, const char *no)
{
    return v < 0 ? "unknown" : v ? yes : no;
}

static wx_signing g_signing;
static pthread_once_t signing_once = PTHREAD_ONCE_INIT;

static void signing_init(void)
{
    wx_signing *s = &g_signing;
    memset(s, 0, sizeof *s);
    s->applicable = 1;
    s->cs_flags = s->cs_config = -1;
    s->hardened_runtime = s->adhoc = s->linker_signed = s->allow_jit = s->jit_write_allowlist = -1;
    s->csm = s->map_jit_enabled = s->lockdown = -1;
    char fl[96], ent[96] = "", cfg[160];
    uint32_t flags = 0;
    if (csops(getpid(), WX_CS_OPS_STATUS, &flags, sizeof flags) == 0) {
        s->cs_flags = flags;
        s->hardened_runtime = (flags & WX_CS_RUNTIME) != 0;
        s->adhoc = (flags & WX_CS_ADHOC) != 0;
        s->linker_signed = (flags & WX_CS_LINKER_SIGNED) != 0;
        snprintf(fl, sizeof fl, "csops flags %#x", flags);
    } else {
        snprintf(fl, sizeof fl, "csops(CS_OPS_STATUS): %s", strerror(errno));
    }
    char *xml = NULL;
    int e = read_entitlements(&xml), libs = -1;
    if (e == 0) {
        s->allow_jit = entitled(xml, "com.apple.security.cs.allow-jit");
        s->jit_write_allowlist = entitled(xml, "com.apple.security.cs.jit-write-allowlist");
        libs = entitled(xml, "com.apple.security.cs.disable-library-validation");
        free(xml);
    } else {
        snprintf(ent, sizeof ent, " (csops(CS_OPS_ENTITLEMENTS_BLOB): %s)", strerror(e));
    }
    uint32_t config = 0;
    size_t n = sizeof config;
    if (sysctlbyname("security.codesigning.config", &config, &n, NULL, 0) == 0 && n == sizeof config) {
        s->cs_config = config;
        s->csm = (config & WX_CS_CONFIG_CSM_ENABLED) != 0;
        s->map_jit_enabled = (config & WX_CS_CONFIG_MAP_JIT) != 0;
        snprintf(cfg, sizeof cfg, "security.codesigning.config %#x", config);
    } else {
        snprintf(cfg, sizeof cfg, "security.codesigning.config: %s", strerror(errno));
    }
    long long lock = sysctl_int("security.mac.lockdown_mode_state", -1);
    s->lockdown = lock < 0 ? -1 : lock != 0;
    long long translated = sysctl_int("sysctl.proc_translated", -1);
    s->translated = translated < 0 ? 0 : translated != 0; /* missing on Intel Macs: native */
    if (s->cs_flags < 0)
        snprintf(s->mode, sizeof s->mode, "unknown");
    else if (s->hardened_runtime == 1)
        snprintf(s->mode, sizeof s->mode, s->jit_write_allowlist == 1 ? "hardened-allowlist" : "hardened");
    else if (s->linker_signed == 1)
        snprintf(s->mode, sizeof s->mode, "linker-signed");
    else if (s->adhoc == 1)
        snprintf(s->mode, sizeof s->mode, "ad-hoc");
    else
        snprintf(s->mode, sizeof s->mode, (flags & WX_CS_VALID) ? "signed" : "unsigned");
    snprintf(s->text, sizeof s->text,
             "%s: hardened runtime %s, ad hoc %s; entitlements: allow-jit %s, jit-write-allowlist %s, "
             "disable-library-validation %s%s; %s: code-signing monitor %s, MAP_JIT %s; Lockdown Mode %s; Rosetta 2 %s",
             fl, tri(s->hardened_runtime, "yes", "no"), tri(s->adhoc, "yes", "no"), tri(s->allow_jit, "yes", "no"),
             tri(s->jit_write_allowlist, "yes", "no"), tri(libs, "yes", "no"), ent, cfg, tri(s->csm, "on", "off"),
             tri(s->map_jit_enabled, "available", "turned off"), tri(s->lockdown, "on", "off"),
             s->translated ? "yes" : "no");
}

void wx_signing_describe(wx_signing *s)
{
    pthread_once(&signing_once, signing_init);
    *s = g_signing;
}

int wx_code_signing_monitor(char *why, size_t len)
{
    wx_signing s;
    wx_signing_describe(&s);
    if (why && len) {
        if (s.cs_config < 0)
            snprintf(why, len, "sysctl security.codesigning.config is missing here (no code-signing monitor state "
                               "to read)");
        else
            snprintf(why, len, "security.codesigning.config = %#llx: CS_CONFIG_CSM_ENABLED (bit 31) %s", s.cs_config,
                     s.csm ? "set" : "clear");
    }
    return s.csm;
}

#ifdef WX_HAVE_JIT_TOGGLE
/* In a child: the JIT toggle under test; if libpthread refuses it, the child dies. */
static void toggle_once(void *arg)
{
    (void)arg;
    pthread_jit_write_protect_np(1);
}
#endif

static pthread_once_t allowlist_once = PTHREAD_ONCE_INIT;
static int allowlist_state = -1;
static char allowlist_why[WX_REASON_LEN];

/* libpthread (libpthread-539 src/pthread.c) enables the allow-list on macOS
 * for a process with the jit-write-allowlist entitlement on a CPU with the
 * per-thread toggle, and then crashes the process on any
 * pthread_jit_write_protect_np call. The entitlement decides; a child that
 * makes the call confirms it (its death is the evidence). */
static void allowlist_init(void)
{
#ifdef WX_HAVE_JIT_TOGGLE
    if (!pthread_jit_write_protect_supported_np()) {
        allowlist_state = 0;
        snprintf(allowlist_why, sizeof allowlist_why, "not enforced: no per-thread JIT write protection here "
                 "(pthread_jit_write_protect_supported_np() returned 0)");
        return;
    }
    wx_signing s;
    wx_signing_describe(&s);
    if (s.jit_write_allowlist == 0) {
        allowlist_state = 0;
        snprintf(allowlist_why, sizeof allowlist_why, "not enforced for this binary: it has no "
                 "com.apple.security.cs.jit-write-allowlist entitlement (signing: %s), so libpthread checks no "
                 "callback against the allow-list", s.mode);
        return;
    }
    wx_child_try t;
    int sig = wx_try_in_child(toggle_once, NULL, 0, 10000, &t);
    if (sig > 0) {
        allowlist_state = 1;
        snprintf(allowlist_why, sizeof allowlist_why, "enforced for this binary: %s; a child process that called "
                 "pthread_jit_write_protect_np(1) ended with %s (%s): libpthread refuses the toggle, only "
                 "allow-listed pthread_jit_write_with_callback_np callbacks may write",
                 s.jit_write_allowlist == 1 ? "entitlement com.apple.security.cs.jit-write-allowlist present"
                                            : "entitlements unreadable",
                 wx_signal_name(sig), t.why);
    } else if (sig == 0) {
        allowlist_state = 0;
        snprintf(allowlist_why, sizeof allowlist_why, "not enforced for this binary: a child process called "
                 "pthread_jit_write_protect_np(1) and lived (entitlement jit-write-allowlist %s)",
                 s.jit_write_allowlist == 1 ? "present, yet not enforced" : "unknown");
    } else {
        allowlist_state = s.jit_write_allowlist == 1 ? 1 : -1;
        snprintf(allowlist_why, sizeof allowlist_why, "%s (entitlement jit-write-allowlist %s; the check in a "
                 "child process gave no answer: %s)",
                 allowlist_state == 1 ? "enforced for this binary" : "unknown",
                 s.jit_write_allowlist == 1 ? "present" : "unknown", t.why);
    }
#else
    allowlist_state = 0;
    snprintf(allowlist_why, sizeof allowlist_why, "not applicable: built without pthread_jit_write_protect_np "
             "(macOS deployment target below 11.0)");
#endif
}

int wx_jit_allowlist_enforced(char *why, size_t len)
{
    pthread_once(&allowlist_once, allowlist_init);
    if (why && len)
        snprintf(why, len, "%s", allowlist_why);
    return allowlist_state;
}

#ifdef WX_HAVE_JIT_TOGGLE
/* In a child: a write to MAP_JIT memory while this thread is write-protected. */
typedef struct toggle_probe {
    volatile uint32_t *page;
    int allowlist;          /* 1: the toggle may not be called (the thread is write-protected outside callbacks) */
} toggle_probe;

static void write_protected_write(void *arg)
{
    toggle_probe *t = arg;
    if (t->allowlist != 1)
        pthread_jit_write_protect_np(1);
    *t->page = 0x5eed1234u;
}
#endif

static pthread_once_t toggle_once_ctl = PTHREAD_ONCE_INIT;
static int toggle_state = -1;
static char toggle_why[WX_REASON_LEN];

static void toggle_init(void)
{
#ifdef WX_HAVE_JIT_TOGGLE
    if (!pthread_jit_write_protect_supported_np()) {
        snprintf(toggle_why, sizeof toggle_why, "not applicable: pthread_jit_write_protect_supported_np() returned "
                 "0 (no per-thread JIT write protection on this CPU)");
        return;
    }
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANON | MAP_JIT, -1, 0);
    if (p == MAP_FAILED) {
        wx_why_errno(toggle_why, sizeof toggle_why, "not checked: mmap(MAP_JIT)", errno);
        return;
    }
    toggle_probe t = {.page = p, .allowlist = wx_jit_allowlist_enforced(NULL, 0)};
    wx_child_try c;
    int sig = wx_try_in_child(write_protected_write, &t, sizeof t, 10000, &c);
    munmap(p, (size_t)page);
    if (sig == 0) {
        toggle_state = 0;
        snprintf(toggle_why, sizeof toggle_why, "toggle not enforced on this machine (virtual machine?): a write to "
                 "MAP_JIT memory succeeded while the thread was write-protected%s, so MAP_JIT memory is writable "
                 "and executable at once here and no row measures Apple's W^X switch",
                 t.allowlist == 1 ? " (outside any write callback)" : " (pthread_jit_write_protect_np(1))");
    } else if (sig > 0) {
        toggle_state = 1;
        snprintf(toggle_why, sizeof toggle_why, "enforced: a write to MAP_JIT memory while the thread was "
                 "write-protected ended with %s", c.why);
    } else {
        snprintf(toggle_why, sizeof toggle_why, "not checked: %s", c.why);
    }
#else
    snprintf(toggle_why, sizeof toggle_why, "not applicable: built without pthread_jit_write_protect_np (macOS "
             "deployment target below 11.0)");
#endif
}

int wx_jit_toggle_enforced(char *why, size_t len)
{
    pthread_once(&toggle_once_ctl, toggle_init);
    if (why && len)
        snprintf(why, len, "%s", toggle_why);
    return toggle_state;
}

int64_t wx_thread_wait_ns(void)
{
    return -1; /* macOS counts no run-queue delay per thread: wall minus CPU time stands for it */
}

/* Where the allow-list is enforced, libpthread aborts the process on any
 * pthread_jit_write_protect_np call; threads are write-protected outside
 * write callbacks there anyway, so there is nothing to reset. */
void wx_jit_thread_reset(void)
{
#ifdef WX_HAVE_JIT_TOGGLE
    if (pthread_jit_write_protect_supported_np() && wx_jit_allowlist_enforced(NULL, 0) != 1)
        pthread_jit_write_protect_np(1);
#endif
}

/* ------------------------------------------------------------------------
 * Timer
 * --------------------------------------------------------------------- */

/* Frequency of the timebase behind mach_absolute_time / CLOCK_UPTIME_RAW,
 * from sysctl hw.tbfrequency (a 64-bit value; xnu bsd/kern/kern_mib.c):
 * 24 MHz on Apple silicon so far, 1 GHz on Intel (nanoseconds). Read from
 * the kernel rather than with `mrs cntfrq_el0`, which would end the process
 * with SIGILL where that register is not readable from user space. 0 when
 * the sysctl is missing. */
static long timer_frequency(void)
{
    long long hz = sysctl_int("hw.tbfrequency", 0);
    return hz > 0 ? (long)hz : 0;
}

/* Smallest non-zero step between two readings of the clock Google
 * Benchmark uses here (libc++ steady_clock: CLOCK_UPTIME_RAW). */
static double timer_step(void)
{
    uint64_t best = 0;
    uint64_t prev = clock_gettime_nsec_np(CLOCK_UPTIME_RAW);
    for (int i = 0; i < 200000; i++) {
        uint64_t now = clock_gettime_nsec_np(CLOCK_UPTIME_RAW);
        if (now > prev && (best == 0 || now - prev < best))
            best = now - prev;
        prev = now;
    }
    return (double)best;
}

/* ------------------------------------------------------------------------
 * Machine description
 * --------------------------------------------------------------------- */

void wx_machine_describe(wx_machine *m)
{
    memset(m, 0, sizeof *m);
    char ver[64] = "", build[64] = "";
    sysctl_str("kern.osproductversion", ver, sizeof ver);
    sysctl_str("kern.osversion", build, sizeof build);
    snprintf(m->os, sizeof m->os, "macOS %s", ver[0] ? ver : "(kern.osproductversion missing)");
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%.32s %.32s (build %.32s) %.120s %.16s", u.sysname, u.release,
                 build[0] ? build : "?", u.version, u.machine);
#if defined(__aarch64__)
    snprintf(m->arch, sizeof m->arch, "arm64");
#else
    snprintf(m->arch, sizeof m->arch, "x86_64");
#endif
    if (!sysctl_str("machdep.cpu.brand_string", m->chip, sizeof m->chip))
        snprintf(m->chip, sizeof m->chip, "unknown %s CPU", m->arch);
    m->page_size = sysconf(_SC_PAGESIZE);
    long long line = sysctl_int("hw.cachelinesize", 0);
    m->cache_line = line > 0 ? (long)line : 0;
    m->ncpu = (int)sysctl_int("hw.logicalcpu", sysconf(_SC_NPROCESSORS_ONLN));
    m->ncpu_allowed = wx_cpus_allowed();
    long long vmm = sysctl_int("kern.hv_vmm_present", -1);
    m->hypervisor = vmm < 0 ? 0 : vmm != 0;
    long long translated = sysctl_int("sysctl.proc_translated", -1);
    m->emulated = translated < 0 ? 0 : translated != 0; /* missing on Intel Macs: native */
    m->pku = m->ospke = m->poe = -1;
    m->ctr_dic = m->ctr_idc = -1; /* CTR_EL0 is not readable from user space on macOS */
    perflevel pl[2];
    int n = perflevels(pl);
    if (n >= 2) {
        m->perf_cores = pl[0].physical;
        m->eff_cores = pl[1].physical;
    }
    m->timer_hz = timer_frequency();
    m->timer_step_ns = timer_step();
    learn_cpu_classes();
    char slug_src[160];
    snprintf(slug_src, sizeof slug_src, "%s%s", m->chip, m->emulated == 1 ? " rosetta" : "");
    wx_slugify(slug_src, m->hypervisor, m->slug, sizeof m->slug);
}

static void json_bytes(FILE *f, const char *key, long long v, int comma)
{
    fprintf(f, "\"%s\": ", key);
    if (v >= 0)
        fprintf(f, "%lld", v);
    else
        fputs("null", f);
    if (comma)
        fputs(", ", f);
}

void wx_machine_write_meta(const wx_machine *m, void *file)
{
    FILE *f = file;
    wx_machine_write_common(m, f);
    char model[64] = "";
    sysctl_str("hw.model", model, sizeof model);
    fputs("  \"model\": ", f); wx_json_str(f, model); fputs(",\n", f);
    fputs("  \"cpu_features\": {\"hypervisor\": ", f); wx_json_tri(f, m->hypervisor);
    fputs(", \"rosetta\": ", f); wx_json_tri(f, m->emulated);
    fputs(", \"pku\": null, \"ospke\": null, \"poe\": null", f);
    fputs(", \"ctr_el0_dic\": null, \"ctr_el0_idc\": null, \"ctr_el0\": \"not readable from user space on macOS\"", f);
    fputs(", \"jit_write_protect_supported\": ", f);
#ifdef WX_HAVE_JIT_TOGGLE
    wx_json_tri(f, pthread_jit_write_protect_supported_np() ? 1 : 0);
#else
    fputs("null", f);
#endif
    fputs("},\n", f);
    perflevel pl[2];
    int n = perflevels(pl);
    fprintf(f, "  \"cores\": {\"logical_online\": %d, \"allowed\": %d, ", m->ncpu, m->ncpu_allowed);
    if (n >= 2)
        fprintf(f, "\"performance\": %d, \"efficiency\": %d, ", m->perf_cores, m->eff_cores);
    else
        fputs("\"performance\": null, \"efficiency\": null, ", f);
    fputs("\"perflevels\": [", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"level\": %d, \"name\": ", i ? ", " : "", i);
        wx_json_str(f, pl[i].name);
        fprintf(f, ", \"physical\": %d, \"logical\": %d, ", pl[i].physical, pl[i].logical);
        json_bytes(f, "l1i_bytes", pl[i].l1i, 1);
        json_bytes(f, "l1d_bytes", pl[i].l1d, 1);
        json_bytes(f, "l2_bytes", pl[i].l2, 1);
        fprintf(f, "\"cpus_per_l2\": %d}", pl[i].cpus_per_l2);
    }
    fputs("]},\n", f);
    fputs("  \"cpu_class_map\": ", f);
    learn_cpu_classes();
    wx_json_str(f, g_map.text);
    fputs(",\n", f);
    fprintf(f, "  \"page_size\": %ld,\n", m->page_size);
    fprintf(f, "  \"hw_pagesize\": %lld,\n", sysctl_int("hw.pagesize", -1));
    if (m->cache_line > 0)
        fprintf(f, "  \"cache_line_size\": %ld,\n", m->cache_line);
    else
        fputs("  \"cache_line_size\": null,\n", f);
    fputs("  \"timer\": {\"name\": \"clock_gettime_nsec_np(CLOCK_UPTIME_RAW) (std::chrono::steady_clock in Google "
          "Benchmark)\", ",
          f);
    if (m->timer_hz > 0)
        fprintf(f, "\"counter_frequency_hz\": %ld, \"tick_ns\": %.3f, \"frequency_source\": \"sysctl hw.tbfrequency\", ",
                m->timer_hz, 1e9 / (double)m->timer_hz);
    else
        fputs("\"counter_frequency_hz\": null, \"tick_ns\": null, \"frequency_source\": \"sysctl hw.tbfrequency "
              "missing\", ", f);
    fprintf(f, "\"resolution_ns\": %.1f, \"resolution_source\": \"smallest step seen between two readings\"},\n",
            m->timer_step_ns);
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) == 3)
        fprintf(f, "  \"load_average\": [%.2f, %.2f, %.2f],\n", load[0], load[1], load[2]);
    else
        fputs("  \"load_average\": null,\n", f);
    char power[128];
    long long lowpower = sysctl_int("kern.lowpowermode", -1);
    if (lowpower >= 0)
        snprintf(power, sizeof power, "not controllable on macOS; Low Power Mode %s", lowpower ? "ON" : "off");
    else
        snprintf(power, sizeof power, "not controllable on macOS; Low Power Mode state not exposed");
    fputs("  \"frequency_scaling\": ", f); wx_json_str(f, power); fputs(",\n", f);
    char why[WX_REASON_LEN] = "";
    int cyc = wx_cycles_available(why, sizeof why);
    fputs("  \"cycles\": {\"available\": ", f); wx_json_tri(f, cyc);
    fputs(", \"source\": \"kperf (kpc fixed cycle counter of the measuring thread)\", \"reason\": ", f);
    wx_json_str(f, cyc ? "" : why); fputs("},\n", f);
    fputs("  \"tlb_shootdowns\": {\"available\": false, \"source\": ", f);
    wx_json_str(f, "not counted: macOS exposes no TLB shootdown count (Apple silicon broadcasts TLB invalidation "
                   "in hardware)");
    fputs("},\n", f);
}

/* ------------------------------------------------------------------------
 * Cycle counting through the private kperf framework (root only)
 * --------------------------------------------------------------------- */

#define KPC_CLASS_FIXED_MASK 1u
#define KPC_MAX_COUNTERS 32
#if defined(__aarch64__)
#define KPC_CYCLES_INDEX 0  /* Apple PMU: fixed counter 0 = cycles, 1 = instructions */
#else
#define KPC_CYCLES_INDEX 1  /* Intel: fixed 0 = instructions, 1 = core cycles, 2 = reference cycles */
#endif

static struct {
    int (*force_all_ctrs_set)(int);
    int (*force_all_ctrs_get)(int *);
    int (*set_counting)(uint32_t);
    int (*set_thread_counting)(uint32_t);
    uint32_t (*get_counter_count)(uint32_t);
    int (*get_thread_counters)(uint32_t, uint32_t, uint64_t *);
} kpc;

static pthread_once_t kpc_once = PTHREAD_ONCE_INIT;
static int kpc_ok;                      /* 1 when the counters work */
static char kpc_why[WX_REASON_LEN];     /* why not */
static pthread_mutex_t kpc_lock = PTHREAD_MUTEX_INITIALIZER;
static int kpc_users;                   /* threads counting now */

static int kpc_acquire(char *why, size_t len)
{
    if (kpc.force_all_ctrs_set(1) != 0) {
        int e = errno;
        snprintf(why, len, "kpc_force_all_ctrs_set(1): %s (errno %d)%s", strerror(e), e,
                 e == EBUSY ? ": another profiler owns the counters" : "");
        return -1;
    }
    if (kpc.set_counting(KPC_CLASS_FIXED_MASK) != 0 || kpc.set_thread_counting(KPC_CLASS_FIXED_MASK) != 0) {
        int e = errno;
        snprintf(why, len, "kpc_set_counting/kpc_set_thread_counting(fixed): %s (errno %d)", strerror(e), e);
        kpc.force_all_ctrs_set(0);
        return -1;
    }
    return 0;
}

static void kpc_release(void)
{
    kpc.set_thread_counting(0);
    kpc.set_counting(0);
    kpc.force_all_ctrs_set(0);
}

static int kpc_read(uint64_t *cycles)
{
    uint64_t buf[KPC_MAX_COUNTERS];
    memset(buf, 0, sizeof buf);
    if (kpc.get_thread_counters(0, KPC_MAX_COUNTERS, buf) != 0)
        return -1;
    *cycles = buf[KPC_CYCLES_INDEX];
    return 0;
}

static void kpc_init(void)
{
    if (sysctl_int("sysctl.proc_translated", 0) == 1) {
        /* This x86_64 build would read fixed counter 1 (Intel's core cycles), which on the Apple silicon
         * underneath counts instructions (fixed 0 cycles, 1 instructions). */
        snprintf(kpc_why, sizeof kpc_why, "running under Rosetta 2 (sysctl.proc_translated = 1): the kperf fixed "
                                          "counter this x86_64 build reads as cycles counts instructions on the "
                                          "Apple silicon underneath; cycles_per_op left empty");
        return;
    }
    if (geteuid() != 0) {
        snprintf(kpc_why, sizeof kpc_why, "cycle counters need root on macOS (kperf); run with sudo to fill "
                                          "cycles_per_op");
        return;
    }
    const char *path = "/System/Library/PrivateFrameworks/kperf.framework/kperf";
    void *h = dlopen(path, RTLD_LAZY);
    if (!h) {
        const char *e = dlerror();
        snprintf(kpc_why, sizeof kpc_why, "dlopen(%s): %s", path, e ? e : "failed");
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"kpc_force_all_ctrs_set", (void **)&kpc.force_all_ctrs_set},
        {"kpc_force_all_ctrs_get", (void **)&kpc.force_all_ctrs_get},
        {"kpc_set_counting", (void **)&kpc.set_counting},
        {"kpc_set_thread_counting", (void **)&kpc.set_thread_counting},
        {"kpc_get_counter_count", (void **)&kpc.get_counter_count},
        {"kpc_get_thread_counters", (void **)&kpc.get_thread_counters},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(h, syms[i].name);
        if (!p) {
            snprintf(kpc_why, sizeof kpc_why, "kperf has no symbol %s", syms[i].name);
            return;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    int force = 0;
    if (kpc.force_all_ctrs_get(&force) != 0) {
        int e = errno;
        snprintf(kpc_why, sizeof kpc_why, "kpc_force_all_ctrs_get: %s (errno %d)", strerror(e), e);
        return;
    }
    uint32_t nfixed = kpc.get_counter_count(KPC_CLASS_FIXED_MASK);
    if (nfixed <= KPC_CYCLES_INDEX) {
        snprintf(kpc_why, sizeof kpc_why, "kpc_get_counter_count(fixed) = %u: no fixed cycle counter", nfixed);
        return;
    }
    /* Check that the counter counts cycles: a 2 ms spin must give a
     * plausible clock rate. */
    if (kpc_acquire(kpc_why, sizeof kpc_why) != 0)
        return;
    uint64_t c0 = 0, c1 = 0, t0 = wx_now_ns(), t1;
    int bad = kpc_read(&c0);
    while ((t1 = wx_now_ns()) - t0 < 2000000)
        ;
    bad |= kpc_read(&c1);
    kpc_release();
    if (bad) {
        int e = errno;
        snprintf(kpc_why, sizeof kpc_why, "kpc_get_thread_counters: %s (errno %d)", strerror(e), e);
        return;
    }
    double ghz = (double)(c1 - c0) / (double)(t1 - t0);
    if (!(ghz > 0.2 && ghz < 8.0)) {
        snprintf(kpc_why, sizeof kpc_why,
                 "kperf fixed counter %d gave %.3g counts per ns over a 2 ms spin: not a cycle count, not used",
                 KPC_CYCLES_INDEX, ghz);
        return;
    }
    kpc_ok = 1;
}

int wx_cycles_available(char *why, size_t len)
{
    pthread_once(&kpc_once, kpc_init);
    if (!kpc_ok)
        snprintf(why, len, "%s", kpc_why);
    return kpc_ok;
}

void wx_counters_begin(wx_counters *c)
{
    c->tlb_ok = 0;
    c->tlb_start = 0;
    c->cycles_fd = -1;
    c->cycles_start = 0;
    pthread_once(&kpc_once, kpc_init);
    if (!kpc_ok)
        return;
    pthread_mutex_lock(&kpc_lock);
    int ok = kpc_users > 0 || kpc_acquire(kpc_why, sizeof kpc_why) == 0;
    if (ok)
        kpc_users++;
    pthread_mutex_unlock(&kpc_lock);
    if (!ok)
        return;
    if (kpc_read(&c->cycles_start) == 0) {
        c->cycles_fd = 1; /* "counting" (no descriptor on macOS) */
    } else {
        pthread_mutex_lock(&kpc_lock);
        if (--kpc_users == 0)
            kpc_release();
        pthread_mutex_unlock(&kpc_lock);
    }
}

void wx_counters_end(wx_counters *c, double *tlb, double *cycles)
{
    *tlb = -1;
    *cycles = -1;
    if (c->cycles_fd < 0)
        return;
    uint64_t end = 0;
    if (kpc_read(&end) == 0 && end >= c->cycles_start)
        *cycles = (double)(end - c->cycles_start);
    c->cycles_fd = -1;
    pthread_mutex_lock(&kpc_lock);
    if (--kpc_users == 0)
        kpc_release();
    pthread_mutex_unlock(&kpc_lock);
}

uint64_t wx_tlb_shootdowns(int *ok)
{
    *ok = 0;
    return 0;
}
