/*
 * The settings engine: one generic reader per type, driven by the rows of
 * a table (settings.h).
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "settings.h"

#define FIELD(base, s, type)  ((type *) ((char *) (base) + (s)->offset))

static const setting_t *settings_lookup(const setting_t *table, void *base,
    const char *key, void **row_base);
static int settings_value(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);
static int settings_number(const setting_t *s, json_t *v, const char *text,
    const char *where, double *out, char *err, size_t errlen);
static void settings_replace(char **slot, const char *value);
static const char *settings_type_text(const setting_t *s, char *buf,
    size_t len);
static void settings_closest(const setting_t *table, settings_name_t kind,
    const char *word, size_t *best, char *buf, size_t len);
static size_t settings_distance(const char *a, size_t la, const char *b,
    size_t lb);

int
settings_json(const setting_t *table, const char *prefix, void *base,
    json_t *obj, char *err, size_t errlen)
{
    const setting_t  *s;
    const char       *key;
    json_t           *v;
    void             *row_base;
    char              where[256];

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "config: \"%s\" must be an object", prefix);
        return -1;
    }

    json_object_foreach(obj, key, v) {
        s = settings_lookup(table, base, key, &row_base);
        snprintf(where, sizeof(where), "%s%s%s", prefix ? prefix : "",
                 prefix ? "." : "", key);
        if (s == NULL) {
            char         near[64];
            const char  *guess;

            guess = settings_nearest(table, SETTINGS_NAME_KEY, key, near,
                                     sizeof(near));
            snprintf(err, errlen, "config: unknown setting \"%s\"%s%s%s%s%s",
                     where, guess ? " (did you mean \"" : "",
                     guess && prefix ? prefix : "",
                     guess && prefix ? "." : "", guess ? guess : "",
                     guess ? "\"?)" : "");
            return -1;
        }
        if (s->type == SETTING_OBJECT) {
            if (settings_json(s->more, where, (char *) row_base + s->offset,
                              v, err, errlen) != 0)
            {
                return -1;
            }
            continue;
        }
        if (settings_value(s, row_base, v, NULL, where, err, errlen) != 0) {
            return -1;
        }
    }

    return 0;
}

int
settings_env(const setting_t *table, void *base, char *err, size_t errlen)
{
    const setting_t  *s;
    const char       *env;

    for (s = table; s->help; s++) {
        if (s->type == SETTING_OBJECT) {
            if (settings_env(s->more, (char *) base + s->offset, err, errlen)
                != 0)
            {
                return -1;
            }
            continue;
        }
        env = s->env ? getenv(s->env) : NULL;
        if (env && *env
            && settings_value(s, base, NULL, env, s->env, err, errlen) != 0)
        {
            return -1;
        }
    }

    return 0;
}

int
settings_flag(const setting_t *s, void *base, const char *arg, char *err,
    size_t errlen)
{
    char  name[64];

    snprintf(name, sizeof(name), "%.*s", (int) strcspn(s->flag, " "),
             s->flag);

    if (arg == NULL) {          /* --no-logs and the like */
        *FIELD(base, s, int) = strncmp(name, "--no-", 5) != 0;
        return 0;
    }

    return settings_value(s, base, NULL, arg, name, err, errlen);
}

const setting_t *
settings_find_flag(const setting_t *table, void *base, const char *name,
    void **row_base)
{
    const setting_t  *s, *found;
    size_t            n = strlen(name);

    for (s = table; s->help; s++) {
        if (s->type == SETTING_OBJECT) {
            found = settings_find_flag(s->more, (char *) base + s->offset,
                                       name, row_base);
            if (found) {
                return found;
            }
            continue;
        }
        if (s->flag && strncmp(s->flag + 2, name, n) == 0
            && (s->flag[2 + n] == '\0' || s->flag[2 + n] == ' '))
        {
            *row_base = base;
            return s;
        }
    }

    return NULL;
}

