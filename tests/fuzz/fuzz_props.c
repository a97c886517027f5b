/* fuzz_props.c - libFuzzer target for the .properties parser and the broker
 * and topic configuration loaders.
 *
 * The input is a properties file. It is parsed from a string and from a
 * file (the two paths must agree), every key/value is run through the topic
 * config validator, and the result is loaded as a broker config and used to
 * resolve a topic's settings with the same pairs as overrides. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_props tests/fuzz/corpus/props
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "util/log.h"
#include "util/props.h"

#define FUZZ_MAX_INPUT (64u << 10)

static char props_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR); /* unknown keys are warned about once each: noise */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(props_path, sizeof props_path, "%s/fuzz_props.%d.properties", base, (int)getpid());
    return 0;
}

static bool same_props(const props *a, const props *b) {
    if (a->count != b->count) return false;
    for (int i = 0; i < a->count; i++)
        if (strcmp(a->items[i].key, b->items[i].key) || strcmp(a->items[i].value, b->items[i].value))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    /* props_load_string takes C text: stop at the first NUL, as a file read would not */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t text_len = strlen(text);

    props p;
    props_init(&p);
    int rc = props_load_string(&p, text);

    FILE *f = fopen(props_path, "w");
    if (f) {
        fwrite(text, 1, text_len, f);
        fclose(f);
        props pf;
        props_init(&pf);
        char err[256];
        int rcf = props_load_file(&pf, props_path, err, sizeof err);
        if (rc == 0 && rcf == 0 && !same_props(&p, &pf)) __builtin_trap();
        props_free(&pf);
        unlink(props_path);
    }

    if (rc == 0) {
        const char **keys = calloc((size_t)p.count + 1, sizeof *keys);
        const char **values = calloc((size_t)p.count + 1, sizeof *values);
        char err[512];
        int nvalid = 0;
        for (int i = 0; keys && values && i < p.count; i++) {
            /* topic overrides reach the resolver only after validation, as in the broker */
            if (topic_config_validate(p.items[i].key, p.items[i].value, err, sizeof err) != 0) continue;
            keys[nvalid] = p.items[i].key;
            values[nvalid++] = p.items[i].value;
        }
        broker_config c;
        if (broker_config_load(&c, &p, err, sizeof err) == 0) {
            if (keys && values) {
                topic_config tc;
                topic_config_resolve(&tc, &c, keys, values, nvalid);
            }
            broker_config_free(&c);
        }
        free(keys);
        free(values);
    }
    props_free(&p);
    free(text);
    return 0;
}
