/* csv.h - results.csv rows and the side CSV files beside it (audit.csv,
 * jit_cross_thread.csv), RFC 4180 quoting, whole-row writes. */
#ifndef WX_CSV_H
#define WX_CSV_H

#include "scenario.h"

#include <stdio.h>

/* One results.csv row. */
typedef struct wx_row {
    const char *machine, *chip, *os, *arch;
    long page_size;
    const char *scenario, *strategy;
    const wx_case *c;
    const char *core_class;
    int repetition;
    uint64_t iterations;
    double ns_per_op;      /* < 0: empty */
    double cycles_per_op;  /* < 0: empty */
    double tlb_per_op;     /* < 0: empty */
    wx_status status;
    const char *reason;
} wx_row;

/* The exact results.csv header line, newline included. */
extern const char wx_csv_header[];
/* Format one row as an RFC 4180 line (newline included) into a malloc'd
 * string; returns it (caller frees) or NULL when out of memory. */
char *wx_csv_format(const wx_row *r);
/* Append s to f as one CSV field, quoted when it holds , " CR or LF. */
void wx_csv_field(FILE *f, const char *s);
/* Format n fields as one RFC 4180 line (newline included) in a malloc'd
 * string (caller frees); NULL when out of memory. */
char *wx_csv_line(const char *const *fields, size_t n);

/* Make a directory and its parents (a run's output folder): 0, or -1 with
 * errno set. */
int wx_mkdir_p(const char *path);
/* Write all len bytes of buf to fd, retrying on EINTR: 0, or an errno. */
int wx_write_all(int fd, const void *buf, size_t len);
/* Append a whole line to fd (opened O_APPEND; one writer at a time): on a
 * failed or short write the file is cut back to where it ended, so it
 * always ends at a complete line. 0, or an errno. */
int wx_append_line(int fd, const char *line);

/* Format r and append it to fd as one whole line (wx_append_line). 0, or
 * an errno. */
int wx_csv_append_row(int fd, const wx_row *r);

/* Append one line (newline included) to dir/name, a CSV file beside
 * results.csv shared by every child of the run: the file comes into being
 * with its header already in it (written aside, then linked into place), and
 * the line goes out in one write() on an O_APPEND descriptor, so children
 * never interleave rows or repeat the header. Returns 0, or an errno with
 * why[] filled. */
int wx_side_csv_append(const char *dir, const char *name, const char *header, const char *line, char *why,
                       size_t len);

#endif /* WX_CSV_H */