const char *
settings_nearest(const setting_t *table, settings_name_t kind,
    const char *word, char *buf, size_t len)
{
    size_t  best = (size_t) -1;

    buf[0] = '\0';
    settings_closest(table, kind, word, &best, buf, len);
    return buf[0] ? buf : NULL;
}

static void
settings_closest(const setting_t *table, settings_name_t kind,
    const char *word, size_t *best, char *buf, size_t len)
{
    const setting_t  *s;
    const char       *name;
    size_t            n, d, same, limit, lw = strlen(word);

    for (s = table; s->help; s++) {
        if (s->type == SETTING_OBJECT
            && (kind != SETTINGS_NAME_KEY || s->key == NULL))
        {
            settings_closest(s->more, kind, word, best, buf, len);
            continue;
        }

        name = kind == SETTINGS_NAME_KEY ? s->key
               : kind == SETTINGS_NAME_ENV ? s->env
               : s->flag ? s->flag + 2 : NULL;
        if (name == NULL) {
            continue;
        }

        n = kind == SETTINGS_NAME_FLAG ? strcspn(name, " ") : strlen(name);
        d = settings_distance(word, lw, name, n);

        /* a typo, not another word: up to a third of the letters after
           what the two share in front (OBS_SIDECAR_...), at least 2 */
        for (same = 0; same < lw && same < n && word[same] == name[same];
             same++) { /* void */ }
        limit = (lw - same) / 3 > 2 ? (lw - same) / 3 : 2;

        if (d <= limit && d < *best && n < len) {
            *best = d;
            memcpy(buf, name, n);
            buf[n] = '\0';
        }
    }
}

/*
 * Optimal string alignment distance (Damerau-Levenshtein without repeated
 * edits of one substring): the typos people make.  Names are short; longer
 * words are not typos of them.
 */

static size_t
settings_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t  d[65][65], i, j, cost, v;

    if (la > 64 || lb > 64) {
        return (size_t) -1;
    }

    for (i = 0; i <= la; i++) {
        d[i][0] = i;
    }
    for (j = 0; j <= lb; j++) {
        d[0][j] = j;
    }

    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            cost = tolower((unsigned char) a[i - 1])
                   != tolower((unsigned char) b[j - 1]);
            v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) {
                v = d[i][j - 1] + 1;
            }
            if (d[i - 1][j - 1] + cost < v) {
                v = d[i - 1][j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < v)
            {
                v = d[i - 2][j - 2] + 1;
            }
            d[i][j] = v;
        }
    }

    return d[la][lb];
}

/* Prints text from column indent on, in lines of at most 79 columns (the
   cursor stands just before column indent, after a label). */

