/* csv.c - results.csv rows, RFC 4180 quoting. */
#define _GNU_SOURCE 1
#include "runner.h"

#include <errno.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char wx_csv_header[] =
    "machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,size_bytes,batch,"
    "core_class,repetition,iterations,ns_per_op,cycles_per_op,tlb_shootdowns_per_op,status,reason\n";

int wx_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void wx_csv_field(FILE *f, const char *s)
{
    if (!s)
        s = "";
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void number(FILE *f, double v)
{
    if (v >= 0)
        fprintf(f, "%.6g", v);
}

char *wx_csv_format(const wx_row *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    const char *text[] = {r->machine, r->chip, r->os, r->arch};
    for (int i = 0; i < 4; i++) {
        wx_csv_field(f, text[i]);
        fputc(',', f);
    }
    fprintf(f, "%ld,", r->page_size);
    wx_csv_field(f, r->scenario);
    fputc(',', f);
    wx_csv_field(f, r->strategy);
    fputc(',', f);
    wx_csv_field(f, r->c->variant);
    fprintf(f, ",%d,%d,%" PRIu64 ",%d,", r->c->threads, r->c->victims, r->c->size_bytes, r->c->batch);
    wx_csv_field(f, r->core_class);
    fprintf(f, ",%d,%" PRIu64 ",", r->repetition, r->iterations);
    number(f, r->ns_per_op);
    fputc(',', f);
    number(f, r->cycles_per_op);
    fputc(',', f);
    number(f, r->tlb_per_op);
    fputc(',', f);
    wx_csv_field(f, r->status);
    fputc(',', f);
    wx_csv_field(f, r->reason);
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
