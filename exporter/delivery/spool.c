/* The on-disk spool.  See spool.h. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

/* sequence numbers below this are room for payloads put in front */
#define SPOOL_FIRST_SEQ  (1ULL << 40)
#define SPOOL_HEADER_MAX (ORG_ID_MAX + 24)

static void spool_name(const payload_t *p, char *out, size_t size);
static int spool_file_ok(const struct stat *st);
static int seq_compare(const void *a, const void *b);

int
spool_open(spool_t *s, const char *dir, size_t max_bytes, size_t max_files,
    char *err, size_t errlen)
{
    struct stat  st;

    memset(s, 0, sizeof(*s));
    s->dir_fd = -1;
    s->max_bytes = max_bytes;
    s->max_files = max_files;
    s->next_seq = SPOOL_FIRST_SEQ;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        return -1;
    }

    s->dir = strdup(dir);
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir == NULL || s->dir_fd < 0 || fstat(s->dir_fd, &st) != 0) {
        snprintf(err, errlen, "spool %s: %s", dir,
                 s->dir ? strerror(errno) : "out of memory");
        spool_close(s);
        return -1;
    }

    if (spool_dir_check(&st, dir, err, errlen) != 0) {
        spool_close(s);
        return -1;
    }

    return 0;
}

/*
 * Whoever may add names to the directory may add links to any file: the
 * sidecar would write a payload into it, or send it to the receiver.
 */

int
spool_dir_check(const struct stat *st, const char *dir, char *err,
    size_t errlen)
{
    if (st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH))) {
        return 0;
    }

    snprintf(err, errlen, "spool %s: %s uid %lu (mode %04o); another user "
             "could link its names to other files, which the sidecar would "
             "overwrite or send: give it to uid %lu with mode 0700, or name "
             "a directory that does not exist yet", dir,
             st->st_uid != geteuid() ? "the directory of"
                                     : "writable by others than",
             (unsigned long) st->st_uid, (unsigned) (st->st_mode & 07777),
             (unsigned long) geteuid());
    return -1;
}

payload_t *
spool_load(spool_t *s)
{
    DIR                 *d;
    struct dirent       *de;
    payload_t          **found = NULL, **grown, *p, *head = NULL, **tail;
    size_t               n = 0, cap = 0, i;
    unsigned long long   seq, rows;
    char                 name[64], *end;
    struct stat          st;
    int                  legacy, fd;

    fd = openat(s->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }

    while ((de = readdir(d)) != NULL) {
        seq = strtoull(de->d_name, &end, 10);
        legacy = 0;
        rows = 0;

        if (seq != 0 && strcmp(end, ".payload.tmp") == 0) {
            unlinkat(s->dir_fd, de->d_name, 0);     /* a crash's */
            continue;
        }
        if (seq != 0 && *end == '-') {
            rows = strtoull(end + 1, &end, 10);
            legacy = strcmp(end, ".jsonl") == 0;
            if (!legacy) {
                continue;
            }
        } else if (seq == 0 || strcmp(end, ".payload") != 0) {
            continue;
        }

        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(found, cap * sizeof(payload_t *));
            if (grown == NULL) {
                break;
            }
            found = grown;
        }
        p = calloc(1, sizeof(payload_t));
        if (p == NULL) {
            break;
        }
        p->seq = seq;
        p->legacy = legacy;
        p->items = rows;
        found[n++] = p;
    }
    closedir(d);

    if (n) {
        qsort(found, n, sizeof(payload_t *), seq_compare);
    }

    tail = &head;
    for (i = 0; i < n; i++) {
        p = found[i];
        spool_name(p, name, sizeof(name));
        if (fstatat(s->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0
            || !spool_file_ok(&st))
        {
            free(p);
            continue;
        }
        p->disk_len = (size_t) st.st_size;
        s->bytes += p->disk_len;
        s->files++;
        if (p->seq >= s->next_seq) {
            s->next_seq = p->seq + 1;
        }
        *tail = p;
        tail = &p->next;
    }

    free(found);
    return head;
}

int
spool_fits(const spool_t *s, const payload_t *p)
{
    return s->files < s->max_files
           && s->bytes + p->len + SPOOL_HEADER_MAX <= s->max_bytes;
}

