/* platform_util.h - helpers the platform files and meta.json share (not for scenarios). */
#ifndef WX_PLATFORM_UTIL_H
#define WX_PLATFORM_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Turn a CPU name into a machine slug ("AMD EPYC 7B13" -> "amd-epyc-7b13"),
 * with "-vm" appended when vm is set. */
void wx_slugify(const char *chip, int vm, char *out, size_t len);
/* Write s as a JSON string literal. */
void wx_json_str(FILE *f, const char *s);
/* Write 1/0/-1 as true/false/null. */
void wx_json_tri(FILE *f, int v);

#endif
