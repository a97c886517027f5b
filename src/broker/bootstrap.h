/* bootstrap.h - <metadata dir>/bootstrap.checkpoint, as Kafka's
 * BootstrapDirectory: the records a new cluster's metadata log starts with
 * (metadata.version and the SCRAM credentials of `kafka-storage format
 * --add-scram`), written by the format command in KRaft snapshot form and
 * read when a node opens an empty metadata log.
 */
#ifndef SAMSA_BOOTSTRAP_H
#define SAMSA_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>

#include "metadata/image.h"
#include "metadata/snapshot.h"

/* One --add-scram argument ('SCRAM-SHA-256=[name=alice,password=alice-secret]',
 * or with salt=<base64>,saltedpassword=<base64>,iterations=N) applied to img
 * as a UserScramCredentialRecord. -1 with StorageTool's message in err. */
int bootstrap_add_scram(mimage *img, const char *arg, char *err, size_t errlen);
/* Writes img (its metadata.version and SCRAM credentials) to dir/bootstrap.checkpoint. */
int bootstrap_write(const char *dir, const mimage *img, char *err, size_t errlen);
/* The bootstrap image of dir (metadata.version and SCRAM credentials):
 * *out NULL when dir has no bootstrap.checkpoint. -1 on an unreadable file. */
int bootstrap_load(const char *dir, mimage **out, char *err, size_t errlen);
/* The bootstrap records of dir, if it has a bootstrap.checkpoint (*found).
 * Only FeatureLevelRecord and UserScramCredentialRecord are passed on. */
int bootstrap_read(const char *dir, msnap_record_fn fn, void *ctx, bool *found, char *err, size_t errlen);

#endif
