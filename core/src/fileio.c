/* fileio.c — see fileio.h */
#include "fileio.h"
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *pl__fopen_regular(const char *path, const char *what, int *open_errno, pl_error *err)
{
    *open_errno = 0;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *open_errno = errno;
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const char *kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                           : S_ISDIR(st.st_mode) ? "a directory"
                           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                                                  : "something else";
        close(fd);
        pl_error_set(err, PL_EIO, "%s: cannot read %s: not a regular file but %s (give a regular file)", path,
                     what, kind);
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        pl_error_set(err, PL_EIO, "%s: cannot open %s: %s", path, what, strerror(e));
    }
    return f;
}

/* ---- files --------------------------------------------------------------- */

static const char *io_hint(int e)
{
    switch (e) {
    case ENOENT: return "a directory on the path does not exist";
    case ENOTDIR: return "a component of the path is a file, not a directory";
    case EACCES:
    case EPERM: return "check the permissions";
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return "the disk is full; free space or write elsewhere";
    case EFBIG: return "file size limit reached";
    case EROFS: return "read-only file system; write elsewhere";
    case EISDIR: return "the path is a directory";
    case ENAMETOOLONG: return "use a shorter path";
    default: return NULL;
    }
}

pl_status pl__io_error(pl_error *err, const char *path, int errnum)
{
    if (errnum == 0)
        errnum = EIO;
    const char *hint = io_hint(errnum);
    if (hint)
        return pl_error_set(err, PL_EIO, "%s: %s (%s)", path, strerror(errnum), hint);
    return pl_error_set(err, PL_EIO, "%s: %s", path, strerror(errnum));
}

pl_status pl__read_file(const char *path, char **data, size_t *len, pl_error *err)
{
    *data = NULL;
    if (len)
        *len = 0;
    int oe;
    FILE *f = pl__fopen_regular(path, "the file", &oe, err);
    if (!f)
        return oe ? pl__io_error(err, path, oe) : err->code;
    pl__buf b = {0};
    char chunk[65536];
    size_t k;
    pl__buf_add(&b, "", 0);
    /* bounded like the YAML loader: a file that grows while read (or a
     * huge one) is refused, not read into all memory */
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= PL__READ_MAX_BYTES)
        pl__buf_add(&b, chunk, k);
    if (b.len > PL__READ_MAX_BYTES) {
        fclose(f);
        pl__buf_free(&b);
        return pl_error_set(err, PL_EIO, "%s: larger than %d MiB (not a prunelab file; give the right file)",
                            path, PL__READ_MAX_BYTES >> 20);
    }
    int failed = ferror(f), e = errno;
    fclose(f);
    if (failed) {
        pl__buf_free(&b);
        return pl__io_error(err, path, e);
    }
    if (b.failed) {
        pl__buf_free(&b);
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory reading the file", path);
    }
    *data = b.data;
    if (len)
        *len = b.len;
    return PL_OK;
}

pl_status pl_write_stream(FILE *f, const char *what, const void *data, size_t len,
                          pl_error *err)
{
    errno = 0;
    if (len && fwrite(data, 1, len, f) != len)
        return pl__io_error(err, what, errno);
    errno = 0;
    if (fflush(f) != 0)
        return pl__io_error(err, what, errno);
    /* character devices and some pseudo file systems cannot sync: EINVAL */
    if (fsync(fileno(f)) != 0 && errno != EINVAL && errno != EROFS)
        return pl__io_error(err, what, errno);
    return PL_OK;
}

/* Makes a rename durable; best effort (some file systems refuse). */
static void sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

pl_status pl_write_atomic(const char *path, const void *data, size_t len, pl_error *err)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());

    int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
    int fd = open(tmp, flags, 0666);
    if (fd < 0 && errno == EEXIST) {
        /* left by an earlier process that had our pid and was killed */
        unlink(tmp);
        fd = open(tmp, flags, 0666);
    }
    if (fd < 0) {
        pl_status st = pl__io_error(err, path, errno);
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        pl_status st = pl__io_error(err, path, errno);
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    pl_status st = pl_write_stream(f, path, data, len, err);
    errno = 0;
    if (fclose(f) != 0 && st == PL_OK)
        st = pl__io_error(err, path, errno);
    if (st == PL_OK && rename(tmp, path) != 0)
        st = pl__io_error(err, path, errno);
    if (st != PL_OK)
        unlink(tmp);
    else
        sync_parent(path);
    free(tmp);
    return st;
}

int pl__mkdir_walk(char *path, int check_each, int *exists)
{
    size_t len = strlen(path);
    *exists = 0;
    for (size_t i = len ? 1 : 0; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        int e = 0;
        if (mkdir(path, 0777) != 0) {
            e = errno;
            struct stat sb;
            if (e == EEXIST) {
                e = 0;
                if (check_each || i == len) {
                    if (stat(path, &sb) != 0)
                        e = errno ? errno : EIO;
                    else if (!S_ISDIR(sb.st_mode))
                        e = ENOTDIR;
                    *exists = e != 0;
                }
            }
        }
        if (e)
            return e; /* path stays cut at the component that failed */
        path[i] = saved;
    }
    return 0;
}

pl_status pl_mkdirs(const char *path, pl_error *err)
{
    if (!path || !*path)
        return pl_error_set(err, PL_EINVAL, "empty directory path");
    char *p = strdup(path);
    if (!p)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
    int exists, e = pl__mkdir_walk(p, 1, &exists);
    free(p);
    return e ? pl__io_error(err, path, e) : PL_OK;
}

