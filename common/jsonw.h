/*
 * The one JSON writer of our own: the exporters' log lines and Loki's JSON
 * push, the audit trail's events and /status.json, written in one pass
 * into a reused buffer.  Every text is made valid UTF-8 the way text_utf8()
 * does it (invalid sequences and NUL become U+FFFD, cut on a character
 * boundary) and escaped per RFC 8259; numbers are written digit by digit,
 * never through the locale.  jansson is the oracle in t/unit/test_logline.c
 * and t/fuzz/fuzz_logline.c.
 */

#ifndef OBS_JSONW_H
#define OBS_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

/*
 * Appends raw as a JSON string, quotes included: the first max bytes (at
 * most) of its sanitised text, escaped.
 */
void jsonw_text(buf_t *b, const uint8_t *raw, size_t len, size_t max);

/* Appends text that is valid UTF-8 already as a JSON string. */
void jsonw_string(buf_t *b, const char *text, size_t len);

/* Appends an unsigned integer. */
void jsonw_u64(buf_t *b, uint64_t v);

/* Appends a count, at most 2^63 - 1: what JSON readers such as jansson
   (and Loki's) take as an integer. */
void jsonw_count(buf_t *b, uint64_t v);

/* Appends us / 1000 exactly, as a decimal number of milliseconds. */
void jsonw_millis(buf_t *b, uint64_t us);

/* Appends n bytes as a JSON string of 2n lowercase hex digits. */
void jsonw_hex(buf_t *b, const uint8_t *bytes, size_t n);

/* Appends bytes, inline while the buffer has room. */
static inline void
jsonw_raw(buf_t *b, const void *data, size_t n)
{
    if (b->cap - b->len >= n) {
        memcpy(b->data + b->len, data, n);
        b->len += n;
    } else {
        buf_append(b, data, n);
    }
}

/* Appends a literal (keys, punctuation) as it is. */
#define jsonw_lit(b, s)  jsonw_raw((b), (s), sizeof(s) - 1)

#endif
