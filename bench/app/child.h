/* child.h - one child process of a run: it measures one repetition of one
 * (scenario, strategy) pair (every case of it once), appends each row to
 * results.csv itself as soon as it is measured, and tells the parent over a
 * pipe which case it is measuring and each row it wrote (fixed-size
 * messages, each one write()). */
#ifndef WX_CHILD_H
#define WX_CHILD_H

#include "audit.h"
#include "options.h"

/* What a child is told to measure, and where its rows go. */
typedef struct wx_child_ctx {
    const wx_options *o;      /* the command line */
    const wx_machine *m;      /* the machine (row columns) */
    const char *dir;          /* the run's directory */
    int csv_fd;               /* results.csv, O_APPEND */
    const wx_scenario *sc;    /* the scenario */
    const wx_strategy *st;    /* the strategy (&wx_no_strategy for strategy-free scenarios) */
    const wx_audit *audit;    /* the strategy's audit (scenarios with needs_audit), or NULL */
    int repetition;           /* which repetition this process is (1..); rows of cases unsupported
                                 before anything is measured are written by repetition 1 only */
    unsigned layout_pages;    /* pages of the address-space spacer mapped before anything else, so
                                 that code regions land elsewhere in each process */
    int attempt;              /* 1.. WX_MAX_ATTEMPTS: which try at this repetition this process is */
    const struct wx_case_key *only; /* a retry: measure only these cases (NULL: every case) */
    size_t nonly;
} wx_child_ctx;

/* A repetition whose measurement other work spoiled is measured again in a
 * fresh process, later in the run's order, at most this many times in all;
 * then its row is `interfered`. */
#define WX_MAX_ATTEMPTS 3

/* The columns that name one case of a (scenario, strategy) pair. */
typedef struct wx_case_key {
    char variant[64];
    char core_class[8];
    int threads, victims, batch;
    uint64_t size_bytes;
} wx_case_key;

/* Kinds of message. */
enum {
    WX_MSG_CASE = 1,  /* the case below is being measured now */
    WX_MSG_ROW = 2,   /* a row was appended to results.csv: status, values */
    WX_MSG_IO = 3,    /* a row could not be written: why (the child stops) */
    WX_MSG_RETRY = 4, /* the case below was spoiled by other work (why): measure it again, no row written */
    WX_MSG_REF = 5,   /* the reference loop took ref_ns (ref_end: at the end of the child, else at its start) */
};

/* One message from the child (each sent in one write, smaller than PIPE_BUF). */
typedef struct wx_msg {
    int kind;                 /* WX_MSG_* */
    wx_status status;         /* the row's status */
    int repetition;           /* the row's repetition */
    int threads, victims, batch;
    uint64_t size_bytes;
    uint64_t iterations;
    double ns_per_op;         /* < 0: none */
    double cpu_ns_per_op;     /* < 0: none */
    double cycles_per_op;     /* < 0: none */
    double tlb_per_op;        /* < 0: none */
    char variant[64];
    char core_class[8];
    double ref_ns;            /* WX_MSG_REF: ns the reference loop took */
    int ref_end;              /* WX_MSG_REF: 1 at the child's end, 0 at its start */
    char why[WX_REASON_LEN];  /* WX_MSG_IO: what failed; WX_MSG_RETRY: what spoiled it */
} wx_msg;

/* Exit status of a child that stopped because results.csv could not be
 * written. */
#define WX_CHILD_EXIT_IO 3

/* The child's whole life (a wx_proc_fn: arg is a wx_child_ctx, fd the
 * pipe to the parent); returns its exit status. */
int wx_child_main(void *arg, int fd);

#endif /* WX_CHILD_H */
