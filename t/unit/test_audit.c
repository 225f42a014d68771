/*
 * The audit trail's C side under ASan/UBSan: the chain's lines and their
 * checks, --verify-audit on tampered files, the writer's file (taking up
 * an existing chain, cutting a half line, restarting a chain whose tail
 * does not verify, rotating and going on across files), the events the
 * ingest thread makes (gaps, refusals held back, nginx configurations)
 * and the losses.  The chain is checked independently, with Python's
 * hmac, in t/integration/test_audit.py.
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "audit.h"
#include "audit_chain.h"
#include "audit_events.h"
#include "stats.h"
#include "unit.h"

#define KEY  "unit-test-audit-key-0123456789"

static char  dir[64];

static char *
path(const char *name)
{
    static char  p[16][128];
    static int   k;

    k = (k + 1) % 16;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

static char *
slurp(const char *file, size_t *len)
{
    FILE   *f = fopen(file, "rb");
    char   *data;
    long    n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t) n + 1);
    if (fread(data, 1, (size_t) n, f) != (size_t) n) {
        n = 0;
    }
    data[n] = '\0';
    fclose(f);
    *len = (size_t) n;
    return data;
}

static void
spit(const char *file, const char *data, size_t len)
{
    FILE  *f = fopen(file, "wb");

    fwrite(data, 1, len, f);
    fclose(f);
}

static int
lines(const char *file)
{
    size_t  len, i;
    char   *d = slurp(file, &len);
    int     n = 0;

    for (i = 0; d && i < len; i++) {
        n += d[i] == '\n';
    }
    free(d);
    return n;
}

static int
verify(char *const *files, int n, const char *anchor, char *err,
    size_t errlen)
{
    FILE  *e = fmemopen(err, errlen, "w");
    FILE  *o = fopen("/dev/null", "w");
    int    rc;

    rc = audit_verify(KEY, files, n, anchor, o, e);
    fclose(e);
    fclose(o);
    return rc;
}

static void
test_chain_lines(void)
{
    audit_key_t    *k = audit_key_new(KEY, strlen(KEY));
    audit_chain_t   c;
    buf_t           b = { 0 };
    uint64_t        seq;
    uint8_t         prev[AUDIT_MAC_LEN], mac[AUDIT_MAC_LEN];
    uint8_t         first[AUDIT_MAC_LEN];
    const char     *why;
    char           *nl;

    memset(&c, 0, sizeof(c));
    CHECK(audit_chain_append(&c, k, "\"event\":\"a\"", 11, &b) == 0
          && c.seq == 1, "a first line");
    memcpy(first, c.mac, AUDIT_MAC_LEN);
    CHECK(audit_chain_append(&c, k, "\"event\":\"b\"", 11, &b) == 0
          && c.seq == 2, "a second line");
    CHECK(memcmp(b.data, "{\"seq\":1,\"event\":\"a\",\"prev\":\"0000", 33)
          == 0, "seq first, prev of zeros");

    nl = memchr(b.data, '\n', b.len);
    why = audit_chain_parse(k, b.data, (size_t) (nl - b.data), &seq, prev,
                            mac);
    CHECK(why == NULL && seq == 1 && memcmp(mac, first, AUDIT_MAC_LEN) == 0,
          "the first line parses and verifies");
    why = audit_chain_parse(k, nl + 1, b.len - (size_t) (nl + 1 - b.data) - 1,
                            &seq, prev, mac);
    CHECK(why == NULL && seq == 2 && memcmp(prev, first, AUDIT_MAC_LEN) == 0
          && memcmp(mac, c.mac, AUDIT_MAC_LEN) == 0,
          "the second chains on the first");

    b.data[14] = 'A';                       /* "event":"a" -> "A" */
    why = audit_chain_parse(k, b.data, (size_t) (nl - b.data), &seq, prev,
                            mac);
    CHECK(why && strstr(why, "mac is wrong"), "an edited line is refused");
    CHECK(audit_chain_parse(k, "{\"seq\":1}", 9, &seq, prev, mac) != NULL,
          "a short line is refused");
    CHECK(audit_chain_parse(k, "garbage", 7, &seq, prev, mac) != NULL,
          "garbage is refused");

    buf_free(&b);
    audit_key_free(k);
}

