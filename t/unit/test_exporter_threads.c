/*
 * Decode once: with any number of exporter threads a datagram is decoded
 * twice (ingest for the metrics, one exporter thread for them all), every
 * record reaches exactly one build thread, and a stream's records keep
 * their order.  Decodes are counted where they happen: the test is linked
 * with -Wl,--wrap for protobuf-c's Batch unpacking and for columns_next()
 * (reading one record in column form), so the counts hold whatever code
 * path does the decoding.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "aggregate.h"
#include "columns_reader.h"
#include "config.h"
#include "decoded.h"
#include "delivery.h"
#include "exporter.h"
#include "ingest.h"
#include "label_rules.h"
#include "store.h"
#include "timed_wait.h"
#include "unit.h"
#include "unit_config.h"

#define ROWS        12          /* records of a datagram in rows */
#define COLUMNS     60          /* and in column form */
#define DATAGRAMS   40
#define SERVICES    5
#define TENANTS     3

static atomic_ulong  unpacks, column_reads;

Obs__V1__Batch *__real_obs__v1__batch__unpack(ProtobufCAllocator *a,
    size_t len, const uint8_t *data);
int __real_columns_next(columns_reader_t *rd, Obs__V1__Record *r);

Obs__V1__Batch *
__wrap_obs__v1__batch__unpack(ProtobufCAllocator *a, size_t len,
    const uint8_t *data)
{
    atomic_fetch_add(&unpacks, 1);
    return __real_obs__v1__batch__unpack(a, len, data);
}

int
__wrap_columns_next(columns_reader_t *rd, Obs__V1__Record *r)
{
    int  more = __real_columns_next(rd, r);

    if (more) {
        atomic_fetch_add(&column_reads, 1);
    }
    return more;
}

static const char *const  services[SERVICES] = {
    "backend-api", "ml-engine", "billing", "search", ""
};
static const char *const  tenants[TENANTS] = { "t1", "t2", "" };

/* Record k's stream and its number (its request id: r<k>). */
static void
record_of(unsigned k, const char **service, unsigned *status,
    const char **tenant, char *id)
{
    static const unsigned  statuses[] = { 200, 201, 404, 503, 302 };

    *service = services[(k * 7 + k / 3) % SERVICES];
    *status = statuses[(k * 3 + k / 5) % 5];
    *tenant = tenants[(k / 2) % TENANTS];
    sprintf(id, "r%06u", k);
}

/* The numbers of a record's service and tenant in their tables. */
static unsigned
stream_service(const char *service)
{
    unsigned  i = 0;

    while (services[i] != service) {
        i++;
    }
    return i;
}

static unsigned
stream_tenant(const char *tenant)
{
    unsigned  i = 0;

    while (tenants[i] != tenant) {
        i++;
    }
    return i;
}

/* Adds text to a column batch's symbols; its number (0: the empty one). */
static uint32_t
add_symbol(Obs__V1__RecordColumns *c, const char *text)
{
    size_t  len = strlen(text);

    if (len) {
        memcpy(c->symbol_data.data + c->symbol_data.len, text, len);
        c->symbol_data.len += len;
        c->symbol_end[c->n_symbol_end++] = (uint32_t) c->symbol_data.len;
    }
    return len ? (uint32_t) c->n_symbol_end - 1 : 0;
}

static ProtobufCBinaryData
text(const char *s)
{
    ProtobufCBinaryData  b = { strlen(s), (uint8_t *) s };

    return b;
}

/*
 * Datagram d: ROWS records in rows, then COLUMNS in column form, numbered
 * from d * (ROWS + COLUMNS) on.  Returns its length in wire.
 */
