/*
 * A record's obs_log_fields as the log line and the span write them: only
 * fields whose name matches [a-z][a-z0-9_.]{0,63}, is none of the keys the
 * line and the span write themselves (proto/obs/v1/log_keys.def) and did
 * not come earlier in the record, with a value.  The module sends nothing
 * else, but any sender may: a line never holds a key twice.
 */

#include <string.h>

#include "fields.h"

static int field_name_ok(const ProtobufCBinaryData *name);
static int field_name_reserved(const ProtobufCBinaryData *name);

static const char  *log_keys[] = {
#define OBS_LOG_KEY(name)  name,
#include "obs/v1/log_keys.def"
#undef OBS_LOG_KEY
    NULL
};

size_t
log_fields(const Obs__V1__Record *r, const Obs__V1__LogField **out)
{
    const Obs__V1__LogField  *f;
    size_t                    i, k, n = 0;

    for (i = 0; i < r->n_fields && i < LOG_FIELDS_MAX; i++) {
        f = r->fields[i];

        if (f->value.len == 0 || !field_name_ok(&f->name)
            || field_name_reserved(&f->name))
        {
            continue;
        }

        for (k = 0; k < n; k++) {
            if (out[k]->name.len == f->name.len
                && memcmp(out[k]->name.data, f->name.data, f->name.len) == 0)
            {
                break;
            }
        }

        if (k == n) {
            out[n++] = f;
        }
    }

    return n;
}

int
log_key_reserved(const char *key)
{
    ProtobufCBinaryData  name = { strlen(key), (uint8_t *) key };

    return field_name_reserved(&name);
}

static int
field_name_ok(const ProtobufCBinaryData *name)
{
    size_t   i;
    uint8_t  c;

    if (name->len == 0 || name->len > LOG_FIELD_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];
        if (!((c >= 'a' && c <= 'z')
              || (i > 0 && ((c >= '0' && c <= '9') || c == '_' || c == '.'))))
        {
            return 0;
        }
    }

    return 1;
}

static int
field_name_reserved(const ProtobufCBinaryData *name)
{
    const char  **key;

    for (key = log_keys; *key; key++) {
        if (strlen(*key) == name->len
            && memcmp(*key, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}
