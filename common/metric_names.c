/* Metric and label names.  See metric_names.h. */

#include <string.h>

#include "metric_names.h"

#define METRIC_TOTAL      "_total"
#define METRIC_TOTAL_LEN  (sizeof(METRIC_TOTAL) - 1)

/* each family as exposed, and whether it is a counter */
#define OBS_EXPOSED_COUNTER(name)    #name METRIC_TOTAL
#define OBS_EXPOSED_HISTOGRAM(name)  #name
#define OBS_EXPOSED_GAUGE(name)      #name
#define OBS_COUNTER_COUNTER          1
#define OBS_COUNTER_HISTOGRAM        0
#define OBS_COUNTER_GAUGE            0

static const struct {
    const char  *name;
    int          counter;
} metric_families[] = {
#define OBS_FAMILY(ID, name, type, unit, stored, otel_name, otel_unit, help)  \
    { OBS_EXPOSED_##type(name), OBS_COUNTER_##type },
#include "obs/v1/families.def"
    { NULL, 0 }
};

static const char *const  metric_reserved_labels[] = {
#define OBS_LABEL_NAME(label, otel_attribute, otel_type)  #label,
#define OBS_PROMETHEUS_LABEL(label)            #label,
#include "obs/v1/families.def"
    NULL
};

/* parts of other types' families: a gauge may not end in one */
static const char *const  metric_type_suffixes[] = {
    METRIC_TOTAL, "_count", "_sum", "_bucket", "_created", "_info", NULL
};

static size_t metric_base(const unsigned char *name, size_t len);
static int metric_ends_in(const unsigned char *name, size_t len,
    const char *suffix);

int
metric_name_grammar(const unsigned char *s, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (len == 0 || (s[0] >= '0' && s[0] <= '9')) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_'))
        {
            return 0;
        }
    }

    return 1;
}

metric_name_check_t
metric_name_check(const unsigned char *name, size_t len, int counter,
    const char **detail)
{
    const char  *s;
    size_t       base, reserved, n;
    int          i;

    if (len > METRIC_NAME_MAX || !metric_name_grammar(name, len)) {
        return METRIC_NAME_GRAMMAR;
    }

    if (len >= 4 && memcmp(name, "obs_", 4) == 0) {
        return METRIC_NAME_PIPELINE;
    }

    base = metric_base(name, len);

    for (i = 0; metric_families[i].name; i++) {
        s = metric_families[i].name;
        n = strlen(s);
        reserved = metric_base((const unsigned char *) s, n);

        if ((base == reserved && memcmp(name, s, base) == 0)
            || (!metric_families[i].counter && len > n
                && memcmp(name, s, n) == 0 && name[n] == '_'))
        {
            if (detail) {
                *detail = s;
            }
            return METRIC_NAME_GATEWAY;
        }
    }

    if (counter) {
        if (len <= METRIC_TOTAL_LEN
            || !metric_ends_in(name, len, METRIC_TOTAL))
        {
            return METRIC_NAME_COUNTER_SUFFIX;
        }
        return METRIC_NAME_OK;
    }

    for (i = 0; metric_type_suffixes[i]; i++) {
        if (len > strlen(metric_type_suffixes[i])
            && metric_ends_in(name, len, metric_type_suffixes[i]))
        {
            if (detail) {
                *detail = metric_type_suffixes[i];
            }
            return METRIC_NAME_GAUGE_SUFFIX;
        }
    }

    return METRIC_NAME_OK;
}

metric_label_check_t
metric_label_check(const unsigned char *name, size_t len)
{
    int  i;

    if (len > METRIC_LABEL_MAX || !metric_name_grammar(name, len)
        || (len >= 2 && name[0] == '_' && name[1] == '_'))
    {
        return METRIC_LABEL_GRAMMAR;
    }

    for (i = 0; metric_reserved_labels[i]; i++) {
        if (strlen(metric_reserved_labels[i]) == len
            && memcmp(metric_reserved_labels[i], name, len) == 0)
        {
            return METRIC_LABEL_RESERVED;
        }
    }

    return METRIC_LABEL_OK;
}

/* The length of a name without its "_total". */

static size_t
metric_base(const unsigned char *name, size_t len)
{
    return len > METRIC_TOTAL_LEN && metric_ends_in(name, len, METRIC_TOTAL)
           ? len - METRIC_TOTAL_LEN : len;
}

static int
metric_ends_in(const unsigned char *name, size_t len, const char *suffix)
{
    size_t  n = strlen(suffix);

    return len >= n && memcmp(name + len - n, suffix, n) == 0;
}
