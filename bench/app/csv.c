/* csv.c - results.csv rows and side CSV files: RFC 4180 quoting, whole
 * lines, one write each. */
#define _GNU_SOURCE 1
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char wx_csv_header[] =
    "machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,size_bytes,batch,"
    "core_class,repetition,iterations,ns_per_op,cycles_per_op,tlb_shootdowns_per_op,status,reason\n";

const char *wx_status_name(wx_status s)
{
    static const char *const names[WX_NSTATUS] = {"ok", "unsupported", "failed", "crashed", "timeout",
                                                   "interfered"};
    return (unsigned)s < WX_NSTATUS ? names[s] : "failed";
}

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

#ifdef WX_TESTING
/* Test builds: WXBENCH_TEST_WRITE_FAIL=N makes the (N+1)-th line this
 * process appends fail half-way with ENOSPC, as a full disk would. */
static int injected_write_failure(int fd, const char *line, size_t len)
{
    static long left = -2;
    if (left == -2) {
        const char *v = getenv("WXBENCH_TEST_WRITE_FAIL");
        left = v ? strtol(v, NULL, 10) : -1;
    }
    if (left < 0 || left-- > 0)
        return 0;
    if (wx_write_all(fd, line, len / 2) != 0)
        return EIO;
    return ENOSPC;
}
#endif

int wx_append_line(int fd, const char *line)
{
    size_t len = strlen(line);
    struct stat st;
    off_t end = fstat(fd, &st) == 0 ? st.st_size : -1;
    int e = 0;
#ifdef WX_TESTING
    e = injected_write_failure(fd, line, len);
#endif
    if (e == 0)
        e = wx_write_all(fd, line, len);
    if (e != 0 && end >= 0) {
        /* Never leave part of a line behind: cut the file back. */
        while (ftruncate(fd, end) != 0 && errno == EINTR)
            ;
    }
    return e;
}

int wx_csv_append_row(int fd, const wx_row *r)
{
    char *line = wx_csv_format(r);
    if (!line)
        return ENOMEM;
    int e = wx_append_line(fd, line);
    free(line);
    return e;
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
    wx_csv_field(f, wx_status_name(r->status));
    fputc(',', f);
    wx_csv_field(f, r->reason);
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *wx_csv_line(const char *const *fields, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        wx_csv_field(f, fields[i]);
    }
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Make dir/name exist with header as its first line. Another child doing
 * the same at the same time is harmless: link() lets exactly one in. */
static int create_with_header(const char *path, const char *dir, const char *name, const char *header, char *why,
                              size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return wx_why_errno(why, len, tmp, errno);
    int e = wx_write_all(fd, header, strlen(header));
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return wx_why_errno(why, len, tmp, e);
    }
    if (link(tmp, path) != 0 && errno != EEXIST) {
        /* A file system without hard links: create in place instead. */
        e = errno;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            e = wx_write_all(fd, header, strlen(header));
            if (close(fd) != 0 && e == 0)
                e = errno;
        } else if (errno == EEXIST) {
            e = 0;
        }
        if (e != 0) {
            unlink(tmp);
            return wx_why_errno(why, len, path, e);
        }
    }
    unlink(tmp);
    return 0;
}

int wx_side_csv_append(const char *dir, const char *name, const char *header, const char *line, char *why,
                       size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir && dir[0] ? dir : ".", name);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        int e = create_with_header(path, dir && dir[0] ? dir : ".", name, header, why, len);
        if (e != 0)
            return e;
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0)
        return wx_why_errno(why, len, path, errno);
    size_t n = strlen(line);
    ssize_t w;
    do
        w = write(fd, line, n); /* one write: rows of several children never interleave */
    while (w < 0 && errno == EINTR);
    int e = w < 0 ? errno : (size_t)w != n ? EIO : 0;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0)
        return wx_why_errno(why, len, path, e);
    return 0;
}

int wx_mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    return 0;
}
