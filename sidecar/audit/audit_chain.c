/* The audit trail's chain.  See audit_chain.h. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit_chain.h"
#include "hex.h"
#include "jsonw.h"

struct audit_key {
    EVP_MAC_CTX  *ctx;              /* keyed; re-initialised per line */
};

static int audit_mac(audit_key_t *k, const uint8_t *prev, const char *data,
    size_t len, uint8_t *out);
static int hex_decode(const char *hex, size_t n, uint8_t *out);

audit_key_t *
audit_key_new(const char *key, size_t len)
{
    audit_key_t  *k;
    EVP_MAC      *hmac;
    OSSL_PARAM    params[2];

    k = calloc(1, sizeof(audit_key_t));
    if (k == NULL) {
        return NULL;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    k->ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);

    if (k->ctx == NULL
        || !EVP_MAC_init(k->ctx, (const unsigned char *) key, len, params))
    {
        audit_key_free(k);
        return NULL;
    }

    return k;
}

void
audit_key_free(audit_key_t *k)
{
    if (k) {
        EVP_MAC_CTX_free(k->ctx);
        free(k);
    }
}

int
audit_chain_append(audit_chain_t *c, audit_key_t *k, const char *body,
    size_t len, buf_t *out)
{
    size_t   start = out->len;
    uint8_t  mac[AUDIT_MAC_LEN];
    char     hex[2 * AUDIT_MAC_LEN];

    jsonw_lit(out, "{\"seq\":");
    jsonw_u64(out, c->seq + 1);
    jsonw_lit(out, ",");
    jsonw_raw(out, body, len);
    jsonw_lit(out, ",\"prev\":\"");
    hex_encode(hex, c->mac, AUDIT_MAC_LEN);
    jsonw_raw(out, hex, sizeof(hex));
    jsonw_lit(out, "\"");

    if (out->failed
        || audit_mac(k, c->mac, out->data + start, out->len - start, mac)
           != 0)
    {
        out->failed = 0;
        out->len = start;
        return -1;
    }

    jsonw_lit(out, ",\"mac\":\"");
    hex_encode(hex, mac, AUDIT_MAC_LEN);
    jsonw_raw(out, hex, sizeof(hex));
    jsonw_lit(out, "\"}\n");

    if (out->failed) {
        out->failed = 0;
        out->len = start;
        return -1;
    }

    c->seq++;
    memcpy(c->mac, mac, AUDIT_MAC_LEN);
    return 0;
}

const char *
audit_chain_parse(audit_key_t *k, const char *line, size_t len,
    uint64_t *seq, uint8_t *prev, uint8_t *mac)
{
    const char  *p, *tail, *prev_at;
    uint8_t      want[AUDIT_MAC_LEN];
    size_t       covered;
    uint64_t     n;

    if (len < sizeof("{\"seq\":1,") - 1 + AUDIT_PREV_TAIL + AUDIT_LINE_TAIL
        || memcmp(line, "{\"seq\":", 7) != 0)
    {
        return "not an event of the chain";
    }

    tail = line + len - AUDIT_LINE_TAIL;
    covered = (size_t) (tail - line);
    prev_at = tail - AUDIT_PREV_TAIL;

    if (memcmp(tail, ",\"mac\":\"", 8) != 0
        || memcmp(line + len - 2, "\"}", 2) != 0
        || hex_decode(tail + 8, 2 * AUDIT_MAC_LEN, mac) != 0)
    {
        return "no mac at the end of the line";
    }

    if (memcmp(prev_at, ",\"prev\":\"", 9) != 0
        || prev_at[AUDIT_PREV_TAIL - 1] != '"'
        || hex_decode(prev_at + 9, 2 * AUDIT_MAC_LEN, prev) != 0)
    {
        return "no prev before the mac";
    }

    n = 0;
    for (p = line + 7; p < prev_at && *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - 9) / 10) {
            return "seq out of range";
        }
        n = n * 10 + (uint64_t) (*p - '0');
    }

    if (p == line + 7 || *p != ',' || n == 0) {
        return "no seq at the start of the line";
    }

    *seq = n;

    if (audit_mac(k, prev, line, covered, want) != 0) {
        return "the HMAC cannot be computed";
    }

    if (CRYPTO_memcmp(want, mac, AUDIT_MAC_LEN) != 0) {
        return "its mac is wrong: the line was changed (or another key "
               "wrote it)";
    }

    return NULL;
}

/* Reads one line of f into *line (grown as needed); its length or -1. */

static ssize_t
read_line(FILE *f, char **line, size_t *cap, int *ended)
{
    ssize_t  n;

    n = getline(line, cap, f);
    *ended = n > 0 && (*line)[n - 1] == '\n';
    if (*ended) {
        n--;
    }
    return n;
}

