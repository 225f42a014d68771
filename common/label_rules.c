/* Label and tenant-header rules.  See label_rules.h. */

#include <string.h>

#include "label_rules.h"
#include "text.h"

/* what the module sends as a route or tenant is never cut here */
_Static_assert(ROUTE_MAX_LEN <= LABEL_MAX_LEN
               && TENANT_MAX_LEN <= LABEL_MAX_LEN,
               "label_rules.h's bounds fit a sanitised label");

size_t
label_sanitize(const uint8_t *raw, size_t len, char *out)
{
    size_t  n, i;

    /* the usual value: nothing to check character by character */
    if (len <= LABEL_MAX_LEN && text_printable(raw, len)) {
        if (len) {
            memcpy(out, raw, len);  /* raw may be NULL when empty */
        }
        out[len] = '\0';
        return len;
    }

    n = text_utf8(raw, len, out, LABEL_MAX_LEN + 1);

    /*
     * Control characters other than newline (which the formats escape) are
     * legal in label values but break line-based readers (a raw CR ends a
     * line for many); they never come from the module, only from a forged
     * record.
     */
    for (i = 0; i < n; i++) {
        if (((unsigned char) out[i] < 0x20 && out[i] != '\n')
            || out[i] == 0x7f)
        {
            out[i] = '?';
        }
    }

    return n;
}

int
tenant_is_nobody(const char *label)
{
    return label[0] == '\0' || strcmp(label, TENANT_NONE) == 0
           || strcmp(label, LABEL_OVERFLOW_TEXT) == 0;
}

int
org_id_valid(const char *s)
{
    static const char  allowed[] = "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789!-_.*'()";
    size_t             len = strlen(s);

    if (len == 0 || len > ORG_ID_MAX || strcmp(s, ".") == 0
        || strcmp(s, "..") == 0)
    {
        return 0;
    }

    return strspn(s, allowed) == len;
}
