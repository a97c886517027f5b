/* base64.h - standard base64 (RFC 4648 section 4, '+' '/' and '=' padding),
 * as etcd's JSON gateway writes keys and values. */
#ifndef SAMSA_BASE64_H
#define SAMSA_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for len bytes (padding included, no NUL). */
static inline size_t base64_encoded_len(size_t len) { return (len + 2) / 3 * 4; }
/* Upper bound of the bytes base64_decode writes for len characters. */
static inline size_t base64_decoded_max(size_t len) { return (len + 3) / 4 * 3; }

/* Writes base64_encoded_len(len) characters and a NUL to out; returns the
 * length without the NUL. */
size_t base64_encode(const uint8_t *in, size_t len, char *out);
/* Decodes len characters (padding optional, no whitespace) into out, which
 * must hold base64_decoded_max(len) bytes. Returns the decoded length, or -1
 * for a character outside the alphabet, misplaced padding or a length that no
 * encoding produces. */
long base64_decode(const char *in, size_t len, uint8_t *out);

#endif
