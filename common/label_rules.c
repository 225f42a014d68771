/* Label and tenant-header rules.  See label_rules.h. */

#include <string.h>

#include "label_rules.h"

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
