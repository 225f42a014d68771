/* Business metrics (obs_metric).  See business_metrics.h. */

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "business_metrics.h"
#include "hash.h"
#include "labels.h"
#include "metric_names.h"
#include "stats.h"
#include "obs/v1/framing.h"

#define BUSINESS_BUCKETS     4096       /* hash chains, a power of two */
#define BUSINESS_NAME_MAX    METRIC_NAME_MAX
#define BUSINESS_LABEL_MAX   METRIC_LABEL_MAX
#define BUSINESS_VALUE_MAX   METRIC_VALUE_MAX

typedef struct bseries {
    struct bseries  *next;      /* the family's list */
    struct bseries  *chain;     /* the hash chain */
    uint64_t         hash;
    time_t           updated;
    uint64_t         observed_ns;   /* gauges: when value was true */
    double           value;
    int              family;
    int              from_request;  /* counted in the share */
    size_t           key_len;
    char             key[];     /* service, route, tenant, label value */
} bseries_t;

typedef struct {
    char        name[BUSINESS_NAME_MAX + 1];
    char        base[BUSINESS_NAME_MAX + 1];   /* counters: no _total */
    char        label[BUSINESS_LABEL_MAX + 1];
    int         counter;
    bseries_t  *series;
    char       *values[BUSINESS_MAX_VALUES];   /* label values admitted */
    int         n_values;
} bfamily_t;

struct business {
    pthread_mutex_t  lock;
    long             max_series;
    long             n_series;
    long             max_from_request;
    long             n_from_request;    /* series with labels made from
                                           requests */
    bfamily_t        families[BUSINESS_MAX_FAMILIES];
    int              n_families;
    bseries_t       *table[BUSINESS_BUCKETS];
    atomic_ullong    rejected[BUSINESS_REJECT_REASONS];
};

static const char *const  business_reject_names[BUSINESS_REJECT_REASONS] = {
    "not_a_number", "not_finite", "negative", "invalid_metric", "conflict",
    "too_many_metrics"
};

static void business_observe(business_t *b,
    const Obs__V1__MetricObservation *o, const char *service,
    const char *route, const char *tenant, int from_request, time_t now,
    uint64_t at_ns);
static int business_family(business_t *b,
    const Obs__V1__MetricObservation *o, business_reject_t *why);
static const char *business_label_value(bfamily_t *f,
    const ProtobufCBinaryData *raw, char *buf);
static bseries_t *business_series(business_t *b, int family,
    const char **labels, int from_request, time_t now);
static int business_text_is(const char *s, const ProtobufCBinaryData *b);
static void business_family_free(business_t *b, int family);

business_t *
business_new(long max_series)
{
    business_t  *b;

    b = calloc(1, sizeof(business_t));
    if (b == NULL) {
        return NULL;
    }

    pthread_mutex_init(&b->lock, NULL);
    b->max_series = max_series;
    b->max_from_request = max_series;
    return b;
}

void
business_free(business_t *b)
{
    bseries_t  *se, *next;
    int         f, i;

    if (b == NULL) {
        return;
    }

    for (f = 0; f < b->n_families; f++) {
        for (se = b->families[f].series; se; se = next) {
            next = se->next;
            free(se);
        }
        for (i = 0; i < b->families[f].n_values; i++) {
            free(b->families[f].values[i]);
        }
    }

    pthread_mutex_destroy(&b->lock);
    free(b);
}

void
business_set_max_series(business_t *b, long max_series)
{
    pthread_mutex_lock(&b->lock);
    b->max_series = max_series;
    pthread_mutex_unlock(&b->lock);
}

void
business_set_share(business_t *b, long max_from_request)
{
    pthread_mutex_lock(&b->lock);
    b->max_from_request = max_from_request;
    pthread_mutex_unlock(&b->lock);
}

void
business_record(business_t *b, const Obs__V1__Record *r, const char *service,
    const char *route, const char *tenant, int from_request, time_t now)
{
    size_t    i;
    uint64_t  at_ns;

    if (r->n_metrics == 0) {
        return;
    }

    pthread_mutex_lock(&b->lock);

    /* the answer's headers hold the values: the request's end */
    at_ns = r->start_time_unix_nano
            ? r->start_time_unix_nano + r->duration_us * 1000 : 0;

    for (i = 0; i < r->n_metrics; i++) {
        business_observe(b, r->metrics[i], service, route, tenant,
                         from_request, now, at_ns);
    }

    pthread_mutex_unlock(&b->lock);
}

