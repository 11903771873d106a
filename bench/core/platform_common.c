/* platform_common.c - machine-description helpers shared by every OS. */
#include "wx.h"
#include "platform_util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void wx_slugify(const char *chip, int vm, char *out, size_t len)
{
    /* Words that say nothing about which chip it is. */
    static const char *const noise[] = {"(r)", "(tm)", "cpu", "processor", "core(tm)", NULL};
    char low[256];
    size_t n = 0;
    for (const char *p = chip; *p && n + 1 < sizeof low; p++)
        low[n++] = (char)tolower((unsigned char)*p);
    low[n] = 0;
    char *at = strstr(low, " @ ");
    if (at)
        *at = 0; /* drop the clock speed */
    for (int i = 0; noise[i]; i++) {
        char *q;
        size_t k = strlen(noise[i]);
        while ((q = strstr(low, noise[i])) != NULL) {
            /* only whole words, or the (r)/(tm) marks */
            int word = noise[i][0] == '(' ||
                       ((q == low || !isalnum((unsigned char)q[-1])) && !isalnum((unsigned char)q[k]));
            if (!word)
                break;
            memmove(q, q + k, strlen(q + k) + 1);
        }
    }
    size_t o = 0;
    int dash = 1; /* suppress a leading dash */
    for (char *p = low; *p && o + 1 < len; p++) {
        if (isalnum((unsigned char)*p)) {
            out[o++] = *p;
            dash = 0;
        } else if (!dash) {
            out[o++] = '-';
            dash = 1;
        }
    }
    while (o > 0 && out[o - 1] == '-')
        o--;
    if (o == 0 && len > 8) {
        memcpy(out, "unknown", 7);
        o = 7;
    }
    out[o] = 0;
    if (vm && o + 3 < len)
        strcat(out, "-vm");
}

void wx_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void wx_json_tri(FILE *f, int v)
{
    fputs(v < 0 ? "null" : v ? "true" : "false", f);
}

uint64_t wx_now_ns(void)
{
#if defined(__APPLE__)
    /* The clock Google Benchmark's steady_clock uses there (mach absolute
     * time, 24 MHz on Apple silicon); CLOCK_MONOTONIC is slewed and coarser. */
    return clock_gettime_nsec_np(CLOCK_UPTIME_RAW);
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

void wx_machine_write_common(const wx_machine *m, void *file)
{
    FILE *f = file;
    fputs("  \"os\": ", f); wx_json_str(f, m->os); fputs(",\n", f);
    fputs("  \"kernel\": ", f); wx_json_str(f, m->kernel); fputs(",\n", f);
    fputs("  \"machine\": ", f); wx_json_str(f, m->slug); fputs(",\n", f);
    fputs("  \"chip\": ", f); wx_json_str(f, m->chip); fputs(",\n", f);
    fputs("  \"arch\": ", f); wx_json_str(f, m->arch); fputs(",\n", f);
}
