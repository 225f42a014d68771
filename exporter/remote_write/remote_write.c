/* Prometheus remote-write.  See remote_write.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "collector.h"
#include "compress.h"
#include "label_rules.h"
#include "log.h"
#include "remote_write.h"
#include "prometheus/remote.pb-c.h"

#define RW_BACKOFF_FIRST   0.5
#define RW_BACKOFF_MAX     30.0

struct remote_write {
    collector_t                   c;
    remote_write_config_t         cfg;      /* its own copy */
    store_t                      *store;
    snapshot_t                    snap;     /* the collector thread's */
    destination_t                *dest;
};

static void rw_collect(collector_t *c, double start, int last);
static const char *rw_org(const remote_write_t *rw, const snapshot_t *s,
    const snap_sample_t *sample);

void
remote_write_config_defaults(remote_write_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->interval = 15;
    cfg->max_samples = 2000;
    cfg->sink.timeout_ms = 10000;
    cfg->sink.queue_bytes = 32 << 20;
}

void
remote_write_config_free(remote_write_config_t *cfg)
{
    destination_config_free(&cfg->sink);
    free(cfg->org_id);
    free(cfg->operator_tenant);
    memset(cfg, 0, sizeof(*cfg));
}

remote_write_t *
remote_write_start(const remote_write_config_t *cfg, store_t *store,
    delivery_t *d, char *err, size_t errlen)
{
    remote_write_t      *rw;
    destination_spec_t   spec;
    int                  rc;

    if (cfg->sink.url == NULL) {
        return NULL;
    }

    rw = calloc(1, sizeof(remote_write_t));
    if (rw == NULL) {
        snprintf(err, errlen, "remote_write: out of memory");
        return NULL;
    }

    /* a copy of its own: the sidecar's configuration may be reloaded */
    rw->cfg = *cfg;
    rc = destination_config_copy(&rw->cfg.sink, &cfg->sink);
    rc |= config_copy_string(&rw->cfg.org_id, cfg->org_id);
    rc |= config_copy_string(&rw->cfg.operator_tenant, cfg->operator_tenant);
    if (rc != 0) {
        snprintf(err, errlen, "remote_write: out of memory");
        goto failed;
    }
    cfg = &rw->cfg;
    rw->store = store;

    remote_write_destination(cfg, &spec);
    rw->dest = delivery_add(d, &spec, err, errlen);
    if (rw->dest == NULL) {
        goto failed;
    }

    rw->c.name = "rw-collect";
    rw->c.interval = cfg->interval;
    rw->c.collect_first = 1;
    rw->c.collect = rw_collect;
    rw->c.data = rw;
    if (collector_start(&rw->c, err, errlen) != 0) {
        goto failed;
    }

    sidecar_log("info", "remote-writing series to %s every %gs", cfg->sink.url,
                cfg->interval);
    return rw;

failed:
    remote_write_config_free(&rw->cfg);
    free(rw);
    return NULL;
}

void
remote_write_destination(const remote_write_config_t *cfg,
    destination_spec_t *spec)
{
    static const char *const  version[] = {
        "X-Prometheus-Remote-Write-Version: 0.1.0", NULL
    };

    /* the newest samples say the most: past the bound the oldest go */
    memset(spec, 0, sizeof(*spec));
    spec->name = "remote_write";
    spec->legacy = "remote_write";
    spec->items = "samples";
    spec->cfg = &cfg->sink;
    spec->content_type = "application/x-protobuf";
    spec->content_encoding = "snappy";
    spec->headers = version;
    spec->backoff_first = RW_BACKOFF_FIRST;
    spec->backoff_max = RW_BACKOFF_MAX;
    spec->overflow = OVERFLOW_DROP_OLDEST;
}

void
remote_write_stop(remote_write_t *rw)
{
    if (rw == NULL) {
        return;
    }

    collector_stop(&rw->c);
    snapshot_free(&rw->snap);
    remote_write_config_free(&rw->cfg);
    free(rw);
}

/* Snapshot -> one payload per tenant and max_samples samples. */

static int
rw_org_compare(const void *a, const void *b, void *data)
{
    const char *const  *orgs = data;
    const char         *x = orgs[*(const size_t *) a];
    const char         *y = orgs[*(const size_t *) b];
    int                 c = strcmp(x, y);

    if (c != 0) {
        return c;
    }
    return *(const size_t *) a < *(const size_t *) b ? -1 : 1;
}

