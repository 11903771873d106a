/* probe.h - `wxbench --probe`: the audit of every strategy (audit.h),
 * each in its own child, printed. */
#ifndef WX_PROBE_H
#define WX_PROBE_H

#include <stdio.h>

/* Print every strategy's facts and audit to out; returns the exit code
 * (1 when a strategy's child crashed or hung). */
int wx_probe_all(FILE *out);

#endif /* WX_PROBE_H */
