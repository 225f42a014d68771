/* Exposition formats.  See expo.h. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expo.h"
#include "pb.h"
#include "prometheus/metrics.pb-c.h"
#include "text.h"

#define EXPO_CT_TEXT   "text/plain; version=0.0.4; charset=utf-8"
#define EXPO_CT_OM     "application/openmetrics-text; version=1.0.0; " \
                       "charset=utf-8"
#define EXPO_CT_PROTO  "application/vnd.google.protobuf; " \
                       "proto=io.prometheus.client.MetricFamily; " \
                       "encoding=delimited"

static double expo_quality(const char *range, size_t len, expo_format_t *f);
static void expo_canonical(char *out, size_t size, double v);
static void expo_escaped(buf_t *b, const char *s, int help);
static void expo_label_set(expo_writer_t *w, const char *const *names,
    const char *const *values, int n);
static void expo_line_head(expo_writer_t *w, const char *suffix,
    size_t suffix_len);
static const char *expo_le(expo_writer_t *w, const histogram_t *h, int i,
    size_t *len);
static void expo_om_exemplar(buf_t *b, const exemplar_t *e);
static void expo_proto_metric(expo_writer_t *w, Io__Prometheus__Client__Metric
    *m, const char *const *names, const char *const *values, int n);
static void expo_proto_histogram(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, const histogram_t *h);
static void expo_series_histogram(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, const histogram_t *h);

expo_format_t
expo_negotiate(const char *accept)
{
    expo_format_t  best = EXPO_TEXT, f;
    double         best_q = 0, q;
    const char    *p, *end;

    if (accept == NULL) {
        return EXPO_TEXT;
    }

    for (p = accept; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }

        q = expo_quality(p, (size_t) (end - p), &f);
        if (q > best_q) {
            best_q = q;
            best = f;
        }
    }

    return best;
}

const char *
expo_content_type(expo_format_t format)
{
    switch (format) {
    case EXPO_OPENMETRICS:
        return EXPO_CT_OM;
    case EXPO_PROTOBUF:
        return EXPO_CT_PROTO;
    default:
        return EXPO_CT_TEXT;
    }
}

void
expo_begin(expo_writer_t *w, expo_format_t format, buf_t *out)
{
    memset(w, 0, sizeof(*w));
    w->format = format;
    w->out = out;
}

void
expo_begin_series(expo_writer_t *w, expo_series_pt series, void *data)
{
    memset(w, 0, sizeof(*w));
    w->format = EXPO_SERIES;
    w->series = series;
    w->series_data = data;
}

void
expo_begin_visit(expo_writer_t *w, const expo_visitor_t *v, void *data)
{
    memset(w, 0, sizeof(*w));
    w->format = EXPO_VISIT;
    w->visitor = v;
    w->series_data = data;
}

void
expo_family(expo_writer_t *w, const char *name, const char *help,
    const char *unit, expo_type_t type)
{
    static const char  *text_types[] = {
        "counter", "gauge", "histogram", "gauge"
    };
    static const char  *om_types[] = {
        "counter", "gauge", "histogram", "info"
    };

    const char  *suffix = type == EXPO_COUNTER ? "_total"
                          : type == EXPO_INFO ? "_info" : "";

    w->name = name;
    w->help = help;
    w->type = type;

    switch (w->format) {
    case EXPO_TEXT:
        buf_printf(w->out, "# HELP %s%s ", name, suffix);
        expo_escaped(w->out, help, 1);
        buf_printf(w->out, "\n# TYPE %s%s %s\n", name, suffix,
                   text_types[type]);
        break;

    case EXPO_OPENMETRICS:
        buf_printf(w->out, "# TYPE %s %s\n", name, om_types[type]);
        if (unit) {
            buf_printf(w->out, "# UNIT %s %s\n", name, unit);
        }
        buf_printf(w->out, "# HELP %s ", name);
        expo_escaped(w->out, help, 1);
        buf_puts(w->out, "\n");
        break;

    case EXPO_PROTOBUF:
        buf_reset(&w->family);
        break;

    case EXPO_SERIES:
        break;

    case EXPO_VISIT:
        w->visitor->family(w->series_data, name, help, unit, type);
        break;
    }
}

void
expo_sample(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, double value)
{
    Io__Prometheus__Client__Metric   m = IO__PROMETHEUS__CLIENT__METRIC__INIT;
    Io__Prometheus__Client__Counter  c = IO__PROMETHEUS__CLIENT__COUNTER__INIT;
    Io__Prometheus__Client__Gauge    g = IO__PROMETHEUS__CLIENT__GAUGE__INIT;

    if (w->format == EXPO_PROTOBUF) {
        if (w->type == EXPO_COUNTER) {
            c.has_value = 1;
            c.value = value;
            m.counter = &c;
        } else {
            g.has_value = 1;
            g.value = value;
            m.gauge = &g;
        }
        expo_proto_metric(w, &m, names, values, n);
        return;
    }

    if (w->format == EXPO_VISIT) {
        w->visitor->sample(w->series_data, names, values, n, value, w->born);
        return;
    }

    if (w->format == EXPO_SERIES) {
        char  name[256];

        snprintf(name, sizeof(name), "%s%s", w->name,
                 w->type == EXPO_COUNTER ? "_total"
                 : w->type == EXPO_INFO ? "_info" : "");
        w->series(w->series_data, name, names, values, n, NULL, value);
        return;
    }

    expo_label_set(w, names, values, n);
    if (w->type == EXPO_COUNTER) {
        expo_line_head(w, "_total", 6);
    } else {
        expo_line_head(w, "_info", w->type == EXPO_INFO ? 5 : 0);
    }
    buf_double(w->out, value);
    buf_put(w->out, "\n", 1);
}

void
expo_histogram(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, const histogram_t *h)
{
    uint64_t     cumulative = 0;
    const char  *le;
    size_t       le_len;
    buf_t       *out = w->out;
    int          i;

    if (w->format == EXPO_PROTOBUF) {
        expo_proto_histogram(w, names, values, n, h);
        return;
    }

    if (w->format == EXPO_SERIES) {
        expo_series_histogram(w, names, values, n, h);
        return;
    }

    if (w->format == EXPO_VISIT) {
        w->visitor->histogram(w->series_data, names, values, n, h, w->born);
        return;
    }

    expo_label_set(w, names, values, n);

    /* a histogram is most of a scrape: its bucket lines are copied from
       the head they share, each in one piece */
    buf_reset(&w->head);
    buf_puts(&w->head, w->name);
    buf_put(&w->head, "_bucket{", 8);
    buf_put(&w->head, w->labels.data, w->labels.len);
    buf_puts(&w->head, w->labels.len ? ",le=\"" : "le=\"");
    if (w->head.failed) {
        out->failed = 1;
        return;
    }

    for (i = 0; i <= h->n_bounds; i++) {
        cumulative += h->buckets[i];
        le = expo_le(w, h, i, &le_len);
        if (buf_reserve(out, w->head.len + le_len + 3) != 0) {
            return;
        }
        memcpy(out->data + out->len, w->head.data, w->head.len);
        out->len += w->head.len;
        memcpy(out->data + out->len, le, le_len);
        out->len += le_len;
        memcpy(out->data + out->len, "\"} ", 3);
        out->len += 3;
        buf_u64(out, cumulative);

        if (w->format == EXPO_OPENMETRICS && h->exemplars
            && h->exemplars[i].timestamp > 0)
        {
            expo_om_exemplar(out, &h->exemplars[i]);
        }

        buf_put(out, "\n", 1);
    }

    expo_line_head(w, "_sum", 4);
    buf_double(out, h->sum);
    buf_put(out, "\n", 1);
    expo_line_head(w, "_count", 6);
    buf_u64(out, h->count);
    buf_put(out, "\n", 1);
}