static void
test_verify_tampering(void)
{
    audit_key_t    *k = audit_key_new(KEY, strlen(KEY));
    audit_chain_t   c;
    buf_t           b = { 0 }, t = { 0 };
    char            err[512], *files[2], *l[5], *p;
    char            anchor[2 * AUDIT_MAC_LEN + 1];
    int             i;

    memset(&c, 0, sizeof(c));
    for (i = 0; i < 5; i++) {
        char  body[32];

        snprintf(body, sizeof(body), "\"event\":\"e%d\"", i);
        audit_chain_append(&c, k, body, strlen(body), &b);
    }
    for (i = 0; i < AUDIT_MAC_LEN; i++) {
        snprintf(anchor + 2 * i, 3, "%02x", c.mac[i]);
    }

    files[0] = path("v.log");
    spit(files[0], b.data, b.len);
    CHECK(verify(files, 1, NULL, err, sizeof(err)) == 0, "it holds");
    CHECK(verify(files, 1, anchor, err, sizeof(err)) == 0,
          "with its last mac as the anchor too");

    /* the lines, to put back together wrongly */
    for (i = 0, p = b.data; i < 5; i++) {
        l[i] = p;
        p = strchr(p, '\n') + 1;
    }

#define LINE(i)  l[i], (size_t) (strchr(l[i], '\n') + 1 - l[i])

    buf_reset(&t);                                  /* 3 removed */
    buf_append(&t, LINE(0)); buf_append(&t, LINE(1));
    buf_append(&t, LINE(3)); buf_append(&t, LINE(4));
    spit(files[0], t.data, t.len);
    CHECK(verify(files, 1, NULL, err, sizeof(err)) == 1
          && strstr(err, "v.log:3: its prev is not the mac"),
          "a line removed: the next one is named");

    buf_reset(&t);                                  /* 2 and 3 swapped */
    buf_append(&t, LINE(0)); buf_append(&t, LINE(2));
    buf_append(&t, LINE(1)); buf_append(&t, LINE(3)); buf_append(&t, LINE(4));
    spit(files[0], t.data, t.len);
    CHECK(verify(files, 1, NULL, err, sizeof(err)) == 1
          && strstr(err, "v.log:2:"), "two lines swapped");

    spit(files[0], b.data, b.len - 10);             /* the end cut */
    CHECK(verify(files, 1, NULL, err, sizeof(err)) == 1
          && strstr(err, "v.log:5: the line is cut short"),
          "the last line cut");

    spit(files[0], b.data, (size_t) (l[4] - b.data));   /* a line less */
    CHECK(verify(files, 1, NULL, err, sizeof(err)) == 0,
          "the last whole line removed holds (the chain cannot tell) ...");
    CHECK(verify(files, 1, anchor, err, sizeof(err)) == 1
          && strstr(err, "cut from the end"), "... but the anchor can");

    /* two files; the second starts where the first ends */
    spit(files[0], b.data, (size_t) (l[2] - b.data));
    files[1] = path("v.log.next");
    spit(files[1], l[2], b.len - (size_t) (l[2] - b.data));
    CHECK(verify(files, 2, NULL, err, sizeof(err)) == 0, "across files");
    CHECK(verify(files + 1, 1, NULL, err, sizeof(err)) == 0,
          "the later file alone: its first prev is taken as given");
    files[1] = files[0];
    files[0] = path("v.log.next");
    CHECK(verify(files, 2, NULL, err, sizeof(err)) == 1, "files out of order");

#undef LINE
    buf_free(&b);
    buf_free(&t);
    audit_key_free(k);
}

static audit_t *
open_trail(audit_config_t *cfg, const char *file, size_t rotate)
{
    char  err[256];

    audit_config_defaults(cfg);
    cfg->file = strdup(file);
    cfg->key = strdup(KEY);
    cfg->rotate_bytes = rotate;
    cfg->rotate_files = 3;
    return audit_open(cfg, err, sizeof(err));
}