unsigned long long
business_rejected(business_t *b, business_reject_t why)
{
    return atomic_load(&b->rejected[why]);
}

int
business_parse(const uint8_t *text, size_t len, int counter, double *value,
    business_reject_t *why)
{
    char    buf[BUSINESS_VALUE_MAX + 1], *end;
    size_t  i, digits = 0;

    *why = BUSINESS_NOT_A_NUMBER;

    if (len == 0 || len > BUSINESS_VALUE_MAX) {
        return -1;
    }

    memcpy(buf, text, len);
    buf[len] = '\0';

    for (i = 0; i < len; i++) {
        if (buf[i] >= '0' && buf[i] <= '9') {
            digits++;
        } else if (strchr("+-.eE", buf[i]) == NULL || buf[i] == '\0') {
            /* "nan", "inf", "Infinity": numbers Prometheus cannot sum */
            if (strcasecmp(buf + (buf[0] == '-' || buf[0] == '+'), "nan") == 0
                || strcasecmp(buf + (buf[0] == '-' || buf[0] == '+'), "inf")
                   == 0
                || strcasecmp(buf + (buf[0] == '-' || buf[0] == '+'),
                              "infinity") == 0)
            {
                *why = BUSINESS_NOT_FINITE;
            }
            return -1;
        }
    }

    if (digits == 0) {
        return -1;
    }

    *value = strtod(buf, &end);

    if (end != buf + len) {
        return -1;
    }

    if (!isfinite(*value)) {
        *why = BUSINESS_NOT_FINITE;         /* 1e999 */
        return -1;
    }

    if (counter && *value < 0) {
        *why = BUSINESS_NEGATIVE;
        return -1;
    }

    if (*value == 0) {
        *value = 0;                          /* no "-0" */
    }

    return 0;
}

/* Under the lock: one observation into its series. */

static void
business_observe(business_t *b, const Obs__V1__MetricObservation *o,
    const char *service, const char *route, const char *tenant,
    int from_request, time_t now, uint64_t at_ns)
{
    const char         *labels[4];
    char                buf[LABEL_BUF_LEN];
    bfamily_t          *f;
    bseries_t          *se;
    business_reject_t   why;
    double              v;
    int                 fi;

    fi = business_family(b, o, &why);
    if (fi < 0) {
        atomic_fetch_add(&b->rejected[why], 1);
        return;
    }

    f = &b->families[fi];

    if (business_parse(o->value.data, o->value.len, f->counter, &v, &why)
        != 0)
    {
        atomic_fetch_add(&b->rejected[why], 1);
        return;
    }

    labels[0] = service;
    labels[1] = route;
    labels[2] = tenant;
    labels[3] = f->label[0] ? business_label_value(f, &o->label_value, buf)
                            : "";

    se = business_series(b, fi, labels, from_request, now);
    if (se == NULL) {
        STATS_INC(store_nomem);
        return;
    }

    /* a sum past DBL_MAX would stay +Inf for good: that value is refused */
    if (f->counter && !isfinite(se->value + v)) {
        atomic_fetch_add(&b->rejected[BUSINESS_NOT_FINITE], 1);
        return;
    }

    se->updated = now;

    if (f->counter) {
        se->value += v;
        return;
    }

    /*
     * "The last value" is the one observed last, not the one that arrived
     * last: each nginx worker sends its batch when it fills or its flush
     * timer fires, so a worker's older value can come after another's
     * newer one.  A record without a time (0) is taken as it comes.
     */
    if (at_ns && at_ns < se->observed_ns) {
        return;
    }

    se->value = v;
    if (at_ns > se->observed_ns) {
        se->observed_ns = at_ns;
    }
}

/*
 * The family of an observation, made on first sight; a name means one
 * type and label name (nginx -t checks this within one configuration,
 * this across the gateways that report here).
 */