/* The protobuf family is written whole, behind its varint length. */

void
expo_family_end(expo_writer_t *w)
{
    Io__Prometheus__Client__MetricFamily  mf =
        IO__PROMETHEUS__CLIENT__METRIC_FAMILY__INIT;
    char                                  name[256];
    size_t                                head;

    if (w->format == EXPO_VISIT) {
        w->visitor->family_end(w->series_data);
        return;
    }

    if (w->format != EXPO_PROTOBUF || w->family.len == 0) {
        return;
    }

    snprintf(name, sizeof(name), "%s%s", w->name,
             w->type == EXPO_COUNTER ? "_total"
             : w->type == EXPO_INFO ? "_info" : "");

    mf.name = name;
    mf.help = (char *) w->help;
    mf.has_type = 1;
    mf.type = w->type == EXPO_COUNTER
              ? IO__PROMETHEUS__CLIENT__METRIC_TYPE__COUNTER
              : w->type == EXPO_HISTOGRAM
                ? IO__PROMETHEUS__CLIENT__METRIC_TYPE__HISTOGRAM
                : IO__PROMETHEUS__CLIENT__METRIC_TYPE__GAUGE;

    head = io__prometheus__client__metric_family__get_packed_size(&mf);

    pb_varint(w->out, head + w->family.len);
    if (buf_reserve(w->out, head) == 0) {
        io__prometheus__client__metric_family__pack(&mf,
            (uint8_t *) w->out->data + w->out->len);
        w->out->len += head;
    }
    buf_put(w->out, w->family.data, w->family.len);
    buf_reset(&w->family);
}

