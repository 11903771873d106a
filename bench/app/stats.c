/* stats.c - median, its order-statistic interval, coefficient of variation. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* P(B <= k) for B ~ Binomial(n, 1/2), summed in logs (n up to thousands). */
static double binom_half_cdf(size_t n, size_t k)
{
    double sum = 0, lc = 0; /* log C(n, 0) */
    const double lhalf = (double)n * log(0.5);
    for (size_t i = 0; i <= k && i <= n; i++) {
        if (i > 0)
            lc += log((double)(n - i + 1)) - log((double)i);
        sum += exp(lc + lhalf);
    }
    return sum;
}

size_t wx_median_ci_rank(size_t n, double alpha)
{
    size_t j = 0;
    while (j + 1 <= (n + 1) / 2 && 2 * binom_half_cdf(n, j) <= alpha)
        j++;
    return j;
}

void wx_median_ci_of(double *x, size_t n, wx_median_ci *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return;
    qsort(x, n, sizeof *x, cmp_double);
    out->n = n;
    out->median = n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
    size_t j = wx_median_ci_rank(n, 0.05);
    out->exact95 = j >= 1;
    if (j == 0)
        j = 1; /* min .. max, with its (lower) coverage */
    out->low = x[j - 1];
    out->high = x[n - j];
    out->coverage = 1 - 2 * binom_half_cdf(n, j - 1);
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        mean += x[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    out->cv = n > 1 && mean > 0 ? sqrt(ss / (double)(n - 1)) / mean : 0;
}