static int
business_family(business_t *b, const Obs__V1__MetricObservation *o,
    business_reject_t *why)
{
    bfamily_t  *f;
    char        base[BUSINESS_NAME_MAX + 1];
    size_t      len = o->name.len;
    int         i, free_slot = -1, counter = (o->type == OBS_METRIC_COUNTER);

    *why = BUSINESS_INVALID_METRIC;

    /* the rules nginx -t applied, again: a datagram may be forged */

    if ((o->type != OBS_METRIC_COUNTER && o->type != OBS_METRIC_GAUGE)
        || metric_name_check(o->name.data, o->name.len, counter, NULL)
           != METRIC_NAME_OK
        || (o->label_name.len
            && metric_label_check(o->label_name.data, o->label_name.len)
               != METRIC_LABEL_OK))
    {
        return -1;
    }

    memcpy(base, o->name.data, counter ? len - 6 : len);
    base[counter ? len - 6 : len] = '\0';

    for (i = 0; i < b->n_families; i++) {
        f = &b->families[i];

        if (f->name[0] == '\0') {
            free_slot = free_slot < 0 ? i : free_slot;  /* expired */
            continue;
        }

        if (business_text_is(f->name, &o->name)) {
            if (f->counter != counter
                || !business_text_is(f->label, &o->label_name))
            {
                *why = BUSINESS_CONFLICT;
                return -1;
            }
            return i;
        }

        /* a counter "x_total" and a gauge "x" would be one family */

        if (strcmp(f->base, base) == 0) {
            *why = BUSINESS_CONFLICT;
            return -1;
        }
    }

    if (free_slot < 0) {
        if (b->n_families == BUSINESS_MAX_FAMILIES) {
            *why = BUSINESS_TOO_MANY_METRICS;
            return -1;
        }
        free_slot = b->n_families++;
    }

    f = &b->families[free_slot];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, o->name.data, len);
    memcpy(f->base, base, strlen(base));
    if (o->label_name.len) {            /* no label: data may be NULL */
        memcpy(f->label, o->label_name.data, o->label_name.len);
    }
    f->counter = counter;

    return free_slot;
}

/*
 * A family whose series all expired goes with its label values: a reload
 * may then give its name another type or label, or declare other values.
 */

static void
business_family_free(business_t *b, int family)
{
    bfamily_t  *f = &b->families[family];
    int         i;

    for (i = 0; i < f->n_values; i++) {
        free(f->values[i]);
    }

    memset(f, 0, sizeof(*f));

    while (b->n_families > 0 && b->families[b->n_families - 1].name[0] == 0) {
        b->n_families--;
    }
}

/* A label value: one of at most BUSINESS_MAX_VALUES per metric. */

static const char *
business_label_value(bfamily_t *f, const ProtobufCBinaryData *raw, char *buf)
{
    int  i;

    label_sanitize(raw->data, raw->len, buf);

    for (i = 0; i < f->n_values; i++) {
        if (strcmp(f->values[i], buf) == 0) {
            return f->values[i];
        }
    }

    if (f->n_values == BUSINESS_MAX_VALUES
        || (f->values[f->n_values] = strdup(buf)) == NULL)
    {
        STATS_INC(overflow[OVERFLOW_SERIES]);
        return LABEL_OVERFLOW;
    }

    return f->values[f->n_values++];
}

/*
 * Finds or makes a series.  Past the cap, or for labels made from requests
 * past the share, an observation still counts, in its family's one series
 * with every label "__overflow__", for which room is always kept (one per
 * family), so the cap holds within that margin.
 */