int
audit_verify(const char *key, char *const *files, int n, const char *anchor,
    FILE *out, FILE *err)
{
    audit_key_t    *k;
    audit_chain_t   c;
    FILE           *f;
    char           *line = NULL, prev_hex[2 * AUDIT_MAC_LEN + 1];
    size_t          cap = 0;
    ssize_t         len;
    uint64_t        seq, first = 0, events = 0;
    uint8_t         prev[AUDIT_MAC_LEN], mac[AUDIT_MAC_LEN];
    uint8_t         want_anchor[AUDIT_MAC_LEN];
    const char     *why;
    unsigned long   lineno;
    int             i, ended, rc = 1, anchor_seen = 0;

    if (anchor && (strlen(anchor) != 2 * AUDIT_MAC_LEN
                   || hex_decode(anchor, 2 * AUDIT_MAC_LEN, want_anchor)
                      != 0))
    {
        fprintf(err, "verify: --audit-anchor must be a mac: 64 hex "
                "digits\n");
        return 1;
    }

    k = audit_key_new(key, strlen(key));
    if (k == NULL) {
        fprintf(err, "verify: cannot set up HMAC-SHA256\n");
        return 1;
    }

    memset(&c, 0, sizeof(c));

    for (i = 0; i < n; i++) {
        f = fopen(files[i], "r");
        if (f == NULL) {
            fprintf(err, "%s: cannot be read: %s\n", files[i],
                    strerror(errno));
            goto done;
        }

        lineno = 0;

        while ((len = read_line(f, &line, &cap, &ended)) >= 0) {
            lineno++;

            if (!ended) {
                fprintf(err, "%s:%lu: the line is cut short (no line end): "
                        "the file was truncated or its writer died "
                        "mid-line\n", files[i], lineno);
                fclose(f);
                goto done;
            }

            why = audit_chain_parse(k, line, (size_t) len, &seq, prev, mac);

            if (why == NULL && events == 0) {
                /* where the files given start: rotation may have removed
                   what came before */
                first = seq;
                if (seq != 1) {
                    memcpy(c.mac, prev, AUDIT_MAC_LEN);
                    c.seq = seq - 1;
                }
            }

            if (why == NULL && memcmp(prev, c.mac, AUDIT_MAC_LEN) != 0) {
                why = "its prev is not the mac of the event before: an "
                      "event was removed, inserted or moved before it (or "
                      "a file is missing)";
            }

            if (why == NULL && seq != c.seq + 1) {
                why = "its seq does not follow the event before";
            }

            if (why) {
                fprintf(err, "%s:%lu: %s\n", files[i], lineno, why);
                fclose(f);
                goto done;
            }

            c.seq = seq;
            memcpy(c.mac, mac, AUDIT_MAC_LEN);
            events++;
            anchor_seen |= anchor
                           && memcmp(mac, want_anchor, AUDIT_MAC_LEN) == 0;
        }

        fclose(f);
    }

    if (events == 0) {
        fprintf(err, "verify: no event in the files given\n");
        goto done;
    }

    if (anchor && !anchor_seen) {
        fprintf(err, "%s: the event whose mac is %s is not in the chain: "
                "events were cut from the end\n", files[n - 1], anchor);
        goto done;
    }

    hex_encode(prev_hex, c.mac, AUDIT_MAC_LEN);
    prev_hex[2 * AUDIT_MAC_LEN] = '\0';
    fprintf(out, "audit chain holds: %" PRIu64 " events in %d file%s, seq "
            "%" PRIu64 " to %" PRIu64 "%s; last mac %s\n", events, n,
            n == 1 ? "" : "s", first, c.seq,
            first == 1 ? "" : " (the files before were rotated away)",
            prev_hex);
    rc = 0;

done:

    free(line);
    audit_key_free(k);
    return rc;
}

static int
audit_mac(audit_key_t *k, const uint8_t *prev, const char *data, size_t len,
    uint8_t *out)
{
    size_t  n;

    /* no key: the keyed state set up once is restored */
    if (!EVP_MAC_init(k->ctx, NULL, 0, NULL)
        || !EVP_MAC_update(k->ctx, prev, AUDIT_MAC_LEN)
        || !EVP_MAC_update(k->ctx, (const unsigned char *) data, len)
        || !EVP_MAC_final(k->ctx, out, &n, AUDIT_MAC_LEN)
        || n != AUDIT_MAC_LEN)
    {
        return -1;
    }

    return 0;
}

/* Lowercase hex only: the chain writes no other spelling. */

static int
hex_decode(const char *hex, size_t n, uint8_t *out)
{
    size_t  i;
    int     hi, lo;

    for (i = 0; i < n; i += 2) {
        hi = hex[i] >= '0' && hex[i] <= '9' ? hex[i] - '0'
             : hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 10 : -1;
        lo = hex[i + 1] >= '0' && hex[i + 1] <= '9' ? hex[i + 1] - '0'
             : hex[i + 1] >= 'a' && hex[i + 1] <= 'f' ? hex[i + 1] - 'a' + 10
             : -1;
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i / 2] = (uint8_t) (hi << 4 | lo);
    }

    return 0;
}