static void
settings_wrap(FILE *out, const char *text, int indent)
{
    int  col = indent - 1, n;

    while (*text) {
        n = (int) strcspn(text, " ");
        if (col >= indent && col + 1 + n > 79) {
            fprintf(out, "\n%*s", indent - 1, "");
            col = indent - 1;
        }
        fprintf(out, " %.*s", n, text);
        col += 1 + n;
        text += n;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

/* One line of --help: a label, then the text wrapped beside it (below it
   when the label is wider than its column). */

static void
settings_usage_row(FILE *out, const char *label, const char *text)
{
    if (strlen(label) > 28) {
        fprintf(out, "  %s\n", label);
        label = "";
    }
    fprintf(out, "  %-28s", label);
    settings_wrap(out, text, 31);
}

void
settings_usage(FILE *out, const setting_t *table)
{
    const setting_t  *s;
    char              label[64];

    for (s = table; s->help; s++) {
        if (s->type == SETTING_OBJECT) {
            settings_usage(out, s->more);
            continue;
        }
        if (s->flag == NULL && s->env == NULL) {
            continue;
        }
        if (s->flag == NULL) {
            /* an environment variable with no flag names itself */
            snprintf(label, sizeof(label), "env %s", s->env);
            settings_usage_row(out, label, s->help);
            continue;
        }
        settings_usage_row(out, s->flag, s->help);
        if (s->env) {
            fprintf(out, "  %-28s (env %s)\n", "", s->env);
        }
    }
}

/* One row per setting: key, flag, environment, type, default, meaning. */

static void
settings_markdown_rows(FILE *out, const setting_t *table, const void *base,
    const char *prefix)
{
    const setting_t  *s;
    char              key[128], type[128], def[128];
    const void       *field;

    for (s = table; s->help; s++) {
        snprintf(key, sizeof(key), "%s%s%s", prefix ? prefix : "",
                 prefix && s->key ? "." : "", s->key ? s->key : "");
        if (s->type == SETTING_OBJECT) {
            settings_markdown_rows(out, s->more,
                                   (const char *) base + s->offset,
                                   key[0] ? key : NULL);
            continue;
        }

        field = (const char *) base + s->offset;
        def[0] = '\0';
        switch (s->type) {
        case SETTING_STRING:
        case SETTING_NONEMPTY:
        case SETTING_URL:
            if (*(char *const *) field) {
                snprintf(def, sizeof(def), "`%s`", *(char *const *) field);
            }
            break;
        case SETTING_LONG:
            snprintf(def, sizeof(def), "%ld", *(const long *) field);
            break;
        case SETTING_SIZE:
            snprintf(def, sizeof(def), "%zu", *(const size_t *) field);
            break;
        case SETTING_NUMBER:
            snprintf(def, sizeof(def), "%g", *(const double *) field);
            break;
        case SETTING_BOOL:
            snprintf(def, sizeof(def), "%s",
                     *(const int *) field ? "true" : "false");
            break;
        case SETTING_ENUM:
            snprintf(def, sizeof(def), "`%s`",
                     ((const char *const *) s->more)[*(const int *) field]);
            break;
        default:
            break;
        }

        fprintf(out, "| %s%s%s | %s%s%s | %s%s%s | %s | %s | %s |\n",
                s->key ? "`" : "", s->key ? key : "", s->key ? "`" : "",
                s->flag ? "`" : "", s->flag ? s->flag : "",
                s->flag ? "`" : "",
                s->env ? "`" : "", s->env ? s->env : "", s->env ? "`" : "",
                settings_type_text(s, type, sizeof(type)),
                def[0] ? def : "—", s->help);
    }
}

void
settings_markdown(FILE *out, const setting_t *table, const void *base)
{
    fprintf(out, "| config key | flag | environment | value | default "
            "| meaning |\n|---|---|---|---|---|---|\n");
    settings_markdown_rows(out, table, base, NULL);
}

void
settings_diff(const setting_t *table, const char *prefix, const void *a,
    const void *b, char *out, size_t len)
{
    const setting_t  *s;
    const void       *x, *y;
    const char       *sx, *sy;
    char              key[128];
    int               same;
    size_t            n;

    for (s = table; s->help; s++) {
        snprintf(key, sizeof(key), "%s%s%s", prefix ? prefix : "",
                 prefix && s->key ? "." : "", s->key ? s->key : "");
        x = (const char *) a + s->offset;
        y = (const char *) b + s->offset;

        switch (s->type) {
        case SETTING_OBJECT:
            settings_diff(s->more, key[0] ? key : NULL, x, y, out, len);
            continue;
        case SETTING_STRING:
        case SETTING_NONEMPTY:
        case SETTING_URL:
        case SETTING_SECRET:
            sx = *(char *const *) x;
            sy = *(char *const *) y;
            same = sx == sy || (sx && sy && strcmp(sx, sy) == 0);
            break;
        case SETTING_LONG:
            same = *(const long *) x == *(const long *) y;
            break;
        case SETTING_SIZE:
            same = *(const size_t *) x == *(const size_t *) y;
            break;
        case SETTING_NUMBER:
            same = *(const double *) x == *(const double *) y;
            break;
        case SETTING_BOOL:
        case SETTING_ENUM:
            same = *(const int *) x == *(const int *) y;
            break;
        default:
            same = 1;
            break;
        }

        n = strlen(out);
        if (!same && s->key && strstr(out, key) == NULL && n + 1 < len) {
            snprintf(out + n, len - n, " %s", key);
        }
    }
}

int
settings_url_ok(const char *url)
{
    size_t  n;

    n = strncasecmp(url, "http://", 7) == 0 ? 7
        : strncasecmp(url, "https://", 8) == 0 ? 8 : 0;

    return n != 0 && url[n] != '\0' && strchr("/?#:", url[n]) == NULL
           && strpbrk(url, " \t\r\n") == NULL;
}

int
settings_read_secret(const char *path, char **out, const char *setting,
    char *err, size_t errlen)
{
    FILE         *f;
    char          line[4096];
    size_t        n, len;
    int           fd;
    struct stat   st;

    /* a FIFO would block in fopen() until a writer came, a device would
       give a secret nobody has: a regular file (or a symlink to one) */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "config: %s: %s is %s, not a regular file",
                 setting, path,
                 S_ISDIR(st.st_mode) ? "a directory" : "a special file");
        return -1;
    }

    fd = open(path, O_RDONLY | O_NONBLOCK);
    f = fd == -1 ? NULL : fdopen(fd, "r");
    if (f == NULL) {
        snprintf(err, errlen, "config: %s: cannot read %s: %s", setting,
                 path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "config: %s: %s is not a regular file",
                 setting, path);
        fclose(f);
        return -1;
    }

    n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);

    for (len = 0; len < n && line[len] != '\r' && line[len] != '\n'; len++) {
        /* the first line */
    }

    /* a C string would end at a NUL: the secret sent (or a key's HMAC)
       would silently be shorter than the one written in the file */
    if (memchr(line, '\0', len) != NULL) {
        snprintf(err, errlen, "config: %s: %s has a NUL byte on its first "
                 "line", setting, path);
        return -1;
    }

    line[len] = '\0';

    if (line[0] == '\0') {
        snprintf(err, errlen, "config: %s: %s is empty", setting, path);
        return -1;
    }

    settings_replace(out, line);
    return 0;
}

