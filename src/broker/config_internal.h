/* config_internal.h - what config.c and config_describe.c share and nobody
 * else needs: the layout of a key definition and the value helpers. */
#ifndef SAMSA_CONFIG_INTERNAL_H
#define SAMSA_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"

enum { CK_NONE, CK_MIN, CK_RANGE, CK_IN, CK_LIST_IN, CK_VERSION, CK_THROTTLED };

#define CF_DYNAMIC 1       /* AlterConfigs may change it on a running broker */
#define CF_LISTENER_ONLY 2 /* dynamic only with a listener.name.X. prefix */

struct config_def {
    const char *name;
    int8_t type;          /* CFG_* */
    uint8_t check;        /* CK_* */
    uint8_t flags;        /* CF_* */
    const char *dflt;     /* as DescribeConfigs shows it; NULL = none */
    int64_t lo, hi;       /* CK_MIN / CK_RANGE bounds */
    const char *choices;  /* CK_IN / CK_LIST_IN: "a,b,c" */
};

bool config_parse_integer(const char *s, int64_t lo, int64_t hi, int64_t *out);
bool config_parse_double(const char *s, double *out);
bool config_parse_bool(const char *s, bool *out);
void config_format_double(double v, char *out, size_t outlen);
void config_list_bracketed(const char *list, char *out, size_t outlen);
void config_normalize(int type, const char *value, char *out, size_t outlen);
const char *config_layer_get(const config_layers *l, const char *name, int8_t *source);
const char *config_topic_inherited(const config_layers *l, const config_def *d, char *buf, size_t buflen);

#endif
