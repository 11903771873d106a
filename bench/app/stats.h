/* stats.h - the statistics wxbench computes over process-level values (one
 * value per repetition, each repetition its own process): the median and a
 * distribution-free 95% interval for it from order statistics, and the
 * coefficient of variation. scripts/wxdata.py computes the same (the same
 * rule, tested against each other). */
#ifndef WX_STATS_H
#define WX_STATS_H

#include <stddef.h>

/* What a set of values says about its median. */
typedef struct wx_median_ci {
    size_t n;          /* values */
    double median;     /* the median (mean of the two middle values for an even n) */
    double low, high;  /* the interval: x_(j) .. x_(n+1-j), sorted values, 1-based */
    double coverage;   /* its confidence: 1 - 2 P(B <= j-1), B ~ Binomial(n, 1/2) */
    int exact95;       /* 1 when coverage >= 0.95 (n >= 6); else low..high = min..max */
    double cv;         /* sample standard deviation / mean (0 for n < 2) */
} wx_median_ci;

/* Sort x (n values, modified in place) and fill out. n = 0 leaves out
 * zeroed. */
void wx_median_ci_of(double *x, size_t n, wx_median_ci *out);

/* The largest j >= 1 with 2 P(B <= j-1) <= alpha for B ~ Binomial(n, 1/2),
 * or 0 when none (n too small): x_(j) .. x_(n+1-j) then holds the median
 * with probability at least 1 - alpha. */
size_t wx_median_ci_rank(size_t n, double alpha);

#endif /* WX_STATS_H */
