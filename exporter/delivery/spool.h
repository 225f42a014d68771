/*
 * A destination's on-disk spool: one file per payload, named by a
 * sequence number so that a directory listing gives the order back after
 * a restart.  One format for every destination:
 *
 *     <spool_dir>/<20-digit sequence>.payload
 *     line 1: the X-Scope-OrgID ("" for none)
 *     line 2: the item count, in decimal
 *     then the payload's bytes, exactly as they are sent
 *
 * A file is written to "<name>.tmp", fsync'd, renamed into place and the
 * directory fsync'd: a file that exists is whole and survives a crash or a
 * power cut; a ".tmp" left by a crash is removed at the next start.  The
 * spool is bounded in bytes (headers included) and in files.  Files of the
 * ClickHouse spool of earlier releases ("<sequence>-<rows>.jsonl", the
 * rows alone) are read too and sent first.
 */

#ifndef OBS_SPOOL_H
#define OBS_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "payload.h"

typedef struct {
    char      *dir;
    int        dir_fd;
    size_t     max_bytes;
    size_t     max_files;
    size_t     bytes;               /* what its files take */
    size_t     files;
    uint64_t   next_seq;
} spool_t;

/* Opens (creating) dir; -1 with err set when it cannot, or when it is not
   the sidecar's user's alone (see spool_dir_check). */
int spool_open(spool_t *s, const char *dir, size_t max_bytes,
    size_t max_files, char *err, size_t errlen);

/* 0 when a directory (st, named dir) is this user's and nobody else may
   write to it; else -1, err saying what to do. */
int spool_dir_check(const struct stat *st, const char *dir, char *err,
    size_t errlen);

/* What an earlier run left, oldest first, as payloads whose data is still
   on disk (a list linked by next; NULL for none). */
payload_t *spool_load(spool_t *s);

/* Whether p would fit within the bounds. */
int spool_fits(const spool_t *s, const payload_t *p);

/* Writes p (its data freed once on disk), after every other file, or
   before them all when first is 1; -1 when it does not fit or cannot be
   written (p is unchanged then). */
int spool_write(spool_t *s, payload_t *p, uint64_t first_seq, int first);

/* Reads p's data back; -1 when the file is gone or unreadable. */
int spool_read(spool_t *s, payload_t *p);

/* Removes p's file (if it has one). */
void spool_remove(spool_t *s, payload_t *p);

/* Closes the spool (its files stay). */
void spool_close(spool_t *s);

#endif
