/* harness.h - inside the application: the cases a child's scenario
 * registered (the registry), and running one case's kernel on one Google
 * Benchmark thread. Scenarios see scenario.h only. */
#ifndef WX_HARNESS_H
#define WX_HARNESS_H

#include "../gbench_shim.h"
#include "scenario.h"

/* One registered case. */
typedef struct wx_entry {
    wx_case c;                /* its parameters (threads, batch >= 1; min_time resolved) */
    const wx_kernel *k;       /* its kernel; NULL for native and unsupported entries */
    int native;               /* Google Benchmark's own empty loop (harness/native) */
    char *unsupported;        /* reason, or NULL when it is measured */
    const char *core_class;   /* "P", "E" (Apple silicon) or "any": where it is measured */
    wx_status status;         /* how the body ended it: WX_OK, WX_UNSUPPORTED, WX_FAILED or WX_INTERFERED */
    uint64_t sized_step;      /* WX_K_SIZED_BATCH: ops per ops() call found by its first pass (0: not yet) */
    uint64_t cpus_seen;       /* CPUs (< 64) its measuring thread was seen on (P/E cases only) */
    int cpu_unknown;          /* seen on a CPU wx_current_cpu could not name (or >= 64) */
    void *shared;             /* the kernel's shared state while a body runs */
    int shared_rc;            /* what shared_setup returned */
    char shared_why[WX_REASON_LEN]; /* and why */
} wx_entry;

/* Start an empty registry for a child measuring run's strategy. */
void wx_registry_reset(const wx_run *run);
/* The run the registry belongs to. */
const wx_run *wx_registry_run(void);
/* Number of registered entries, and entry i (pointers stay valid until the
 * next wx_registry_add_copy or reset). */
size_t wx_registry_count(void);
wx_entry *wx_registry_at(size_t i);
/* Append a copy of entry e (the P/E expansion); returns it. */
wx_entry *wx_registry_add_copy(const wx_entry *e);

/* Note which CPU the calling thread is on, for a P/E case. */
void wx_entry_note_cpu(wx_entry *e);

/* Run e's kernel as one Google Benchmark thread of repetition rep: the whole
 * sequence of scenario.h. On failure the row's status is left in e->status
 * and the message given to Google Benchmark. */
void wx_case_run(wxgb_state *st, wx_entry *e, int repetition);

#endif /* WX_HARNESS_H */