static size_t
datagram(unsigned d, uint8_t *wire)
{
    static char             ids[ROWS + COLUMNS][16];
    static uint32_t         ends[1 + SERVICES + TENANTS + COLUMNS];
    static uint8_t          symbols[8192];
    Obs__V1__Batch          batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader    h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__RecordColumns  c = OBS__V1__RECORD_COLUMNS__INIT;
    Obs__V1__Record         rows[ROWS], *row_ptrs[ROWS];
    uint32_t                service[COLUMNS], tenant[COLUMNS];
    uint32_t                status[COLUMNS], id[COLUMNS];
    uint64_t                duration[COLUMNS], start[COLUMNS];
    uint32_t                service_symbol[SERVICES], tenant_symbol[TENANTS];
    const char             *svc, *ten;
    unsigned                i, k, st;

    c.symbol_data.data = symbols;
    c.symbol_end = ends;
    c.n_symbol_end = 1;
    for (i = 0; i < SERVICES; i++) {
        service_symbol[i] = add_symbol(&c, services[i]);
    }
    for (i = 0; i < TENANTS; i++) {
        tenant_symbol[i] = add_symbol(&c, tenants[i]);
    }

    for (i = 0; i < ROWS + COLUMNS; i++) {
        k = d * (ROWS + COLUMNS) + i;
        record_of(k, &svc, &st, &ten, ids[i]);

        if (i < ROWS) {
            obs__v1__record__init(&rows[i]);
            rows[i].service = text(svc);
            rows[i].tenant = text(ten);
            rows[i].status = st;
            rows[i].request_id = text(ids[i]);
            rows[i].duration_us = 1000;
            rows[i].start_time_unix_nano = 1795543032455000000ULL + k;
            row_ptrs[i] = &rows[i];
            continue;
        }

        service[i - ROWS] = service_symbol[stream_service(svc)];
        tenant[i - ROWS] = tenant_symbol[stream_tenant(ten)];
        id[i - ROWS] = add_symbol(&c, ids[i]);
        status[i - ROWS] = st;
        duration[i - ROWS] = 2000;
        start[i - ROWS] = 1795543032455000000ULL + k;
    }

    c.count = COLUMNS;
    c.service = service;
    c.tenant = tenant;
    c.status = status;
    c.request_id = id;
    c.duration_us = duration;
    c.start_time_unix_nano = start;
    c.n_service = c.n_tenant = c.n_status = c.n_request_id =
        c.n_duration_us = c.n_start_time_unix_nano = COLUMNS;

    h.schema_version = 2;
    h.pid = 1;
    batch.header = &h;
    batch.records = row_ptrs;
    batch.n_records = ROWS;
    batch.columns = &c;

    return obs__v1__batch__pack(&batch, wire);
}

/* The request id's number of a record (r<k>). */
static long
number_of(ProtobufCBinaryData id)
{
    char  s[16];

    if (id.len == 0 || id.len >= sizeof(s)) {
        return -1;
    }
    memcpy(s, id.data, id.len);
    s[id.len] = '\0';
    return strtol(s + 1, NULL, 10);
}

/* The stream a record is in, as the test numbers them. */
static unsigned
stream_of(unsigned k, int per_tenant)
{
    const char  *svc, *ten;
    unsigned     st, s;
    char         id[16];

    record_of(k, &svc, &st, &ten, id);
    s = stream_service(svc) * 3 + (st >= 500 ? 2 : st >= 400 ? 1 : 0);
    if (per_tenant) {
        s = s * TENANTS + stream_tenant(ten);
    }
    return s;
}

/*
 * The shared decoded form alone: one decoding, then each thread's walk
 * gives every record to exactly one thread, a stream to one thread only,
 * in datagram order.
 */
static void
test_partition(void)
{
    static const int  counts[] = { 1, 2, 4, 16 };
    decoded_t         d;
    decoded_reader_t  rd;
    const Obs__V1__Record  *r;
    uint8_t           wire[65536];
    size_t            len = datagram(3, wire);
    long              k, last, first = 3 * (ROWS + COLUMNS);
    int               seen[ROWS + COLUMNS], owner[64], t, i, ok, tenant;
    unsigned long     before;
    char              name[96];

    CHECK(decoded_init(&d, 8 * 1024 * 1024) == 0, "room for a datagram");

    for (tenant = 0; tenant <= 1; tenant++) {
        for (i = 0; i < (int) (sizeof(counts) / sizeof(counts[0])); i++) {
            memset(seen, 0, sizeof(seen));
            memset(owner, -1, sizeof(owner));
            ok = 1;

            before = atomic_load(&unpacks);
            decoded_fill(&d, wire, len, NULL, counts[i], tenant);
            snprintf(name, sizeof(name), "%d threads%s: decoded once",
                     counts[i], tenant ? " (per tenant)" : "");
            CHECK(atomic_load(&unpacks) - before == 1, name);

            before = atomic_load(&column_reads);
            for (t = 0; t < counts[i]; t++) {
                decoded_read(&rd, &d, t);
                last = -1;
                while ((r = decoded_next(&rd)) != NULL) {
                    k = number_of(r->request_id);
                    if (k < first || k >= first + ROWS + COLUMNS
                        || k <= last)
                    {
                        ok = 0;         /* a stranger, or out of order */
                        break;
                    }
                    last = k;
                    seen[k - first]++;
                    if (owner[stream_of((unsigned) k, tenant)] == -1) {
                        owner[stream_of((unsigned) k, tenant)] = t;
                    }
                    ok &= owner[stream_of((unsigned) k, tenant)] == t;
                }
            }

            for (k = 0; k < ROWS + COLUMNS; k++) {
                ok &= seen[k] == 1;
            }
            snprintf(name, sizeof(name), "%d threads%s: every record to "
                     "exactly one thread, a stream to one, in order",
                     counts[i], tenant ? " (per tenant)" : "");
            CHECK(ok, name);

            snprintf(name, sizeof(name), "%d threads%s: each record in "
                     "column form read once", counts[i],
                     tenant ? " (per tenant)" : "");
            CHECK(atomic_load(&column_reads) - before == COLUMNS, name);
        }
    }

    decoded_fill(&d, wire, 7, NULL, 2, 0);
    decoded_read(&rd, &d, 0);
    CHECK(decoded_next(&rd) == NULL, "a datagram that does not decode: "
          "nothing to read");

    decoded_free(&d);
}

