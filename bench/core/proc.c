/* proc.c - a function in a forked child, with a limit and a pipe. */
#define _GNU_SOURCE 1
#include "proc.h"
#include "wx.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

int wx_proc_start(wx_proc *p, wx_proc_fn fn, void *arg, int timeout_ms)
{
    int fds[2];
    p->pid = -1;
    p->fd = -1;
    p->deadline = timeout_ms > 0 ? wx_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    if (pipe(fds) != 0)
        return errno;
    fflush(NULL); /* nothing buffered may be written twice */
#if defined(__linux__)
    pid_t parent = getpid();
#endif
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return e;
    }
    if (pid == 0) {
        close(fds[0]);
#if defined(__linux__)
        /* Die with the process that waits for us; never outlive it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(125);
#endif
        int rc = fn(arg, fds[1]);
        fflush(NULL);
        _exit(rc);
    }
    close(fds[1]);
    p->pid = pid;
    p->fd = fds[0];
    return 0;
}

long wx_proc_read(wx_proc *p, void *buf, size_t cap, int slice_ms)
{
    if (p->fd < 0)
        return WX_READ_EOF;
    for (;;) {
        int wait_ms = slice_ms;
        if (p->deadline) {
            uint64_t now = wx_now_ns();
            if (now >= p->deadline)
                return WX_READ_TIMEOUT;
            uint64_t left = (p->deadline - now) / 1000000u + 1;
            if (wait_ms < 0 || (uint64_t)wait_ms > left)
                wait_ms = (int)left;
        }
        struct pollfd pf = {.fd = p->fd, .events = POLLIN};
        int r = poll(&pf, 1, wait_ms);
        if (r < 0 && errno == EINTR)
            return WX_READ_AGAIN; /* let the caller look at its flags (Ctrl-C) */
        if (r < 0)
            return WX_READ_ERROR;
        if (r == 0) {
            if (p->deadline && wx_now_ns() >= p->deadline)
                return WX_READ_TIMEOUT;
            if (slice_ms >= 0)
                return WX_READ_AGAIN;
            continue;
        }
        ssize_t n = read(p->fd, buf, cap);
        if (n < 0 && errno == EINTR)
            return WX_READ_AGAIN;
        if (n < 0)
            return WX_READ_ERROR;
        return (long)n;
    }
}

void wx_proc_finish(wx_proc *p, int kill_it, int timed_out, wx_proc_end *end)
{
    memset(end, 0, sizeof *end);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    if (p->pid <= 0) {
        end->how = WX_PROC_LOST;
        snprintf(end->why, sizeof end->why, "no child was started");
        return;
    }
    if (kill_it || timed_out)
        kill(p->pid, SIGKILL);
    int st = 0;
    pid_t r;
    while ((r = waitpid(p->pid, &st, 0)) < 0 && errno == EINTR)
        ;
    p->pid = -1;
    if (r < 0) {
        end->how = WX_PROC_LOST;
        wx_why_errno(end->why, sizeof end->why, "waitpid", errno);
    } else if (timed_out) {
        end->how = WX_PROC_TIMED_OUT;
        snprintf(end->why, sizeof end->why, "did not finish within its time limit and was killed");
    } else if (WIFSIGNALED(st)) {
        end->how = WX_PROC_SIGNALED;
        end->code = WTERMSIG(st);
        snprintf(end->why, sizeof end->why, "killed by %s (%s)", wx_signal_name(end->code), strsignal(end->code));
    } else {
        end->how = WX_PROC_EXITED;
        end->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        snprintf(end->why, sizeof end->why, "exited with status %d", end->code);
    }
}

size_t wx_proc_call(wx_proc_fn fn, void *arg, void *buf, size_t cap, int timeout_ms, wx_proc_end *end)
{
    wx_proc p;
    int e = wx_proc_start(&p, fn, arg, timeout_ms);
    if (e != 0) {
        memset(end, 0, sizeof *end);
        end->how = WX_PROC_LOST;
        wx_why_errno(end->why, sizeof end->why, "could not start a child: pipe/fork", e);
        return 0;
    }
    size_t got = 0;
    int timed_out = 0, lost = 0;
    char sink[512];
    for (;;) {
        char *to = got < cap ? (char *)buf + got : sink;
        size_t room = got < cap ? cap - got : sizeof sink;
        long n = wx_proc_read(&p, to, room, -1);
        if (n > 0) {
            if (got < cap)
                got += (size_t)n;
            continue;
        }
        if (n == WX_READ_AGAIN)
            continue;
        timed_out = n == WX_READ_TIMEOUT;
        lost = n == WX_READ_ERROR ? errno : 0;
        break;
    }
    wx_proc_finish(&p, lost != 0, timed_out, end);
    if (lost && end->how != WX_PROC_TIMED_OUT) {
        end->how = WX_PROC_LOST;
        wx_why_errno(end->why, sizeof end->why, "could not watch the child: poll/read", lost);
    }
    if (timed_out && timeout_ms > 0)
        snprintf(end->why, sizeof end->why, "did not finish within %d s and was killed", (timeout_ms + 999) / 1000);
    return got;
}

/* In the child of wx_proc_supported: writes the reason, exits 0 when supported. */
static int supported_child(void *arg, int fd)
{
    char why[WX_REASON_LEN] = "";
    int sup = wx_strategy_supported(arg, why, sizeof why);
    if (write(fd, why, strlen(why)) < 0)
        return 3;
    return sup ? 0 : 1;
}

int wx_proc_supported(const wx_strategy *s, char *why, size_t len)
{
    wx_proc_end end;
    size_t n = wx_proc_call(supported_child, (void *)s, why, len - 1, 30000, &end);
    why[n] = 0;
    if (end.how != WX_PROC_EXITED)
        snprintf(why, len, "the check %.240s", end.why);
    return end.how == WX_PROC_EXITED && end.code == 0;
}