int
spool_write(spool_t *s, payload_t *p, uint64_t first_seq, int first)
{
    char    name[64], tmp[80];
    FILE   *f;
    int     ok, fd;

    if (!spool_fits(s, p)) {
        return -1;
    }

    p->seq = first && first_seq > 1 ? first_seq - 1 : s->next_seq++;
    p->legacy = 0;
    spool_name(p, name, sizeof(name));
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);

    /* a file of our own, never one a name there already leads to */
    unlinkat(s->dir_fd, tmp, 0);
    fd = openat(s->dir_fd, tmp,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0) {
            close(fd);
            unlinkat(s->dir_fd, tmp, 0);
        }
        p->seq = 0;
        return -1;
    }

    fprintf(f, "%s\n%zu\n", p->org, p->items);
    p->disk_len = (size_t) ftell(f) + p->len;
    ok = fwrite(p->data, 1, p->len, f) == p->len && fflush(f) == 0
         && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || renameat(s->dir_fd, tmp, s->dir_fd, name) != 0) {
        unlinkat(s->dir_fd, tmp, 0);
        p->seq = 0;
        return -1;
    }
    (void) fsync(s->dir_fd);

    s->bytes += p->disk_len;
    s->files++;

    /* on disk now: memory is given back until it is sent */
    free(p->data);
    p->data = NULL;
    p->cap = 0;
    return 0;
}

int
spool_read(spool_t *s, payload_t *p)
{
    char         name[64];
    FILE        *f;
    long         start, end;
    int          fd;
    struct stat  st;

    spool_name(p, name, sizeof(name));
    fd = openat(s->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    f = fd >= 0 && fstat(fd, &st) == 0 && spool_file_ok(&st)
        ? fdopen(fd, "r") : NULL;
    if (f == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }

    if (!p->legacy
        && (fgets(p->org, sizeof(p->org), f) == NULL
            || fscanf(f, "%zu", &p->items) != 1 || fgetc(f) != '\n'))
    {
        fclose(f);
        return -1;
    }
    p->org[strcspn(p->org, "\n")] = '\0';
    if (p->org[0] && !org_id_valid(p->org)) {
        fclose(f);
        return -1;
    }

    start = ftell(f);
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < start
        || fseek(f, start, SEEK_SET) != 0)
    {
        fclose(f);
        return -1;
    }
    p->len = (size_t) (end - start);

    p->data = malloc(p->len ? p->len : 1);
    p->cap = 0;                 /* freed, not kept (payload_new's are) */
    if (p->data == NULL || fread(p->data, 1, p->len, f) != p->len) {
        fclose(f);
        free(p->data);
        p->data = NULL;
        return -1;
    }

    fclose(f);
    return 0;
}

void
spool_remove(spool_t *s, payload_t *p)
{
    char  name[64];

    if (p->seq == 0) {
        return;
    }

    spool_name(p, name, sizeof(name));
    unlinkat(s->dir_fd, name, 0);
    s->bytes -= p->disk_len < s->bytes ? p->disk_len : s->bytes;
    s->files -= s->files > 0;
    p->seq = 0;
}

void
spool_close(spool_t *s)
{
    if (s->dir_fd >= 0) {
        close(s->dir_fd);
    }
    free(s->dir);
    s->dir = NULL;
    s->dir_fd = -1;
}

/* A payload's file name, in the spool's directory. */

static void
spool_name(const payload_t *p, char *out, size_t size)
{
    if (p->legacy) {
        snprintf(out, size, "%020llu-%zu.jsonl", (unsigned long long) p->seq,
                 p->items);
    } else {
        snprintf(out, size, "%020llu.payload", (unsigned long long) p->seq);
    }
}

/*
 * A file the sidecar wrote: regular, its own, under one name.  A link that
 * someone else made (symbolic, or a second name of another file) would have
 * the sidecar send that file's bytes.
 */

static int
spool_file_ok(const struct stat *st)
{
    return S_ISREG(st->st_mode) && st->st_uid == geteuid()
           && st->st_nlink == 1;
}

static int
seq_compare(const void *a, const void *b)
{
    const payload_t  *x = *(payload_t *const *) a;
    const payload_t  *y = *(payload_t *const *) b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}
