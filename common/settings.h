/*
 * Settings described once, in the spirit of nginx's ngx_command_t: each
 * row names a setting's config-file key, type, place in its structure,
 * bounds, environment variable, flag and help text.  Parsing the JSON file,
 * the environment and the flags, refusing unknown keys by name, --help and
 * docs/sidecar.md's table are all derived from the rows.
 */

#ifndef OBS_SETTINGS_H
#define OBS_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

typedef enum {
    SETTING_STRING,         /* char *: any string */
    SETTING_NONEMPTY,       /* char *: a non-empty string */
    SETTING_URL,            /* char *: http:// or https:// with a host */
    SETTING_SECRET,         /* char *: the first line of the file named */
    SETTING_LONG,           /* long in [min, max] */
    SETTING_SIZE,           /* size_t in [min, max] */
    SETTING_NUMBER,         /* double in [min, max] */
    SETTING_BOOL,           /* int: true/false; on/off in the environment */
    SETTING_ENUM,           /* int: the index of one of names */
    SETTING_OBJECT,         /* a nested table at offset */
    SETTING_CUSTOM          /* parsed by set */
} setting_type_t;

typedef struct setting_s  setting_t;

/* A custom setting: from JSON (v) or text (env or flag, v NULL). */
typedef int (*setting_set_pt)(const setting_t *s, void *base, json_t *v,
    const char *text, const char *where, char *err, size_t errlen);

struct setting_s {
    const char            *key;         /* config-file key; NULL: none */
    setting_type_t         type;
    size_t                 offset;      /* in the structure of the table */
    double                 min, max;    /* numbers: inclusive bounds */
    const char            *env;         /* environment variable, or NULL */
    const char            *flag;        /* "--name ARG", "--no-x", or NULL */
    const char            *help;
    const void            *more;        /* ENUM: names; OBJECT: table */
    setting_set_pt         set;         /* CUSTOM */
};

#define SETTINGS_END  { NULL, SETTING_CUSTOM, 0, 0, 0, NULL, NULL, NULL, \
                        NULL, NULL }

/*
 * Applies a JSON object to base: every key must be a row of table (else
 * "unknown setting \"prefix.key\""); errors name prefix.key.
 */
int settings_json(const setting_t *table, const char *prefix, void *base,
    json_t *obj, char *err, size_t errlen);

/* Applies each row's environment variable that is set and not empty. */
int settings_env(const setting_t *table, void *base, char *err,
    size_t errlen);

/* Applies one flag's argument (NULL for a flag without one) to base. */
int settings_flag(const setting_t *s, void *base, const char *arg,
    char *err, size_t errlen);

/* Finds the row (in table or its nested tables) whose flag is name, and
   the base it applies to. */
const setting_t *settings_find_flag(const setting_t *table, void *base,
    const char *name, void **row_base);

/* What settings_nearest compares a word with. */
typedef enum {
    SETTINGS_NAME_KEY = 0,      /* config-file keys of this level */
    SETTINGS_NAME_FLAG,         /* flags, without "--" (nested tables too) */
    SETTINGS_NAME_ENV           /* environment variables (nested too) */
} settings_name_t;

/*
 * The name of the kind given in table closest to word (a typo: a few
 * letters added, left out, changed or swapped), or NULL when none is.
 * For error messages: "did you mean ...?".
 */
const char *settings_nearest(const setting_t *table, settings_name_t kind,
    const char *word, char *buf, size_t len);

/* Prints the flags and environment variables of the rows, for --help. */
void settings_usage(FILE *out, const setting_t *table);

/* Prints docs/sidecar.md's markdown table, with the defaults held in base. */
void settings_markdown(FILE *out, const setting_t *table, const void *base);

/*
 * Appends " prefix.key" to out (len bytes) for each row with a key whose
 * value differs between a and b (custom rows are not compared).
 */
void settings_diff(const setting_t *table, const char *prefix, const void *a,
    const void *b, char *out, size_t len);

/* Whether url is http:// or https:// with a host. */
int settings_url_ok(const char *url);

/* Reads the first line of a secret file (a NUL byte in it is an error);
   errors name setting. */
int settings_read_secret(const char *path, char **out, const char *setting,
    char *err, size_t errlen);

#endif
