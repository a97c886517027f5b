/* props.h - Java .properties files: key=value / key: value / key value,
 * '#' and '!' comments, backslash line continuations and escapes (\t \n
 * \uXXXX). Keys keep their file order; a later key overrides an earlier. */
#ifndef SAMSA_PROPS_H
#define SAMSA_PROPS_H

#include <stddef.h>

typedef struct prop {
    char *key;
    char *value;
} prop;

typedef struct props {
    prop *items;
    int count, cap;
} props;

void props_init(props *p);
void props_free(props *p);
/* Parse a file; returns 0, or -1 with a message in err. */
int props_load_file(props *p, const char *path, char *err, size_t errlen);
int props_load_string(props *p, const char *text);
/* Set (replace or add). */
int props_set(props *p, const char *key, const char *value);
const char *props_get(const props *p, const char *key);

#endif