static void
rw_collect(collector_t *c, double start, int last)
{
    remote_write_t *rw = c->data;
    snapshot_t     *s = &rw->snap;
    size_t         *idx, i, first, end;
    const char    **orgs;
    payload_t      *item;
    buf_t           body = { 0 };

    (void) start;
    (void) last;

    if (snapshot_take(s, rw->store) != 0) {
        sidecar_log("error", "remote_write: out of memory taking a snapshot");
    }

    idx = malloc(sizeof(size_t) * (s->n_samples + 1));
    orgs = malloc(sizeof(char *) * (s->n_samples + 1));
    if (idx == NULL || orgs == NULL) {
        delivery_lost(rw->dest, s->n_samples);
        free(idx);
        free(orgs);
        return;
    }

    for (i = 0; i < s->n_samples; i++) {
        idx[i] = i;
        orgs[i] = rw_org(rw, s, &s->samples[i]);
    }
    qsort_r(idx, s->n_samples, sizeof(size_t), rw_org_compare, orgs);

    for (first = 0; first < s->n_samples; first = end) {
        for (end = first + 1;
             end < s->n_samples && end - first < (size_t) rw->cfg.max_samples
             && strcmp(orgs[idx[end]], orgs[idx[first]]) == 0;
             end++)
        {
            /* one tenant, at most max_samples */
        }

        buf_reset(&body);
        item = calloc(1, sizeof(payload_t));
        if (item == NULL
            || remote_write_encode(s, idx + first, end - first, &body) != 0)
        {
            delivery_lost(rw->dest, end - first);
            free(item);
            continue;
        }

        item->data = (unsigned char *) body.data;
        item->len = body.len;
        item->items = end - first;
        snprintf(item->org, sizeof(item->org), "%s", orgs[idx[first]]);
        memset(&body, 0, sizeof(body));
        delivery_submit(rw->dest, item);
    }

    buf_free(&body);
    free(idx);
    free(orgs);
}

/* The X-Scope-OrgID of a sample ("" for none).  Series without a tenant, of
   no tenant ("none"), past the tenant cap or with a name a receiver would
   refuse are the operator's. */

static const char *
rw_org(const remote_write_t *rw, const snapshot_t *s,
    const snap_sample_t *sample)
{
    const char  *tenant;

    switch (rw->cfg.tenant_header) {
    case TENANT_HEADER_FIXED:
        return rw->cfg.org_id;
    case TENANT_HEADER_PER_TENANT:
        if (sample->tenant < 0) {
            return rw->cfg.operator_tenant;
        }
        tenant = snapshot_str(s, (uint32_t) sample->tenant);
        if (tenant_is_nobody(tenant) || !org_id_valid(tenant)) {
            return rw->cfg.operator_tenant;
        }
        return tenant;
    default:
        return "";
    }
}

int
remote_write_encode(const snapshot_t *s, const size_t *idx, size_t n,
    buf_t *out)
{
    Prometheus__WriteRequest   req = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries    *series = NULL, **series_ptrs = NULL;
    Prometheus__Sample        *samples = NULL, **sample_ptrs = NULL;
    Prometheus__Label         *labels = NULL, **label_ptrs = NULL;
    size_t                     i, l, n_labels = 0, k = 0, packed_len, max;
    uint8_t                   *packed = NULL;
    int                        rc = -1;

    for (i = 0; i < n; i++) {
        n_labels += s->samples[idx[i]].n_labels;
    }

    series = calloc(n + 1, sizeof(*series));
    series_ptrs = calloc(n + 1, sizeof(*series_ptrs));
    samples = calloc(n + 1, sizeof(*samples));
    sample_ptrs = calloc(n + 1, sizeof(*sample_ptrs));
    labels = calloc(n_labels + 1, sizeof(*labels));
    label_ptrs = calloc(n_labels + 1, sizeof(*label_ptrs));
    if (!series || !series_ptrs || !samples || !sample_ptrs || !labels
        || !label_ptrs)
    {
        goto done;
    }

    for (i = 0; i < n; i++) {
        const snap_sample_t  *in = &s->samples[idx[i]];

        prometheus__time_series__init(&series[i]);
        prometheus__sample__init(&samples[i]);
        samples[i].value = in->value;
        samples[i].timestamp = s->timestamp_ms;
        sample_ptrs[i] = &samples[i];
        series[i].n_samples = 1;
        series[i].samples = &sample_ptrs[i];
        series[i].n_labels = in->n_labels;
        series[i].labels = &label_ptrs[k];

        for (l = 0; l < in->n_labels; l++, k++) {
            const snap_label_t  *sl = &s->labels[in->first_label + l];

            prometheus__label__init(&labels[k]);
            labels[k].name = (char *) snapshot_str(s, sl->name);
            labels[k].value = (char *) snapshot_str(s, sl->value);
            label_ptrs[k] = &labels[k];
        }
        series_ptrs[i] = &series[i];
    }

    req.n_timeseries = n;
    req.timeseries = series_ptrs;

    packed_len = prometheus__write_request__get_packed_size(&req);
    packed = malloc(packed_len + 1);
    max = compress_bound(COMPRESS_SNAPPY, packed_len);
    if (packed == NULL || buf_reserve(out, max) != 0) {
        goto done;
    }

    prometheus__write_request__pack(&req, packed);
    max = compress_fast(COMPRESS_SNAPPY, packed, packed_len,
                        out->data + out->len, max);
    if (max == 0) {
        goto done;
    }
    out->len += max;
    rc = 0;

done:
    free(series);
    free(series_ptrs);
    free(samples);
    free(sample_ptrs);
    free(labels);
    free(label_ptrs);
    free(packed);
    return rc;
}