void
expo_end(expo_writer_t *w)
{
    if (w->format == EXPO_OPENMETRICS) {
        buf_puts(w->out, "# EOF\n");
    }

    if (w->family.failed) {
        w->out->failed = 1;
    }

    buf_free(&w->family);
    buf_free(&w->labels);
    buf_free(&w->head);
}

/* Quality of one media range for a format we serve (0 if none). */

static double
expo_quality(const char *range, size_t len, expo_format_t *f)
{
    char         r[512];
    const char  *q;
    double       quality = 1.0;

    snprintf(r, sizeof(r), "%.*s", (int) len, range);

    q = strstr(r, "q=");
    if (q) {
        quality = strtod(q + 2, NULL);
    }

    if (strcasestr(r, "application/vnd.google.protobuf")
        && strstr(r, "io.prometheus.client.MetricFamily")
        && strstr(r, "encoding=delimited"))
    {
        *f = EXPO_PROTOBUF;
        return quality;
    }

    if (strcasestr(r, "application/openmetrics-text")) {
        *f = EXPO_OPENMETRICS;
        return quality;
    }

    if (strcasestr(r, "text/plain") || strstr(r, "*/*")) {
        *f = EXPO_TEXT;
        return quality * 0.999;     /* a tie goes to the richer format */
    }

    return 0;
}

/* Floats as OpenMetrics wants le values: 1.0, 0.005, +Inf. */

static void
expo_canonical(char *out, size_t size, double v)
{
    buf_t  b = { 0 };

    buf_double(&b, v);
    buf_put(&b, "", 1);
    snprintf(out, size, "%s%s", b.data ? b.data : "0",
             b.data && !strpbrk(b.data, ".eEnN") ? ".0" : "");
    buf_free(&b);
}

static void
expo_escaped(buf_t *b, const char *s, int help)
{
    size_t  n;

    for ( ;; ) {
        n = strcspn(s, help ? "\\\n" : "\\\n\"");
        buf_put(b, s, n);
        s += n;
        if (*s == '\0') {
            return;
        }

        buf_put(b, *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"", 2);
        s++;
    }
}

/* Escapes a sample's labels once, for all the lines that repeat them. */

static void
expo_label_set(expo_writer_t *w, const char *const *names,
    const char *const *values, int n)
{
    int  i;

    buf_reset(&w->labels);

    for (i = 0; i < n; i++) {
        if (i) {
            buf_put(&w->labels, ",", 1);
        }
        buf_puts(&w->labels, names[i]);
        buf_put(&w->labels, "=\"", 2);
        expo_escaped(&w->labels, values[i], 0);
        buf_put(&w->labels, "\"", 1);
    }

    if (w->labels.failed) {
        w->out->failed = 1;
    }
}

/* Writes the name, suffix and {labels} of a line, and the space before
   its value, in one piece. */

static void
expo_line_head(expo_writer_t *w, const char *suffix, size_t suffix_len)
{
    buf_t   *out = w->out;
    size_t   name_len = strlen(w->name);

    if (buf_reserve(out, name_len + suffix_len + w->labels.len + 3) != 0) {
        return;
    }

    memcpy(out->data + out->len, w->name, name_len);
    out->len += name_len;
    memcpy(out->data + out->len, suffix, suffix_len);
    out->len += suffix_len;

    if (w->labels.len) {
        out->data[out->len++] = '{';
        memcpy(out->data + out->len, w->labels.data, w->labels.len);
        out->len += w->labels.len;
        out->data[out->len++] = '}';
    }

    out->data[out->len++] = ' ';
}

