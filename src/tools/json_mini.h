/* json_mini.h - a small strict JSON reader and writer for the tools.
 *
 * Enough JSON for the input files Kafka's tools take (kafka-delete-records'
 * --offset-json-file) and the JSON lines they print (kafka-log-dirs).
 * Parsing is strict RFC 8259, like Jackson's defaults: no comments, no
 * trailing commas, no leading zeros; text after the first value is ignored,
 * as Jackson's ObjectMapper.readTree does. Nesting depth is bounded.
 * Every node lives in the caller's arena.
 */
#ifndef SAMSA_TOOLS_JSON_MINI_H
#define SAMSA_TOOLS_JSON_MINI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/arena.h"

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_INT,    /* integer that fits in int64 (Jackson's IntNode/LongNode) */
    JSON_BIGINT, /* integer beyond int64 */
    JSON_FLOAT,  /* number with fraction or exponent */
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int boolean;
    int64_t integer;
    const char *text;    /* JSON_STRING: decoded UTF-8; numbers: their source text */
    size_t text_len;
    json_value **items;  /* array elements or object values */
    const char **keys;   /* object keys (decoded, NUL-terminated) */
    size_t count;
};

/* Parses the first JSON value in text[0..len). Returns it, or NULL with a
 * message in err when the text is not JSON. */
json_value *json_parse(const char *text, size_t len, karena *a, char *err, size_t errlen);

/* Object member by key (the last one if repeated, as Jackson keeps it), or NULL. */
const json_value *json_get(const json_value *obj, const char *key);

/* True if an int64 integer fits Java's int (Jackson's isInt()). */
int json_is_int32(const json_value *v);

/* Writes v as compact JSON (Jackson's JsonNode.toString). */
void json_write(FILE *f, const json_value *v);
/* Writes s as a JSON string literal, escaping like Jackson. */
void json_write_string(FILE *f, const char *s, size_t len);

#endif
