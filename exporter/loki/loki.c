/* Loki batches.  See loki.h. */

#include <string.h>

#include "hex.h"
#include "jsonw.h"
#include "loki.h"
#include "pb.h"
#include "text.h"

enum {
    PUSH_STREAMS = 1, STREAM_LABELS = 1, STREAM_ENTRIES = 2,
    ENTRY_TIMESTAMP = 1, ENTRY_LINE = 2, ENTRY_METADATA = 3,
    PAIR_NAME = 1, PAIR_VALUE = 2, TS_SECONDS = 1, TS_NANOS = 2
};

static loki_stream_t *loki_stream(loki_batch_t *b, const loki_entry_t *e,
    loki_format_t f);
static int loki_added(loki_batch_t *b, loki_stream_t *s, size_t before,
    int created);
static void loki_stream_head(buf_t *o, const loki_batch_t *b,
    const loki_stream_t *s, const char *host, buf_t *labels);
static void loki_entry_json(buf_t *o, const loki_entry_t *e);
static size_t pair_size(size_t name, size_t value);
static void pair(buf_t *o, const char *name, size_t nlen, const char *value,
    size_t vlen);
static void label_value(buf_t *o, const char *v);

int
loki_add(loki_batch_t *b, loki_format_t f, const loki_entry_t *e)
{
    loki_stream_t  *s;
    buf_t          *o;
    size_t          before;
    int             n = b->n_streams;

    if (f == LOKI_PROTOBUF) {
        o = loki_open(b, e);
        if (o == NULL) {
            return -1;
        }
        buf_put(o, e->line->data, e->line->len);
        return loki_close(b, e);
    }

    s = loki_stream(b, e, f);
    if (s == NULL) {
        return -1;
    }

    before = s->entries.len;
    if (f == LOKI_JSON) {
        if (before) {
            jsonw_lit(&s->entries, ",");
        }
        loki_entry_json(&s->entries, e);
    } else {
        buf_append(&s->entries, e->line->data, e->line->len);
        jsonw_lit(&s->entries, "\n");
    }

    return loki_added(b, s, before, b->n_streams != n);
}

/* StreamAdapter.entries: one EntryAdapter, open until its line is in. */
buf_t *
loki_open(loki_batch_t *b, const loki_entry_t *e)
{
    uint64_t        sec = e->time_ns / 1000000000;
    uint64_t        ns = e->time_ns % 1000000000;
    loki_stream_t  *s;
    buf_t          *o;
    int             n = b->n_streams;

    s = loki_stream(b, e, LOKI_PROTOBUF);
    if (s == NULL) {
        return NULL;
    }

    o = &s->entries;
    b->open = s;
    b->open_new = b->n_streams != n;
    b->open_before = o->len;
    b->open_entry = pb_open(o, STREAM_ENTRIES);
    pb_len(o, ENTRY_TIMESTAMP,
           1 + pb_varint_size(sec) + (ns ? 1 + pb_varint_size(ns) : 0));
    pb_uint(o, TS_SECONDS, sec);
    if (ns) {
        pb_uint(o, TS_NANOS, ns);
    }
    b->open_line = pb_open(o, ENTRY_LINE);
    return o;
}

int
loki_close(loki_batch_t *b, const loki_entry_t *e)
{
    loki_stream_t  *s = b->open;
    buf_t          *o = &s->entries;
    size_t          tl = strlen(e->tenant);

    pb_close(o, b->open_line);
    if (e->trace_id) {
        char  hex[33];

        text_hex(hex, e->trace_id, 16);
        pair(o, "trace_id", 8, hex, 32);
    }
    if (tl) {
        pair(o, "tenant_id", 9, e->tenant, tl);
    }
    pb_close(o, b->open_entry);

    b->open = NULL;
    return loki_added(b, s, b->open_before, b->open_new);
}

const char *
loki_seal(loki_batch_t *b, loki_format_t f, const char *host, buf_t *out,
    size_t *len)
{
    loki_stream_t  *s = &b->streams[0];
    buf_t           labels = { 0 }, head = { 0 };
    const char     *at = NULL;
    int             i;

    /* one stream: its head goes in the room before its entries, and the
       body is sent from there rather than copied (a batch of lines) */
    if (f == LOKI_PROTOBUF && b->n_streams == 1) {
        loki_stream_head(&head, b, s, host, &labels);
        if (!head.failed && head.len <= s->head) {
            at = s->entries.data + s->head - head.len;
            memcpy((char *) at, head.data, head.len);
            *len = head.len + s->entries.len - s->head;
            buf_reset(&s->entries);
        }
        buf_free(&head);
    }

    if (at == NULL && f == LOKI_JSON) {
        jsonw_lit(out, "{\"streams\":[");
    }

    for (i = 0; at == NULL && i < b->n_streams; i++) {
        s = &b->streams[i];

        if (f == LOKI_PROTOBUF) {
            loki_stream_head(out, b, s, host, &labels);

        } else if (f == LOKI_JSON) {
            if (i) {
                jsonw_lit(out, ",");
            }
            if (b->job) {
                jsonw_lit(out, "{\"stream\":{\"job\":");
                jsonw_string(out, b->job, strlen(b->job));
            } else {
                jsonw_lit(out, "{\"stream\":{\"service\":");
                jsonw_string(out, s->service, strlen(s->service));
                jsonw_lit(out, ",\"level\":");
                jsonw_string(out, s->level, strlen(s->level));
            }
            jsonw_lit(out, ",\"host\":");
            jsonw_string(out, host, strlen(host));
            jsonw_lit(out, "},\"values\":[");
        }

        buf_append(out, s->entries.data + s->head, s->entries.len - s->head);
        if (f == LOKI_JSON) {
            jsonw_lit(out, "]}");
        }
        buf_reset(&s->entries);
    }

    if (at == NULL) {
        if (f == LOKI_JSON) {
            jsonw_lit(out, "]}");
        }
        at = out->data;
        *len = out->len;
    }

    buf_free(&labels);
    b->n_streams = 0;
    b->bytes = 0;
    b->items = 0;
    b->opened = 0;
    return at;
}