static const char *
expo_le(expo_writer_t *w, const histogram_t *h, int i, size_t *len)
{
    int  b;

    if (i == h->n_bounds) {
        *len = 4;
        return "+Inf";
    }

    if (w->le_bounds != h->bounds || w->le_n != h->n_bounds) {
        for (b = 0; b < h->n_bounds; b++) {
            expo_canonical(w->le[b], sizeof(w->le[b]), h->bounds[b]);
            w->le_len[b] = strlen(w->le[b]);
        }
        w->le_bounds = h->bounds;
        w->le_n = h->n_bounds;
    }

    *len = w->le_len[i];
    return w->le[i];
}

static void
expo_om_exemplar(buf_t *b, const exemplar_t *e)
{
    static const char   trace[] = " # {trace_id=\"", span[] = "\",span_id=\"",
                        end[] = "\"} ";
    char                line[sizeof(trace) + sizeof(span) + sizeof(end) + 48];
    char               *p = line;

    /* a printf a piece was half of an OpenMetrics scrape */
    memcpy(p, trace, sizeof(trace) - 1);
    p += sizeof(trace) - 1;
    text_hex(p, e->trace_id, 16);
    p += 32;
    memcpy(p, span, sizeof(span) - 1);
    p += sizeof(span) - 1;
    text_hex(p, e->span_id, 8);
    p += 16;
    memcpy(p, end, sizeof(end) - 1);
    p += sizeof(end) - 1;
    buf_put(b, line, (size_t) (p - line));

    buf_double(b, e->value);
    buf_put(b, " ", 1);
    buf_millis(b, e->timestamp);
}

static void
expo_proto_metric(expo_writer_t *w, Io__Prometheus__Client__Metric *m,
    const char *const *names, const char *const *values, int n)
{
    Io__Prometheus__Client__LabelPair   pairs[8], *ptrs[8];
    size_t                              size;
    int                                 i;

    for (i = 0; i < n && i < 8; i++) {
        io__prometheus__client__label_pair__init(&pairs[i]);
        pairs[i].name = (char *) names[i];
        pairs[i].value = (char *) values[i];
        ptrs[i] = &pairs[i];
    }

    m->n_label = (size_t) i;
    m->label = ptrs;

    size = io__prometheus__client__metric__get_packed_size(m);

    /* field 4 (metric) of MetricFamily, length-delimited */
    buf_put(&w->family, "\x22", 1);
    pb_varint(&w->family, size);
    if (buf_reserve(&w->family, size) == 0) {
        io__prometheus__client__metric__pack(m,
            (uint8_t *) w->family.data + w->family.len);
        w->family.len += size;
    }
}

static void
expo_exemplar_proto(const exemplar_t *e, Io__Prometheus__Client__Exemplar *x,
    Io__Prometheus__Client__LabelPair *pairs,
    Io__Prometheus__Client__LabelPair **ptrs,
    Io__Prometheus__Client__Timestamp *ts, char *ids)
{
    text_hex(ids, e->trace_id, 16);
    text_hex(ids + 33, e->span_id, 8);

    io__prometheus__client__label_pair__init(&pairs[0]);
    io__prometheus__client__label_pair__init(&pairs[1]);
    pairs[0].name = "trace_id";
    pairs[0].value = ids;
    pairs[1].name = "span_id";
    pairs[1].value = ids + 33;
    ptrs[0] = &pairs[0];
    ptrs[1] = &pairs[1];

    io__prometheus__client__timestamp__init(ts);
    ts->has_seconds = ts->has_nanos = 1;
    ts->seconds = (int64_t) e->timestamp;
    ts->nanos = (int32_t) ((e->timestamp - (double) ts->seconds) * 1e9);

    io__prometheus__client__exemplar__init(x);
    x->n_label = 2;
    x->label = ptrs;
    x->has_value = 1;
    x->value = e->value;
    x->timestamp = ts;
}