/*
 * Records whose service (and tenant) the caps put under __overflow__:
 * decoded_over() gives each its verdict, and every one of them in one level
 * (per tenant: under the one __overflow__ org too) is one stream, built by
 * one thread, whatever service it named.
 */
static void
test_partition_over(void)
{
    decoded_t               d;
    decoded_reader_t        rd;
    const Obs__V1__Record  *r;
    uint8_t                 wire[65536], over[LABEL_OVER_BYTES(ROWS
                                                              + COLUMNS)];
    size_t                  len = datagram(5, wire);
    long                    k, first = 5 * (ROWS + COLUMNS);
    int                     owner[3], t, tenant, ok, marks_ok;
    unsigned                bits, want, st;
    const char             *svc, *ten;
    char                    id[16], name[96];

    CHECK(decoded_init(&d, 8 * 1024 * 1024) == 0, "room for a datagram");

    for (tenant = 0; tenant <= 1; tenant++) {
        bits = LABEL_OVER_SERVICE | (tenant ? LABEL_OVER_TENANT : 0);
        memset(over, 0, sizeof(over));
        for (k = 0; k < ROWS + COLUMNS; k += 2) {
            label_over_set(over, (size_t) k, bits);
        }

        decoded_fill(&d, wire, len, over, 16, tenant);
        memset(owner, -1, sizeof(owner));
        ok = marks_ok = 1;

        for (t = 0; t < 16; t++) {
            decoded_read(&rd, &d, t);
            while ((r = decoded_next(&rd)) != NULL) {
                k = number_of(r->request_id) - first;
                want = k % 2 == 0 ? bits : 0;
                marks_ok &= decoded_over(&rd) == want;
                if (want == 0) {
                    continue;
                }
                record_of((unsigned) (k + first), &svc, &st, &ten, id);
                st = st >= 500 ? 2 : st >= 400 ? 1 : 0;
                if (owner[st] == -1) {
                    owner[st] = t;
                }
                ok &= owner[st] == t;
            }
        }

        snprintf(name, sizeof(name), "%s: each record's verdict read back",
                 tenant ? "per tenant" : "by service");
        CHECK(marks_ok, name);
        snprintf(name, sizeof(name), "%s: __overflow__ of a level is one "
                 "stream, one thread", tenant ? "per tenant" : "by service");
        CHECK(ok, name);
    }

    decoded_fill(&d, wire, len, NULL, 16, 0);
    decoded_read(&rd, &d, 0);
    marks_ok = 1;
    for (t = 0; t < 16; t++) {
        decoded_read(&rd, &d, t);
        while (decoded_next(&rd) != NULL) {
            marks_ok &= decoded_over(&rd) == 0;
        }
    }
    CHECK(marks_ok, "a datagram without verdicts: none left from the last");

    decoded_free(&d);
}

/*
 * A Loki stream is the service's label (label_sanitize, "unknown" when
 * empty), not the bytes a request sent: "a\x01" and "a\x02" are both "a?",
 * "" is "unknown" as "unknown" is, and services that differ past
 * LABEL_MAX_LEN bytes are one label.  Each such group is one stream, so
 * one thread must build it, or two threads push one stream's lines out of
 * order (a Loki without unordered writes refuses them).
 */