static void
test_writer_and_recovery(void)
{
    audit_config_t   cfg;
    audit_t         *a;
    char            *file = path("trail.log"), err[512], *files[4];
    char            *data;
    size_t           len;
    int              i, n;

    a = open_trail(&cfg, file, 100 * 1024 * 1024);
    CHECK(a != NULL && audit_enabled(a), "opened");
    for (i = 0; i < 10; i++) {
        audit_event(a, "request", 1000000 + i, "\"n\":1", 5, 1);
    }
    audit_lost(a, AUDIT_LOST_gap, 3);
    audit_stop(a, 1);
    audit_free(a);
    audit_config_free(&cfg);

    files[0] = file;
    n = lines(file);
    CHECK(n == 12 && verify(files, 1, NULL, err, sizeof(err)) == 0,
          "the events, the loss and the opening, chained");
    data = slurp(file, &len);
    CHECK(strstr(data, "\"event\":\"audit_events_lost\",\"reason\":\"gap\","
                       "\"count\":3") != NULL, "the loss is in the trail");
    CHECK(strstr(data, "\"time\":\"1970-01-01T00:00:01.000009Z\"") != NULL,
          "microseconds");
    free(data);

    /* another run goes on; a second writer is refused meanwhile */
    a = open_trail(&cfg, file, 100 * 1024 * 1024);
    {
        audit_config_t  other;
        audit_t        *b = open_trail(&other, file, 1024);

        CHECK(b == NULL, "one writer a file");
        audit_config_free(&other);
    }
    audit_event(a, "request", 2000000, "\"n\":2", 5, 1);
    audit_stop(a, 1);
    audit_free(a);
    audit_config_free(&cfg);
    CHECK(lines(file) == n + 2 && verify(files, 1, NULL, err, sizeof(err))
          == 0, "a second run continues the chain");

    /* a half line at the end (its writer died): cut, and said */
    data = slurp(file, &len);
    spit(file, data, len);
    free(data);
    {
        int  fd = open(file, O_WRONLY | O_APPEND);

        CHECK(write(fd, "{\"seq\":99,\"ti", 13) == 13, "a half line");
        close(fd);
    }
    CHECK(verify(files, 1, NULL, err, sizeof(err)) == 1, "it shows");
    a = open_trail(&cfg, file, 100 * 1024 * 1024);
    audit_stop(a, 1);
    audit_free(a);
    audit_config_free(&cfg);
    data = slurp(file, &len);
    CHECK(strstr(data, "\"chain\":\"continued\",\"discarded_bytes\":13")
          != NULL && verify(files, 1, NULL, err, sizeof(err)) == 0,
          "cut, said, and the chain goes on");

    /* an edited last line: a new chain in a new file */
    data[len - 20] ^= 1;
    spit(file, data, len);
    free(data);
    a = open_trail(&cfg, file, 100 * 1024 * 1024);
    CHECK(a != NULL, "opened over an edited tail");
    audit_stop(a, 1);
    audit_free(a);
    audit_config_free(&cfg);
    data = slurp(file, &len);
    CHECK(strncmp(data, "{\"seq\":1,", 9) == 0
          && strstr(data, "\"chain\":\"restarted\"") != NULL
          && verify(files, 1, NULL, err, sizeof(err)) == 0,
          "restarted: the new file verifies alone");
    free(data);
    files[0] = path("trail.log.1");
    files[1] = file;
    CHECK(verify(files, 2, NULL, err, sizeof(err)) == 1,
          "and the junction shows");

    /* rotation: the chain goes on across files, the oldest removed */
    file = path("rot.log");
    a = open_trail(&cfg, file, 4096);
    for (i = 0; i < 60; i++) {
        static const char  pad[] = "\"pad\":\"............................"
                                   "..................................\"";

        audit_event(a, "request", 3000000 + i, pad, sizeof(pad) - 1, 1);
        if (i % 10 == 9) {
            usleep(20000);
        }
    }
    audit_stop(a, 1);
    audit_free(a);
    audit_config_free(&cfg);
    files[0] = path("rot.log.3");
    files[1] = path("rot.log.2");
    files[2] = path("rot.log.1");
    files[3] = file;
    CHECK(access(path("rot.log.4"), F_OK) != 0, "at most rotate_files kept");
    CHECK(verify(files, 4, NULL, err, sizeof(err)) == 0,
          "the rotated files verify as one chain");
    CHECK(verify(files + 1, 3, NULL, err, sizeof(err)) == 0,
          "from any of them on");
    files[1] = files[0];
    CHECK(verify(files + 1, 3, NULL, err, sizeof(err)) == 1
          && strstr(err, "rot.log.1:1:") != NULL,
          "a file of the rotation missing: the next one's first line");
}

