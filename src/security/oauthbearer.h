/* oauthbearer.h - SASL/OAUTHBEARER (RFC 7628) with Kafka's default server
 * side, OAuthBearerUnsecuredValidatorCallbackHandler: unsecured JWS tokens
 * ("alg":"none", no signature) whose principal claim (default "sub") names
 * the user and whose "exp" bounds the session. For tests and development,
 * exactly as Kafka's default (which is not meant for production either).
 * Pure: the wall-clock time is passed in.
 */
#ifndef SAMSA_OAUTHBEARER_H
#define SAMSA_OAUTHBEARER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The unsecuredValidator* options of the mechanism's JAAS entry. */
typedef struct oauth_validator {
    char principal_claim[64];   /* unsecuredValidatorPrincipalClaimName (sub) */
    char scope_claim[64];       /* unsecuredValidatorScopeClaimName (scope) */
    char required_scope[256];   /* unsecuredValidatorRequiredScope, space-separated */
    int64_t clock_skew_ms;      /* unsecuredValidatorAllowableClockSkewMs (0) */
} oauth_validator;

void oauth_validator_defaults(oauth_validator *v);

typedef struct oauth_token {
    char principal[256];
    int64_t expires_wall_ms;    /* exp */
} oauth_token;

/* The client's initial response "n,[a=<authzid>],\x01auth=Bearer <token>\x01[k=v\x01]*\x01".
 * Returns 0 with the token text (malloc'd) and authzid, or -1 with Kafka's
 * message in err. */
int oauth_parse_initial_response(const uint8_t *in, size_t len, char **token, char *authzid, size_t authzid_len,
                                 char *err, size_t errlen);
/* Validates an unsecured JWS at wall-clock time now_ms. -1 with the reason in
 * err (the client only gets {"status":"invalid_token"}). */
int oauth_validate_unsecured(const oauth_validator *v, const char *token, int64_t now_ms, oauth_token *out, char *err,
                             size_t errlen);

#endif