static void
test_partition_label(void)
{
    enum { GROUPS = 3, PER = 24 };
    Obs__V1__Batch        batch = OBS__V1__BATCH__INIT;
    Obs__V1__BatchHeader  h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__Record       recs[GROUPS * PER], *rp[GROUPS * PER];
    static char           names[GROUPS * PER][LABEL_MAX_LEN + 16];
    static uint8_t        wire[65536];
    decoded_t             d;
    decoded_reader_t      rd;
    const Obs__V1__Record *r;
    int                   owner[GROUPS], g, i, t, ok = 1;
    size_t                len;

    for (i = 0; i < GROUPS * PER; i++) {
        g = i / PER;
        if (g == 0) {
            /* control characters but newline: '?' */
            snprintf(names[i], sizeof(names[i]), "a%c",
                     i % PER + 1 == '\n' ? 0x1f : i % PER + 1);
        } else if (g == 1) {
            strcpy(names[i], i % 2 ? "unknown" : "");
        } else {
            memset(names[i], 'x', LABEL_MAX_LEN);
            snprintf(names[i] + LABEL_MAX_LEN, 16, "%d", i);
        }
        obs__v1__record__init(&recs[i]);
        recs[i].service.data = (uint8_t *) names[i];
        recs[i].service.len = strlen(names[i]);
        recs[i].status = 200;
        recs[i].request_id.data = (uint8_t *) names[i];
        recs[i].request_id.len = 0;
        recs[i].duration_us = (uint64_t) g;
        rp[i] = &recs[i];
    }
    h.schema_version = 2;
    batch.header = &h;
    batch.n_records = GROUPS * PER;
    batch.records = rp;
    len = obs__v1__batch__pack(&batch, wire);

    CHECK(decoded_init(&d, 8 * 1024 * 1024) == 0, "room for a datagram");
    decoded_fill(&d, wire, len, NULL, 16, 0);
    memset(owner, -1, sizeof(owner));

    for (t = 0; t < 16; t++) {
        decoded_read(&rd, &d, t);
        while ((r = decoded_next(&rd)) != NULL) {
            g = (int) r->duration_us;
            if (owner[g] == -1) {
                owner[g] = t;
            }
            ok &= owner[g] == t;
        }
    }

    CHECK(ok, "services of one stream label: one stream, one thread");
    decoded_free(&d);
}

/*
 * The exporter's and the audit trail's waits: a condition and a deadline
 * on the same (monotonic) clock, so a 100 ms wait lasts 100 ms; with the
 * clocks mixed it would end at once or last for decades.
 */
static void
test_timed_wait(void)
{
    pthread_cond_t   cond;
    pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;
    struct timespec  deadline, t0, t1;
    double           waited_ms;
    int              rc;

    timed_wait_cond_init(&cond);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    timed_wait_deadline(&deadline, 100);
    pthread_mutex_lock(&lock);
    do {
        rc = pthread_cond_timedwait(&cond, &lock, &deadline);
    } while (rc == 0);
    pthread_mutex_unlock(&lock);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waited_ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3
                + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;

    CHECK(rc == ETIMEDOUT, "a timed wait ends with ETIMEDOUT");
    CHECK(waited_ms >= 95 && waited_ms < 5000,
          "a 100 ms wait on the monotonic clock lasts 100 ms");
    pthread_cond_destroy(&cond);
}

static void
hand(const uint8_t *bytes, size_t len, size_t records, const uint8_t *over,
    void *data)
{
    exporter_offer(data, bytes, len, records, over);
}

/*
 * The sidecar's path with n exporter threads, log lines to a file: each
 * datagram decoded twice in all, each record read twice (ingest, its
 * thread), each line written once and a stream's lines in order.
 */