static void
test_watch(void)
{
    audit_config_t        cfg;
    audit_t              *a;
    audit_watch_t        *w;
    Obs__V1__BatchHeader  h = OBS__V1__BATCH_HEADER__INIT;
    Obs__V1__Record       r = OBS__V1__RECORD__INIT;
    Obs__V1__AuditEvent   ev = OBS__V1__AUDIT_EVENT__INIT, *evs[1] = { &ev };
    struct sockaddr_in    from;
    uint8_t               sha[32] = { 1, 2, 3 };
    uint64_t              next = 0;
    char                 *data, *file = path("watch.log");
    size_t                len;
    int                   i;

    a = open_trail(&cfg, file, 100 * 1024 * 1024);
    w = audit_watch_new(a);

    h.host.data = (uint8_t *) "gw";
    h.host.len = 2;
    h.pid = 7;
    h.master_pid = 6;
    h.config_generation = 1;
    h.config_sha256.data = sha;
    h.config_sha256.len = 32;
    h.delta_audit_dropped_buffer_full = 2;
    audit_watch_header(w, &h);
    audit_watch_header(w, &h);                  /* the same: once */
    h.config_generation = 2;
    sha[0] = 9;
    audit_watch_header(w, &h);                  /* a reload */
    h.config_generation = 1;
    audit_watch_header(w, &h);                  /* an old worker: nothing */

    r.n_audit = 1;
    r.audit = evs;
    r.status = 403;
    r.route.data = (uint8_t *) "/admin";
    r.route.len = 6;
    ev.decision = 12;
    ev.scope = 1;
    ev.jwt_status = 7;
    ev.sequence = 1;
    audit_watch_record(w, &r, &h, &next);
    ev.sequence = 4;                            /* 2 and 3 never came */
    audit_watch_record(w, &r, &h, &next);

    memset(&from, 0, sizeof(from));
    from.sin_family = AF_INET;
    from.sin_port = htons(4242);
    inet_pton(AF_INET, "10.0.0.5", &from.sin_addr);
    for (i = 0; i < 50; i++) {
        audit_watch_refused(w, DECODE_UNAUTHENTICATED,
                            (struct sockaddr *) &from, sizeof(from), NULL);
    }
    audit_watch_refused(w, DECODE_REPLAYED, (struct sockaddr *) &from,
                        sizeof(from), &h);
    audit_watch_refused(w, DECODE_MALFORMED, NULL, 0, NULL);   /* no event */

    audit_watch_free(w);
    audit_stop(a, 1);
    audit_free(a);
    audit_config_free(&cfg);

    data = slurp(file, &len);
    CHECK(strstr(data, "\"event\":\"nginx_config\",\"host\":\"gw\","
                       "\"master_pid\":6,\"generation\":1,") != NULL
          && strstr(data, "\"generation\":2,") != NULL
          && strstr(data, "\"first_seen\":false,\"previous_sha256\":"
                          "\"0102030000") != NULL
          && strstr(data, "\"changed\":true") != NULL,
          "a configuration, then its reload");
    CHECK(strstr(data, "\"generation\":1,") == strstr(data, "\"generation\""),
          "each configuration once");
    CHECK(strstr(data, "\"reason\":\"module_buffer_full\"") != NULL,
          "the module's losses are told");
    CHECK(strstr(data, "\"reason\":\"gap\",\"count\":2") != NULL,
          "a gap of 2");
    CHECK(strstr(data, "\"decision\":\"denied:forbidden\",\"audited_by\":"
                       "\"obs_audit\",\"jwt\":\"expired\"") != NULL,
          "a request's decision and verdict by name");
    CHECK(strstr(data, "\"sender\":\"udp:10.0.0.5:4242\"") != NULL
          && strstr(data, "\"also_refused\":40") != NULL,
          "refusals: 10 told, the rest counted");
    CHECK(strstr(data, "\"reason\":\"replayed\",\"sender\":\"udp:10.0.0.5:"
                       "4242\",\"worker_host\":\"gw\",\"worker_pid\":7")
          != NULL, "a replay names the worker");
    CHECK(strstr(data, "malformed") == NULL, "other refusals are not events");
    free(data);
}

static void
test_not_configured(void)
{
    audit_config_t  cfg;
    audit_t        *a;
    char            err[64];

    audit_config_defaults(&cfg);
    a = audit_open(&cfg, err, sizeof(err));
    CHECK(a && !audit_enabled(a) && audit_problem(a) == NULL,
          "no file: nothing to write, ready");
    audit_event(a, "request", 1, "", 0, 1);
    audit_event(a, "sidecar_start", 1, "", 0, 0);
    audit_free(a);
    audit_config_free(&cfg);
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/obs-unit-audit-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return 1;
    }

    test_chain_lines();
    test_verify_tampering();
    test_writer_and_recovery();
    test_watch();
    test_not_configured();

    return unit_report("audit");
}
