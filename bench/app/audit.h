/* audit.h - what each strategy does, found by trying it: the facts the
 * probe prints (maps? writes when writable? runs when executable? faults?)
 * and the six W^X properties of audit.csv, each decided by an access with
 * faults caught. One engine: `wxbench --probe` prints it, the wx_audit
 * scenario reports it. */
#ifndef WX_AUDIT_H
#define WX_AUDIT_H

#include "../core/wx.h"
#include "../core/proc.h"

/* The W^X properties the audit answers, in audit.csv order. A "yes" is
 * always a weakness: code can be written while it, or another view of it,
 * can run, or by a thread that did not ask for it. */
enum {
    WX_AUDIT_WRITABLE_AT_REST,  /* a thread can write the code while no thread asked for write access */
    WX_AUDIT_PERMANENT_ALIAS,   /* a second view of the code is writable at all times */
    WX_AUDIT_WRITER_EXECUTES,   /* the writing thread can run the code while it holds write access */
    WX_AUDIT_OTHER_WRITES,      /* another thread can write while the writer holds write access */
    WX_AUDIT_OTHER_EXECUTES,    /* another thread can run the code while the writer holds write access */
    WX_AUDIT_INHERITED_WRITE,   /* a thread started during a write window can still write after it closed */
    WX_AUDIT_NPROPS,
};

/* How many regions the audit maps at once (e.g. MAP_JIT regions on macOS). */
#define WX_AUDIT_REGIONS 64
/* Length of each property's evidence. */
#define WX_AUDIT_EVIDENCE_LEN 512
/* How long an access made in a child process may take (ms). */
#define WX_AUDIT_CHILD_MS 10000

/* Everything the audit found for one strategy. Signals: 0 = the access
 * completed, > 0 = the signal that stopped it, -1 = not tried. */
typedef struct wx_audit {
    int supported;               /* the strategy says it can run here */
    char why[WX_REASON_LEN];     /* why not, or notes from the steps ("; "-separated) */
    int maps;                    /* map() succeeded */
    int write_sig;               /* a write while writable */
    int run_sig;                 /* a call while executable */
    int run_value_ok;            /* the call returned what was written (-1 not tried) */
    int write_exec_sig;          /* a write through the exec view while executable */
    int exec_writable_sig;       /* a call while writable (made in a child process) */
    int exec_writable_killed;    /* 1: that child process was killed by exec_writable_sig (nothing caught it) */
    char exec_writable_why[WX_AUDIT_EVIDENCE_LEN]; /* how that call ended, or why it was not tried */
    int other_write_sig;         /* another thread's write while this one may write */
    int alias;                   /* a separate writable view exists */
    char platform_note[WX_AUDIT_EVIDENCE_LEN]; /* what the system enforces for this strategy here, where it
                                                  matters (the JIT toggle not enforced; the JIT write allow-list
                                                  for a write_code strategy); "" otherwise */
    int regions;                 /* regions mapped at once, of WX_AUDIT_REGIONS tried (-1 not tried) */
    char regions_why[WX_REASON_LEN]; /* why the next one could not be mapped ("" if all were) */
    int result[WX_AUDIT_NPROPS];                   /* the properties: 1 yes, 0 no, -1 n/a */
    char evidence[WX_AUDIT_NPROPS][WX_AUDIT_EVIDENCE_LEN]; /* the access or signal that decided each, or why n/a */
    int complete;                /* 1 when every check ran (an unsupported strategy counts as complete) */
    char failure[WX_REASON_LEN]; /* why the audit could not be finished or recorded ("" when it was) */
} wx_audit;

/* Property names as audit.csv spells them, indexed by WX_AUDIT_*. */
extern const char *const wx_audit_property_names[WX_AUDIT_NPROPS];
/* "yes", "no" or "n/a" for a result. */
const char *wx_audit_result_name(int result);
/* The exact audit.csv header line, newline included. */
extern const char wx_audit_csv_header[];

/* Audit strategy s in this process (faults are provoked on purpose: call it
 * in a child). An unsupported strategy gets n/a answers saying why. */
void wx_audit_strategy(const wx_strategy *s, wx_audit *a);
/* Audit s in a forked child with a time limit; a child that dies or hangs
 * gives n/a answers naming the signal or the limit, and complete = 0. end
 * (NULL allowed) says how the child ended. */
void wx_audit_isolated(const wx_strategy *s, wx_audit *a, int timeout_s, wx_proc_end *end);
/* Set every property of a to n/a with this evidence. */
void wx_audit_all_na(wx_audit *a, const char *evidence);
/* Append a's rows for strategy to dir/audit.csv, one write per row. 0, or
 * an errno with why[] filled. */
int wx_audit_write_csv(const char *dir, const char *strategy, const wx_audit *a, char *why, size_t len);

#endif /* WX_AUDIT_H */