/* The row of a key, also in the tables spliced in by a row without a key
   (their keys are this level's). */

static const setting_t *
settings_lookup(const setting_t *table, void *base, const char *key,
    void **row_base)
{
    const setting_t  *s, *found;

    for (s = table; s->help; s++) {
        if (s->key == NULL && s->type == SETTING_OBJECT) {
            found = settings_lookup(s->more, (char *) base + s->offset, key,
                                    row_base);
            if (found) {
                return found;
            }
        } else if (s->key && strcmp(s->key, key) == 0) {
            *row_base = base;
            return s;
        }
    }

    return NULL;
}

/* One value, from JSON (v) or from the text of a variable or flag. */

static int
settings_value(const setting_t *s, void *base, json_t *v, const char *text,
    const char *where, char *err, size_t errlen)
{
    const char *const  *names;
    const char         *str;
    double              x;
    int                 i;

    if (s->type == SETTING_CUSTOM) {
        return s->set(s, base, v, text, where, err, errlen);
    }

    if (s->type == SETTING_BOOL) {
        if (v && !json_is_boolean(v)) {
            snprintf(err, errlen, "config: \"%s\" must be true or false",
                     where);
            return -1;
        }
        if (v) {
            *FIELD(base, s, int) = json_is_true(v);
            return 0;
        }
        for (i = 0; i < 2; i++) {
            static const char *const  words[2][3] = {
                { "off", "false", "0" }, { "on", "true", "1" }
            };
            if (strcmp(text, words[i][0]) == 0
                || strcmp(text, words[i][1]) == 0
                || strcmp(text, words[i][2]) == 0)
            {
                *FIELD(base, s, int) = i;
                return 0;
            }
        }
        snprintf(err, errlen, "%s: \"%s\" is neither on nor off", where,
                 text);
        return -1;
    }

    if (s->type == SETTING_LONG || s->type == SETTING_SIZE
        || s->type == SETTING_NUMBER)
    {
        if (settings_number(s, v, text, where, &x, err, errlen) != 0) {
            return -1;
        }
        if (s->type == SETTING_LONG) {
            *FIELD(base, s, long) = (long) x;
        } else if (s->type == SETTING_SIZE) {
            *FIELD(base, s, size_t) = (size_t) x;
        } else {
            *FIELD(base, s, double) = x;
        }
        return 0;
    }

    if (v && !json_is_string(v)) {
        snprintf(err, errlen, "config: \"%s\" must be a string%s", where,
                 s->type == SETTING_ENUM ? " (see --help)" : "");
        return -1;
    }
    str = v ? json_string_value(v) : text;

    switch (s->type) {
    case SETTING_NONEMPTY:
        if (*str == '\0') {
            snprintf(err, errlen, "config: \"%s\" must be a non-empty "
                     "string", where);
            return -1;
        }
        break;
    case SETTING_URL:
        if (!settings_url_ok(str)) {
            snprintf(err, errlen, "%s: \"%.256s\" is not an http:// or "
                     "https:// URL with a host", where, str);
            return -1;
        }
        break;
    case SETTING_SECRET:
        return settings_read_secret(str, FIELD(base, s, char *), where, err,
                                    errlen);
    case SETTING_ENUM:
        names = s->more;
        for (i = 0; names[i] && strcmp(names[i], str) != 0; i++) {
            /* find it */
        }
        if (names[i] == NULL) {
            snprintf(err, errlen, "%s: \"%s\" must be %s%s%s%s%s", where,
                     str, names[0], names[2] ? ", " : " or ", names[1],
                     names[2] ? " or " : "", names[2] ? names[2] : "");
            return -1;
        }
        *FIELD(base, s, int) = i;
        return 0;
    default:
        break;
    }

    settings_replace(FIELD(base, s, char *), str);
    return 0;
}