static void
expo_proto_histogram(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, const histogram_t *h)
{
    Io__Prometheus__Client__Metric       m =
        IO__PROMETHEUS__CLIENT__METRIC__INIT;
    Io__Prometheus__Client__Histogram    hp =
        IO__PROMETHEUS__CLIENT__HISTOGRAM__INIT;
    Io__Prometheus__Client__Bucket       buckets[CONFIG_MAX_BUCKETS];
    Io__Prometheus__Client__Bucket      *bucket_ptrs[CONFIG_MAX_BUCKETS];
    Io__Prometheus__Client__Exemplar     ex[CONFIG_MAX_BUCKETS];
    Io__Prometheus__Client__LabelPair    ex_pairs[CONFIG_MAX_BUCKETS][2];
    Io__Prometheus__Client__LabelPair   *ex_ptrs[CONFIG_MAX_BUCKETS][2];
    Io__Prometheus__Client__Timestamp    ex_ts[CONFIG_MAX_BUCKETS];
    char                                 ex_ids[CONFIG_MAX_BUCKETS][50];
    Io__Prometheus__Client__BucketSpan   spans[HISTOGRAM_MAX_NATIVE];
    Io__Prometheus__Client__BucketSpan  *span_ptrs[HISTOGRAM_MAX_NATIVE];
    int64_t                              deltas[HISTOGRAM_MAX_NATIVE];
    uint64_t                             cumulative = 0, prev = 0;
    uint32_t                             i, n_spans = 0, n_deltas = 0;
    int32_t                              last_end = 0;
    int                                  b;

    hp.has_sample_count = hp.has_sample_sum = 1;
    hp.sample_count = h->count;
    hp.sample_sum = h->sum;

    for (b = 0; b < h->n_bounds; b++) {
        cumulative += h->buckets[b];
        io__prometheus__client__bucket__init(&buckets[b]);
        buckets[b].has_cumulative_count = buckets[b].has_upper_bound = 1;
        buckets[b].cumulative_count = cumulative;
        buckets[b].upper_bound = h->bounds[b];
        if (h->exemplars && h->exemplars[b].timestamp > 0) {
            expo_exemplar_proto(&h->exemplars[b], &ex[b], ex_pairs[b],
                                ex_ptrs[b], &ex_ts[b], ex_ids[b]);
            buckets[b].exemplar = &ex[b];
        }
        bucket_ptrs[b] = &buckets[b];
    }

    hp.n_bucket = (size_t) h->n_bounds;
    hp.bucket = bucket_ptrs;

    /* native: schema 3, spans over runs of non-empty buckets */
    hp.has_schema = hp.has_zero_threshold = hp.has_zero_count = 1;
    hp.schema = HISTOGRAM_SCHEMA;
    hp.zero_threshold = HISTOGRAM_ZERO_THRESHOLD;
    hp.zero_count = h->zero_count;

    for (i = 0; i < h->native_len; i++) {
        if (h->native[i] == 0) {
            continue;
        }

        if (n_spans == 0 || i == 0 || h->native[i - 1] == 0) {
            io__prometheus__client__bucket_span__init(&spans[n_spans]);
            spans[n_spans].has_offset = spans[n_spans].has_length = 1;
            spans[n_spans].offset = n_spans == 0
                                    ? h->native_first + (int32_t) i
                                    : (int32_t) i - last_end;
            spans[n_spans].length = 0;
            span_ptrs[n_spans] = &spans[n_spans];
            n_spans++;
        }

        spans[n_spans - 1].length++;
        last_end = (int32_t) i + 1;
        deltas[n_deltas++] = (int64_t) h->native[i] - (int64_t) prev;
        prev = h->native[i];
    }

    hp.n_positive_span = n_spans;
    hp.positive_span = span_ptrs;
    hp.n_positive_delta = n_deltas;
    hp.positive_delta = deltas;

    m.histogram = &hp;
    expo_proto_metric(w, &m, names, values, n);
}

/* A histogram as the _bucket, _sum and _count samples /metrics shows. */

static void
expo_series_histogram(expo_writer_t *w, const char *const *names,
    const char *const *values, int n, const histogram_t *h)
{
    char      bucket[256], sum[256], count[256];
    uint64_t  cumulative = 0;
    size_t    le_len;
    int       i;

    snprintf(bucket, sizeof(bucket), "%s_bucket", w->name);
    snprintf(sum, sizeof(sum), "%s_sum", w->name);
    snprintf(count, sizeof(count), "%s_count", w->name);

    for (i = 0; i <= h->n_bounds; i++) {
        cumulative += h->buckets[i];
        w->series(w->series_data, bucket, names, values, n, expo_le(w, h, i, &le_len),
                  (double) cumulative);
    }

    w->series(w->series_data, sum, names, values, n, NULL, h->sum);
    w->series(w->series_data, count, names, values, n, NULL,
              (double) h->count);
}
