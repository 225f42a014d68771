/* Text and UTF-8 helpers shared by the sidecar and its exporters. */

#ifndef OBS_TEXT_H
#define OBS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copies raw into out (cap bytes, cap >= 4) as NUL-terminated valid UTF-8:
 * invalid sequences and NUL become U+FFFD; cut to cap - 1 bytes on a
 * character boundary.  Returns the length.
 */
size_t text_utf8(const uint8_t *raw, size_t len, char *out, size_t cap);

/* Length of the valid UTF-8 sequence at raw (left bytes), 0 when invalid. */
size_t text_utf8_sequence(const uint8_t *raw, size_t left);

/* Whether every byte is printable ASCII (0x20 to 0x7e): text that needs
   neither UTF-8 checks nor replacements. */
int text_printable(const uint8_t *raw, size_t len);

/* Writes v in decimal and a NUL (out: 21 bytes at most); returns the
   length. */
size_t text_u64(char *out, uint64_t v);

/* Writes 2n lowercase hex digits and a NUL. */
void text_hex(char *out, const uint8_t *bytes, size_t n);

#endif