static int
settings_number(const setting_t *s, json_t *v, const char *text,
    const char *where, double *out, char *err, size_t errlen)
{
    char  *end;
    int    integral = s->type != SETTING_NUMBER;

    if (v) {
        if (integral ? !json_is_integer(v) : !json_is_number(v)) {
            goto bad;
        }
        *out = json_number_value(v);
    } else {
        /* strtol and strtod skip blanks before a number and read hex: the
           text must be a decimal number and nothing else */
        if (*text == '\0' || isspace((unsigned char) *text)
            || strpbrk(text, "xX") != NULL)
        {
            goto bad;
        }
        errno = 0;
        *out = integral ? (double) strtol(text, &end, 10)
                        : strtod(text, &end);
        if (*end != '\0' || errno) {
            goto bad;
        }
    }

    if (*out >= s->min && *out <= s->max) {
        return 0;
    }

bad:
    snprintf(err, errlen, "config: \"%s\" must be %s from %.15g to %.15g",
             where,
             integral ? "an integer" : "a number", s->min, s->max);
    return -1;
}

static void
settings_replace(char **slot, const char *value)
{
    free(*slot);
    *slot = strdup(value);
}

static const char *
settings_type_text(const setting_t *s, char *buf, size_t len)
{
    const char *const  *names;

    switch (s->type) {
    case SETTING_LONG:
    case SETTING_SIZE:
        snprintf(buf, len, "integer %.15g–%.15g", s->min, s->max);
        return buf;
    case SETTING_NUMBER:
        snprintf(buf, len, "number %.15g–%.15g", s->min, s->max);
        return buf;
    case SETTING_BOOL:
        return "true/false";
    case SETTING_ENUM:
        names = s->more;
        snprintf(buf, len, "`%s`, `%s`%s%s%s", names[0], names[1],
                 names[2] ? ", `" : "", names[2] ? names[2] : "",
                 names[2] ? "`" : "");
        return buf;
    case SETTING_URL:
        return "URL";
    case SETTING_SECRET:
        return "file";
    case SETTING_CUSTOM:
        return "see below";
    default:
        return "string";
    }
}