void
loki_body(loki_batch_t *b, loki_format_t f, const char *host, buf_t *out)
{
    size_t       len;
    const char  *at = loki_seal(b, f, host, out, &len);

    if (at != out->data) {
        buf_append(out, at, len);
    }
}

void
loki_free(loki_batch_t *b)
{
    int  i;

    for (i = 0; i < LOKI_MAX_STREAMS; i++) {
        buf_free(&b->streams[i].entries);
    }
}

static loki_stream_t *
loki_stream(loki_batch_t *b, const loki_entry_t *e, loki_format_t f)
{
    loki_stream_t  *s;
    int             i;

    for (i = 0; i < b->n_streams; i++) {
        s = &b->streams[i];
        if (s->level == e->level && strcmp(s->service, e->service) == 0) {
            return s;
        }
    }

    if (b->n_streams == LOKI_MAX_STREAMS) {
        return NULL;
    }

    s = &b->streams[b->n_streams];
    buf_reset(&s->entries);
    s->head = f == LOKI_PROTOBUF ? LOKI_HEAD : 0;
    if (s->head && buf_reserve(&s->entries, s->head) != 0) {
        s->entries.failed = 0;
        return NULL;
    }
    s->entries.len = s->head;

    b->n_streams++;
    strncpy(s->service, e->service, sizeof(s->service) - 1);
    s->service[sizeof(s->service) - 1] = '\0';
    s->level = e->level;
    return s;
}

/* Counts the entry written since before, or takes it back (and the stream
   it created) when memory ran out. */
static int
loki_added(loki_batch_t *b, loki_stream_t *s, size_t before, int created)
{
    if (s->entries.failed) {
        s->entries.failed = 0;
        s->entries.len = before;
        if (created) {
            b->n_streams--;
        }
        return -1;
    }

    b->bytes += s->entries.len - before;
    b->items++;
    return 0;
}

/* PushRequest.streams: the tag and length of the stream's StreamAdapter,
   and its labels in selector form; its entries follow. */
static void
loki_stream_head(buf_t *o, const loki_batch_t *b, const loki_stream_t *s,
    const char *host, buf_t *labels)
{
    buf_reset(labels);
    if (b->job) {
        jsonw_lit(labels, "{job=\"");
        label_value(labels, b->job);
    } else {
        jsonw_lit(labels, "{service=\"");
        label_value(labels, s->service);
        jsonw_lit(labels, "\", level=\"");
        label_value(labels, s->level);
    }
    jsonw_lit(labels, "\", host=\"");
    label_value(labels, host);
    jsonw_lit(labels, "\"}");
    if (labels->failed) {
        o->failed = 1;              /* the caller drops the batch */
        return;
    }
    pb_len(o, PUSH_STREAMS, pb_len_size(STREAM_LABELS, labels->len)
                            + s->entries.len - s->head);
    pb_bytes(o, STREAM_LABELS, labels->data, labels->len);
}

/* ["<unix ns>","<line>",{structured metadata}] */
static void
loki_entry_json(buf_t *o, const loki_entry_t *e)
{
    jsonw_lit(o, "[\"");
    jsonw_u64(o, e->time_ns);
    jsonw_lit(o, "\",");
    jsonw_string(o, e->line->data, e->line->len);
    jsonw_lit(o, ",{");
    if (e->trace_id) {
        jsonw_lit(o, "\"trace_id\":");
        jsonw_hex(o, e->trace_id, 16);
    }
    if (*e->tenant) {
        if (e->trace_id) {
            jsonw_lit(o, ",");
        }
        jsonw_lit(o, "\"tenant_id\":");
        jsonw_string(o, e->tenant, strlen(e->tenant));
    }
    jsonw_lit(o, "}]");
}

static size_t
pair_size(size_t name, size_t value)
{
    return pb_len_size(PAIR_NAME, name) + pb_len_size(PAIR_VALUE, value);
}

/* EntryAdapter.structuredMetadata: one LabelPairAdapter. */
static void
pair(buf_t *o, const char *name, size_t nlen, const char *value, size_t vlen)
{
    pb_len(o, ENTRY_METADATA, pair_size(nlen, vlen));
    pb_bytes(o, PAIR_NAME, name, nlen);
    pb_bytes(o, PAIR_VALUE, value, vlen);
}

/* A label value inside "": backslash, quote and control characters
   escaped the way Loki's (PromQL's) selector parser reads them. */
static void
label_value(buf_t *o, const char *v)
{
    char  esc[4];

    for ( ; *v; v++) {
        if (*v == '\\' || *v == '"') {
            esc[0] = '\\';
            esc[1] = *v;
            buf_append(o, esc, 2);
        } else if (*v == '\n') {
            buf_append(o, "\\n", 2);
        } else if ((unsigned char) *v < 0x20) {
            esc[0] = '\\';
            esc[1] = 'x';
            hex_encode(esc + 2, (const uint8_t *) v, 1);
            buf_append(o, esc, 4);
        } else {
            buf_append(o, v, 1);
        }
    }
}