static void
test_decode_once(int n, int per_tenant)
{
    config_t        cfg, no_sockets;
    store_t        *s;
    aggregator_t   *a;
    ingest_t       *in;
    delivery_t     *dl;
    exporter_t     *e;
    json_t         *j;
    FILE           *f;
    uint8_t         wire[65536];
    char            json[1024], path[] = "/tmp/obs-unit-lines-XXXXXX";
    char            err[512], name[128], line[4096];
    long            last[SERVICES * 3 * TENANTS], k;
    int             seen[DATAGRAMS * (ROWS + COLUMNS)], fd, ok = 1;
    unsigned long   unpacked, read;
    unsigned        d, i;
    size_t          len, lines = 0;

    fd = mkstemp(path);
    close(fd);
    snprintf(json, sizeof(json),
             "{\"ingest\": [\"unix:/tmp/unused.sock\"], \"logs_file\": \"%s\","
             " \"traces\": false, \"exporter_threads\": %d,"
             " \"loki\": {\"batch_bytes\": 2000%s}}",
             path, n, per_tenant ? ", \"tenant_header\": \"per_tenant\"" : "");
    if (unit_config_load(json, &cfg, err, sizeof(err)) != CONFIG_OK) {
        CHECK(0, err);
        config_free(&cfg);
        return;
    }

    s = store_new(cfg.max_series);
    a = aggregator_new(s, &cfg);
    no_sockets = cfg;
    no_sockets.n_ingest = 0;
    in = ingest_open(&no_sockets, a, err, sizeof(err));
    dl = delivery_new(cfg.exporter.drain_seconds);
    e = exporter_start(&cfg.exporter, dl, err, sizeof(err));
    CHECK(in && dl && e, "the sidecar's path starts");
    if (e == NULL) {
        return;
    }
    ingest_set_datagram_hook(in, hand, e);

    unpacked = atomic_load(&unpacks);
    read = atomic_load(&column_reads);

    for (d = 0; d < DATAGRAMS; d++) {
        len = datagram(d, wire);
        /* a full ring would shed: wait for the threads instead */
        while (exporter_backlog(e) + 1 >= (size_t)
                                          cfg.exporter.queue_datagrams)
        {
            usleep(1000);
        }
        ingest_datagram(in, wire, len);
    }
    while (exporter_backlog(e) > 0) {
        usleep(1000);
    }

    /* the exporter's own count agrees */
    snprintf(name, sizeof(name), "%d threads: the exporter decoded each "
             "datagram once", n);
    CHECK(exporter_decodes(e) == DATAGRAMS, name);

    exporter_stop(e);
    delivery_stop(dl);
    exporter_free(e);
    unpacked = atomic_load(&unpacks) - unpacked;
    read = atomic_load(&column_reads) - read;

    snprintf(name, sizeof(name), "%d threads: 2 decodes a datagram "
             "(%lu for %d)", n, unpacked, DATAGRAMS);
    CHECK(unpacked == 2 * DATAGRAMS, name);
    snprintf(name, sizeof(name), "%d threads: each record in column form "
             "read twice (%lu for %d)", n, read, DATAGRAMS * COLUMNS);
    CHECK(read == 2 * DATAGRAMS * COLUMNS, name);

    memset(seen, 0, sizeof(seen));
    for (i = 0; i < sizeof(last) / sizeof(last[0]); i++) {
        last[i] = -1;
    }

    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        j = json_loads(line, 0, NULL);
        k = -1;
        if (j && json_string_value(json_object_get(j, "request_id"))) {
            k = atol(json_string_value(json_object_get(j, "request_id"))
                     + 1);
        }
        json_decref(j);
        if (k < 0 || k >= DATAGRAMS * (ROWS + COLUMNS)) {
            ok = 0;
            break;
        }
        seen[k]++;
        i = stream_of((unsigned) k, per_tenant);
        ok &= k > last[i];
        last[i] = k;
        lines++;
    }
    if (f) {
        fclose(f);
    }

    for (k = 0; k < DATAGRAMS * (ROWS + COLUMNS); k++) {
        ok &= seen[k] == 1;
    }
    snprintf(name, sizeof(name), "%d threads%s: every record's line once "
             "(%zu), a stream's lines in order", n,
             per_tenant ? " (per tenant)" : "", lines);
    CHECK(ok && lines == DATAGRAMS * (ROWS + COLUMNS), name);

    delivery_free(dl);
    ingest_close(in);
    aggregator_free(a);
    store_free(s);
    config_free(&cfg);
    unlink(path);
}

int
main(void)
{
    test_timed_wait();
    test_partition();
    test_partition_over();
    test_partition_label();
    test_decode_once(1, 0);
    test_decode_once(2, 0);
    test_decode_once(4, 0);
    test_decode_once(4, 1);

    return unit_report("test_exporter_threads");
}
