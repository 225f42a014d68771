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

static loki_stream_t *loki_stream(loki_batch_t *b, const loki_entry_t *e);
static void loki_entry_pb(buf_t *o, const loki_entry_t *e);
static void loki_entry_json(buf_t *o, const loki_entry_t *e);
static size_t pair_size(size_t name, size_t value);
static void pair(buf_t *o, const char *name, size_t nlen, const char *value,
    size_t vlen);
static void label_value(buf_t *o, const char *v);

int
loki_add(loki_batch_t *b, loki_format_t f, const loki_entry_t *e)
{
    loki_stream_t  *s = loki_stream(b, e);
    size_t          before;

    if (s == NULL) {
        return -1;
    }

    before = s->entries.len;
    if (f == LOKI_PROTOBUF) {
        loki_entry_pb(&s->entries, e);
    } else if (f == LOKI_JSON) {
        if (before) {
            jsonw_lit(&s->entries, ",");
        }
        loki_entry_json(&s->entries, e);
    } else {
        buf_append(&s->entries, e->line->data, e->line->len);
        jsonw_lit(&s->entries, "\n");
    }

    if (s->entries.failed) {
        s->entries.failed = 0;
        s->entries.len = before;
        return -1;
    }

    b->bytes += s->entries.len - before;
    b->items++;
    return 0;
}

void
loki_body(loki_batch_t *b, loki_format_t f, const char *host, buf_t *out)
{
    loki_stream_t  *s;
    buf_t           labels = { 0 };
    int             i;

    if (f == LOKI_JSON) {
        jsonw_lit(out, "{\"streams\":[");
    }

    for (i = 0; i < b->n_streams; i++) {
        s = &b->streams[i];

        if (f == LOKI_PROTOBUF) {
            /* the stream's labels in selector form */
            buf_reset(&labels);
            if (b->job) {
                jsonw_lit(&labels, "{job=\"");
                label_value(&labels, b->job);
            } else {
                jsonw_lit(&labels, "{service=\"");
                label_value(&labels, s->service);
                jsonw_lit(&labels, "\", level=\"");
                label_value(&labels, s->level);
            }
            jsonw_lit(&labels, "\", host=\"");
            label_value(&labels, host);
            jsonw_lit(&labels, "\"}");
            pb_len(out, PUSH_STREAMS, pb_len_size(STREAM_LABELS, labels.len)
                                      + s->entries.len);
            pb_bytes(out, STREAM_LABELS, labels.data, labels.len);

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

        buf_append(out, s->entries.data, s->entries.len);
        if (f == LOKI_JSON) {
            jsonw_lit(out, "]}");
        }
        buf_reset(&s->entries);
    }

    if (f == LOKI_JSON) {
        jsonw_lit(out, "]}");
    }

    buf_free(&labels);
    b->n_streams = 0;
    b->bytes = 0;
    b->items = 0;
    b->opened = 0;
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
loki_stream(loki_batch_t *b, const loki_entry_t *e)
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

    s = &b->streams[b->n_streams++];
    strncpy(s->service, e->service, sizeof(s->service) - 1);
    s->service[sizeof(s->service) - 1] = '\0';
    s->level = e->level;
    buf_reset(&s->entries);
    return s;
}

/* StreamAdapter.entries: one EntryAdapter. */
static void
loki_entry_pb(buf_t *o, const loki_entry_t *e)
{
    uint64_t  sec = e->time_ns / 1000000000, ns = e->time_ns % 1000000000;
    size_t    ts, tl = strlen(e->tenant), entry;

    ts = 1 + pb_varint_size(sec) + (ns ? 1 + pb_varint_size(ns) : 0);
    entry = pb_len_size(ENTRY_TIMESTAMP, ts)
            + pb_len_size(ENTRY_LINE, e->line->len);
    if (e->trace_id) {
        entry += pb_len_size(ENTRY_METADATA, pair_size(8, 32));
    }
    if (tl) {
        entry += pb_len_size(ENTRY_METADATA, pair_size(9, tl));
    }

    pb_len(o, STREAM_ENTRIES, entry);
    pb_len(o, ENTRY_TIMESTAMP, ts);
    pb_uint(o, TS_SECONDS, sec);
    if (ns) {
        pb_uint(o, TS_NANOS, ns);
    }
    pb_bytes(o, ENTRY_LINE, e->line->data, e->line->len);

    if (e->trace_id) {
        char  hex[33];

        text_hex(hex, e->trace_id, 16);
        pair(o, "trace_id", 8, hex, 32);
    }
    if (tl) {
        pair(o, "tenant_id", 9, e->tenant, tl);
    }
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