static bseries_t *
business_series(business_t *b, int family, const char **labels,
    int from_request, time_t now)
{
    static const char  *over[4] = {
        label_overflow, label_overflow, label_overflow, label_overflow
    };

    char        key[4 * LABEL_BUF_LEN];
    size_t      len = 0, n;
    uint64_t    h;
    bseries_t  *se;
    int         i, overflowed = 0;

    for ( ;; ) {
        for (i = 0, len = 0; i < 4; i++) {
            n = strlen(labels[i]) + 1;
            memcpy(key + len, labels[i], n);
            len += n;
        }

        h = hash_bytes(key, len, (uint64_t) family);

        for (se = b->table[h & (BUSINESS_BUCKETS - 1)]; se; se = se->chain) {
            if (se->hash == h && se->family == family && se->key_len == len
                && memcmp(se->key, key, len) == 0)
            {
                return se;
            }
        }

        if (overflowed
            || (b->n_series < b->max_series
                && (!from_request
                    || b->n_from_request < b->max_from_request)))
        {
            break;
        }

        STATS_INC(overflow[OVERFLOW_SERIES]);
        labels = over;
        overflowed = 1;
        from_request = 0;
    }

    se = calloc(1, sizeof(bseries_t) + len);
    if (se == NULL) {
        return NULL;
    }

    se->hash = h;
    se->family = family;
    se->from_request = from_request;
    se->key_len = len;
    se->updated = now;
    memcpy(se->key, key, len);

    se->chain = b->table[h & (BUSINESS_BUCKETS - 1)];
    b->table[h & (BUSINESS_BUCKETS - 1)] = se;
    se->next = b->families[family].series;
    b->families[family].series = se;
    b->n_series++;
    b->n_from_request += from_request;

    return se;
}

/* Whether the bytes are the string (empty bytes may have no data). */

static int
business_text_is(const char *s, const ProtobufCBinaryData *b)
{
    return strlen(s) == b->len
           && (b->len == 0 || memcmp(s, b->data, b->len) == 0);
}

void
business_expire(business_t *b, time_t before)
{
    bseries_t  **pp, *se;
    int          f;

    pthread_mutex_lock(&b->lock);

    for (f = 0; f < b->n_families; f++) {
        for (pp = &b->families[f].series; *pp; ) {
            se = *pp;
            if (se->updated >= before) {
                pp = &se->next;
                continue;
            }
            *pp = se->next;
            bseries_t **cp = &b->table[se->hash & (BUSINESS_BUCKETS - 1)];
            while (*cp != se) {
                cp = &(*cp)->chain;
            }
            *cp = se->chain;
            b->n_series--;
            b->n_from_request -= se->from_request;
            free(se);
            STATS_INC(series_expired);
        }

        if (b->families[f].series == NULL && b->families[f].name[0]) {
            business_family_free(b, f);
        }
    }

    pthread_mutex_unlock(&b->lock);
}

void
business_metrics(expo_writer_t *w, void *data)
{
    static const char  *names[4] = { "service", "route", "tenant", NULL };

    business_t   *b = data;
    bfamily_t    *f;
    bseries_t    *se;
    const char   *values[4], *n[4];
    size_t        off;
    int           fi, i;
    unsigned long long  counts[BUSINESS_REJECT_REASONS];

    pthread_mutex_lock(&b->lock);

    for (fi = 0; fi < b->n_families; fi++) {
        f = &b->families[fi];

        if (f->name[0] == '\0') {
            continue;                        /* expired, free for another */
        }

        expo_family(w, f->base, f->counter
                    ? "Business counter from nginx (obs_metric)."
                    : "Business gauge from nginx (obs_metric): the last "
                      "value observed.",
                    NULL, f->counter ? EXPO_COUNTER : EXPO_GAUGE);

        memcpy(n, names, sizeof(n));
        n[3] = f->label;

        for (se = f->series; se; se = se->next) {
            for (i = 0, off = 0; i < 4; i++) {
                values[i] = se->key + off;
                off += strlen(values[i]) + 1;
            }
            expo_sample(w, n, values, f->label[0] ? 4 : 3, se->value);
        }

        expo_family_end(w);
    }

    pthread_mutex_unlock(&b->lock);

    for (i = 0; i < BUSINESS_REJECT_REASONS; i++) {
        counts[i] = atomic_load(&b->rejected[i]);
    }

    expo_family(w, "obs_business_rejected",
                "obs_metric observations not counted, by reason.", NULL,
                EXPO_COUNTER);
    for (i = 0; i < BUSINESS_REJECT_REASONS; i++) {
        const char  *label = "reason";

        expo_sample(w, &label, &business_reject_names[i], 1,
                    (double) counts[i]);
    }
    expo_family_end(w);
}

