/* claim.c — claim files with host + pid + start-time holders (see claim.h). */
#include "claim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A claim that cannot be parsed is young when written by the O_EXCL
 * fallback (no hard links) and still being filled; after this it is junk. */
#define PL__CLAIM_UNREADABLE_GRACE 60

typedef struct holder {
    char host[256];
    long pid;
    unsigned long long start;
} holder;

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot. 0 when
 * the process does not exist (or /proc is not there). */
static unsigned long long proc_start(long pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    /* the command name (field 2) may hold spaces and ')'; fields after the
     * last ')' are plain: field 3 is the state, field 22 the start time */
    char *s = strrchr(buf, ')');
    if (!s)
        return 0;
    s++;
    for (int field = 3; field < 22; field++) {
        s = strchr(s + 1, ' ');
        if (!s)
            return 0;
    }
    return strtoull(s + 1, NULL, 10);
}

static void self(holder *h)
{
    memset(h, 0, sizeof *h);
    if (gethostname(h->host, sizeof h->host - 1) != 0)
        snprintf(h->host, sizeof h->host, "unknown");
    h->pid = (long)getpid();
    h->start = proc_start(h->pid);
}

static int holder_format(const holder *h, char *buf, size_t n)
{
    return snprintf(buf, n, "prunelab-claim 1\nhost %s\npid %ld\nstart %llu\n", h->host, h->pid, h->start);
}

/* Reads a claim into text (for the compare-before-unlink) and h. Returns
 * 1 parsed, 0 unreadable/unparsable, -1 absent. */
static int holder_read(const char *path, holder *h, char *text, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? -1 : 0;
    size_t k = fread(text, 1, n - 1, f);
    fclose(f);
    text[k] = 0;
    memset(h, 0, sizeof *h);
    return sscanf(text, "prunelab-claim 1\nhost %255s\npid %ld\nstart %llu\n", h->host, &h->pid, &h->start) == 3;
}

/* 1 live (or uncheckable), 0 dead. */
static int holder_alive(const holder *h)
{
    holder me;
    self(&me);
    if (strcmp(h->host, me.host))
        return 1;
    unsigned long long st = proc_start(h->pid);
    return st != 0 && st == h->start;
}

static void describe(const holder *h, char *buf, size_t n)
{
    if (buf && n)
        snprintf(buf, n, "%s pid %ld", h->host, h->pid);
}

/* Removes `path` if it still holds exactly `seen`, under the folder's lock
 * file, so a fresh claim made after `seen` was read is never removed. */
static void remove_stale(const char *path, const char *seen)
{
    char lock[4400], text[1024];
    snprintf(lock, sizeof lock, "%s", path);
    char *sl = strrchr(lock, '/');
    snprintf(sl ? sl + 1 : lock, sizeof lock - (size_t)(sl ? sl + 1 - lock : 0), ".claims.lock");
    int fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    /* without flock (some network filesystems) the check below still
     * narrows the window to a read and an unlink */
    int locked = fd >= 0 && flock(fd, LOCK_EX) == 0;
    holder h;
    if (holder_read(path, &h, text, sizeof text) >= 0 && !strcmp(text, seen))
        unlink(path);
    if (locked)
        flock(fd, LOCK_UN);
    if (fd >= 0)
        close(fd);
}

static int young(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && time(NULL) - st.st_mtime < PL__CLAIM_UNREADABLE_GRACE;
}

pl_status pl_claim_try(const char *path, pl_claim *c, int *got, char *holder_out, size_t n, pl_error *err)
{
    memset(c, 0, sizeof *c);
    *got = 0;
    if (holder_out && n)
        holder_out[0] = 0;
    snprintf(c->path, sizeof c->path, "%s", path);
    holder me;
    self(&me);
    char text[1024], tmp[4400];
    int len = holder_format(&me, text, sizeof text);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, me.pid);
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0)
            return pl_error_set(err, PL_EIO, "%s: cannot create a claim: %s (the report folder or cache must be "
                                "writable by every process)", tmp, strerror(errno));
        ssize_t w = write(fd, text, (size_t)len);
        int e = w == len ? 0 : errno ? errno : EIO;
        close(fd);
        if (e) {
            unlink(tmp);
            return pl_error_set(err, PL_EIO, "%s: cannot write a claim: %s", tmp, strerror(e));
        }
        int r = link(tmp, path);
        e = errno;
        unlink(tmp);
        if (r != 0 && e != EEXIST) {
            /* no hard links here (some FUSE/SMB mounts): O_EXCL creation,
             * where a reader may briefly see an empty file (see young()) */
            int fx = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
            if (fx >= 0) {
                w = write(fx, text, (size_t)len);
                close(fx);
                if (w != len) {
                    unlink(path);
                    return pl_error_set(err, PL_EIO, "%s: cannot write a claim", path);
                }
                r = 0;
            } else if (errno != EEXIST) {
                return pl_error_set(err, PL_EIO, "%s: cannot create a claim: %s", path, strerror(errno));
            }
        }
        if (r == 0) {
            c->held = 1;
            *got = 1;
            return PL_OK;
        }
        holder h;
        char seen[1024];
        int rd = holder_read(path, &h, seen, sizeof seen);
        if (rd < 0)
            continue; /* released meanwhile: try again */
        if (rd == 0) {
            if (young(path)) {
                if (holder_out && n)
                    snprintf(holder_out, n, "another process (claim being written)");
                return PL_OK;
            }
            remove_stale(path, seen);
            continue;
        }
        if (!strcmp(h.host, me.host) && h.pid == me.pid && h.start == me.start) {
            *got = 1; /* ours already (held elsewhere in this process): do not remove it on release */
            return PL_OK;
        }
        if (holder_alive(&h)) {
            describe(&h, holder_out, n);
            return PL_OK;
        }
        remove_stale(path, seen);
    }
    return pl_error_set(err, PL_EIO, "%s: claim keeps changing hands; giving up", path);
}

void pl_claim_release(pl_claim *c)
{
    if (c && c->held) {
        unlink(c->path);
        c->held = 0;
    }
}

int pl_claim_live(const char *path, char *holder_out, size_t n)
{
    holder h;
    char seen[1024];
    int rd = holder_read(path, &h, seen, sizeof seen);
    if (rd < 0)
        return 0;
    if (rd == 0)
        return young(path);
    if (!holder_alive(&h))
        return 0;
    describe(&h, holder_out, n);
    return 1;
}

double pl_claim_wait_limit(void)
{
    const char *e = getenv("PRUNELAB_CLAIM_WAIT");
    char *end;
    double v = e && *e ? strtod(e, &end) : 0;
    return e && *e && !*end && v >= 0 ? v : 3600;
}
