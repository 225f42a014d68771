/* A destination's settings and the header rule.  See destination_config.h. */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "destination_config.h"

static int header_add(destination_config_t *cfg, const char *name,
    size_t name_len, const char *value, size_t value_len);
static int hex_value(int c);

int
destination_set_headers(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen)
{
    destination_config_t  *cfg;
    const char            *key;
    json_t                *h;

    (void) text;
    cfg = (destination_config_t *) ((char *) base + s->offset);

    if (!json_is_object(v)) {
        snprintf(err, errlen, "config: \"%s\" must be an object of strings",
                 where);
        return -1;
    }

    json_object_foreach(v, key, h) {
        if (!json_is_string(h) || cfg->n_headers == DESTINATION_MAX_HEADERS
            || !destination_header_ok(key, strlen(key), json_string_value(h),
                                      json_string_length(h)))
        {
            snprintf(err, errlen, "config: \"%s.%s\" must be a header name "
                     "(a token: letters, digits, !#$%%&'*+-.^_`|~) with a "
                     "one-line string value without control characters (at "
                     "most %d headers)", where, key, DESTINATION_MAX_HEADERS);
            return -1;
        }
        if (header_add(cfg, key, strlen(key), json_string_value(h),
                       json_string_length(h)) != 0)
        {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    return 0;
}

int
destination_add_header_list(destination_config_t *cfg, const char *text,
    const char *where, char *err, size_t errlen)
{
    const char  *item, *end, *eq, *k, *ke, *v, *ve;
    char        *value, *o;
    int          hi, lo, rc;

    for (item = text; *item; item = *end ? end + 1 : end) {
        end = item + strcspn(item, ",");
        eq = memchr(item, '=', (size_t) (end - item));

        /* whitespace around keys and values is not theirs */
        for (k = item; k < end && (*k == ' ' || *k == '\t'); k++) { }
        if (k == end) {
            continue;               /* "a=1,,b=2" and a trailing comma */
        }
        ke = eq ? eq : end;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) {
            ke--;
        }

        if (eq == NULL || ke == k || cfg->n_headers == DESTINATION_MAX_HEADERS
            || !destination_header_ok(k, (size_t) (ke - k), "", 0))
        {
            snprintf(err, errlen, "%s: invalid entry \"%.*s\": key=value "
                     "expected, the key a header name (letters, digits, "
                     "!#$%%&'*+-.^_`|~), at most %d entries", where,
                     (int) (end - item < 64 ? end - item : 64), item,
                     DESTINATION_MAX_HEADERS);
            return -1;
        }

        for (v = eq + 1; v < end && (*v == ' ' || *v == '\t'); v++) { }
        for (ve = end; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) { }

        value = malloc((size_t) (ve - v) + 1);
        if (value == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        for (o = value; v < ve; v++) {
            if (*v != '%') {
                *o++ = *v;
                continue;
            }
            hi = v + 2 < ve ? hex_value(v[1]) : -1;
            lo = hi >= 0 ? hex_value(v[2]) : -1;
            if (lo < 0) {
                snprintf(err, errlen, "%s: the value of \"%.*s\" has a '%%' "
                         "not followed by two hex digits (percent-encode "
                         "'%%' as %%25)", where, (int) (ke - k < 64 ? ke - k
                                                                   : 64), k);
                free(value);
                return -1;
            }
            *o++ = (char) (hi * 16 + lo);
            v += 2;
        }

        rc = destination_header_ok(k, (size_t) (ke - k), value,
                                   (size_t) (o - value))
             ? header_add(cfg, k, (size_t) (ke - k), value,
                          (size_t) (o - value))
             : 1;
        free(value);
        if (rc != 0) {
            snprintf(err, errlen, rc > 0
                     ? "%s: the value of \"%.*s\" decodes to a control "
                       "character (CR, LF, NUL, ...), which no header may "
                       "carry" : "%s: out of memory (\"%.*s\")", where,
                     (int) (ke - k < 64 ? ke - k : 64), k);
            return -1;
        }
    }

    return 0;
}

int
destination_header_ok(const char *name, size_t name_len, const char *value,
    size_t value_len)
{
    size_t         i;
    unsigned char  c;

    if (name_len == 0) {
        return 0;
    }
    for (i = 0; i < name_len; i++) {
        c = (unsigned char) name[i];
        if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL) {
            return 0;
        }
        if (c == '\0' || c >= 0x80) {
            return 0;
        }
    }

    for (i = 0; i < value_len; i++) {
        c = (unsigned char) value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return 0;
        }
    }

    return 1;
}

int
destination_config_check(const destination_config_t *c, const char *name,
    char *err, size_t errlen)
{
    if ((c->spool_dir == NULL) != (c->spool_bytes == 0)) {
        snprintf(err, errlen, "config: \"%s.spool_dir\" and "
                 "\"%s.spool_bytes\" go together", name, name);
        return -1;
    }

    if ((c->basic_user == NULL) != (c->basic_password == NULL)) {
        snprintf(err, errlen, "config: \"%s.basic_user\" and "
                 "\"%s.basic_password_file\" go together", name, name);
        return -1;
    }

    return 0;
}

int
config_copy_string(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && *dst == NULL ? -1 : 0;
}

int
destination_config_copy(destination_config_t *dst,
    const destination_config_t *src)
{
    int  i, rc = 0;

    *dst = *src;
    rc |= config_copy_string(&dst->url, src->url);
    rc |= config_copy_string(&dst->file, src->file);
    rc |= config_copy_string(&dst->basic_user, src->basic_user);
    rc |= config_copy_string(&dst->basic_password, src->basic_password);
    rc |= config_copy_string(&dst->bearer_token, src->bearer_token);
    rc |= config_copy_string(&dst->ca_file, src->ca_file);
    rc |= config_copy_string(&dst->cert_file, src->cert_file);
    rc |= config_copy_string(&dst->key_file, src->key_file);
    rc |= config_copy_string(&dst->spool_dir, src->spool_dir);
    for (i = 0; i < src->n_headers; i++) {
        rc |= config_copy_string(&dst->headers[i], src->headers[i]);
    }
    return rc ? -1 : 0;
}

void
destination_config_free(destination_config_t *cfg)
{
    int  i;

    free(cfg->url);
    free(cfg->file);
    free(cfg->basic_user);
    free(cfg->basic_password);
    free(cfg->bearer_token);
    free(cfg->ca_file);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->spool_dir);
    for (i = 0; i < cfg->n_headers; i++) {
        free(cfg->headers[i]);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* Returns 0, or -1 when out of memory. */

static int
header_add(destination_config_t *cfg, const char *name, size_t name_len,
    const char *value, size_t value_len)
{
    char  *line = malloc(name_len + value_len + 3);

    if (line == NULL) {
        return -1;
    }

    memcpy(line, name, name_len);
    memcpy(line + name_len, ": ", 2);
    memcpy(line + name_len + 2, value, value_len);
    line[name_len + 2 + value_len] = '\0';
    cfg->headers[cfg->n_headers++] = line;
    return 0;
}

static int
hex_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
