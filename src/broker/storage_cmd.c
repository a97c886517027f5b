/* storage_cmd.c - kafka-storage.sh: random-uuid, format, info. Messages and
 * exit codes follow Kafka 3.6.1's StorageTool. */
#include "broker/storage_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/bootstrap.h"
#include "broker/topics.h"
#include "storage/checkpoint.h"
#include "util/props.h"

void storage_random_uuid(char out[23]) {
    kuuid id;
    random_topic_id(&id);
    kafka_uuid_to_string(id.b, out);
}

static int mkdirs(const char *path) {
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
    return 0;
}

int storage_format_dir(const char *dir, const char *cluster_id, int node_id, char *err, size_t errlen) {
    if (mkdirs(dir) < 0) {
        snprintf(err, errlen, "Unable to create storage directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char text[512], date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a %b %d %H:%M:%S %Z %Y", &tm);
    int n = snprintf(text, sizeof text, "#\n#%s\ncluster.id=%s\nnode.id=%d\nversion=1\n", date, cluster_id,
                     node_id);
    char path[2100];
    snprintf(path, sizeof path, "%s/meta.properties", dir);
    if (ckpt_write_atomic(path, text, (size_t)n) != 0) {
        snprintf(err, errlen, "Unable to write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int storage_read_meta(const char *dir, char *cluster_id, size_t idlen, int *node_id, char *err,
                      size_t errlen) {
    char path[2100];
    snprintf(path, sizeof path, "%s/meta.properties", dir);
    if (access(path, F_OK) != 0) return 1;
    props p;
    props_init(&p);
    if (props_load_file(&p, path, err, errlen) != 0) {
        props_free(&p);
        return -1;
    }
    const char *cid = props_get(&p, "cluster.id");
    const char *nid = props_get(&p, "node.id");
    const char *ver = props_get(&p, "version");
    int rc = 0;
    if (!cid || !ver) {
        snprintf(err, errlen, "%s is missing cluster.id or version", path);
        rc = -1;
    } else {
        snprintf(cluster_id, idlen, "%s", cid);
        *node_id = nid ? atoi(nid) : -1;
    }
    props_free(&p);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: kafka-storage [-h] {info,format,random-uuid} ...\n\n"
            "The Kafka storage tool.\n\n"
            "positional arguments:\n"
            "  {info,format,random-uuid}\n"
            "    info                 Get information about the Kafka log directories on this node.\n"
            "    format               Format the Kafka log directories on this node.\n"
            "    random-uuid          Print a random UUID.\n\n"
            "optional arguments:\n"
            "  -h, --help             show this help message and exit\n");
}

static int load_config(const char *file, broker_config *cfg) {
    props p;
    props_init(&p);
    char err[1024];
    if (props_load_file(&p, file, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        props_free(&p);
        return -1;
    }
    int rc = broker_config_load(cfg, &p, err, sizeof err);
    props_free(&p);
    if (rc != 0) fprintf(stderr, "%s\n", err);
    return rc;
}

/* The dirs a node uses: log.dirs plus metadata.log.dir when different. */
static int all_dirs(const broker_config *cfg, const char **out, int max) {
    int n = 0;
    for (int i = 0; i < cfg->nlog_dirs && n < max; i++) out[n++] = cfg->log_dirs[i];
    if (cfg->metadata_log_dir[0]) {
        bool seen = false;
        for (int i = 0; i < n; i++)
            if (strcmp(out[i], cfg->metadata_log_dir) == 0) seen = true;
        if (!seen && n < max) out[n++] = cfg->metadata_log_dir;
    }
    return n;
}

static int cmd_format(int argc, char **argv) {
    const char *cluster_id = NULL, *config = NULL;
    bool ignore = false;
    const char *scram[64];
    int nscram = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--cluster-id")) && i + 1 < argc) cluster_id = argv[++i];
        else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "-g") || !strcmp(argv[i], "--ignore-formatted")) ignore = true;
        else if ((!strcmp(argv[i], "-r") || !strcmp(argv[i], "--release-version")) && i + 1 < argc) i++;
        else if ((!strcmp(argv[i], "-S") || !strcmp(argv[i], "--add-scram")) && i + 1 < argc) {
            if (nscram < 64) scram[nscram++] = argv[i + 1];
            i++;
        }
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: kafka-storage format [-h] --config CONFIG --cluster-id CLUSTER_ID\n"
                   "                     [--add-scram ADD_SCRAM] [--ignore-formatted]\n"
                   "                     [--release-version RELEASE_VERSION]\n");
            return 0;
        } else {
            fprintf(stderr, "kafka-storage: error: unrecognized arguments: '%s'\n", argv[i]);
            return 1;
        }
    }
    if (!config || !cluster_id) {
        fprintf(stderr, "kafka-storage: error: argument --%s is required\n", !config ? "config/-c" : "cluster-id/-t");
        return 1;
    }
    uint8_t idb[16];
    if (kafka_uuid_from_string(cluster_id, strlen(cluster_id), idb) != 0) {
        fprintf(stderr, "Cluster ID string %s does not appear to be a valid UUID: Input string `%s` decoded as "
                        "%zu bytes, which is not equal to the expected 16 bytes of a base64-encoded UUID\n",
                cluster_id, cluster_id, strlen(cluster_id) * 3 / 4);
        return 1;
    }
    /* The bootstrap records: metadata.version and the --add-scram credentials. */
    mimage *boot = mimage_new(-1);
    if (!boot) return 1;
    boot->metadata_version = METADATA_VERSION_LEVEL;
    for (int i = 0; i < nscram; i++) {
        char err[512];
        /* StorageTool takes the first blank-separated word of each argument */
        char one[2048];
        snprintf(one, sizeof one, "%.*s", (int)strcspn(scram[i], " \t\n"), scram[i]);
        if (bootstrap_add_scram(boot, one, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            mimage_free(boot);
            return 1;
        }
    }
    broker_config cfg;
    if (load_config(config, &cfg) != 0) {
        mimage_free(boot);
        return 1;
    }
    const char *dirs[MAX_LOG_DIRS + 1];
    int n = all_dirs(&cfg, dirs, MAX_LOG_DIRS + 1);
    int unformatted = 0;
    for (int i = 0; i < n; i++) {
        char cid[64], err[512];
        int nid;
        int rc = storage_read_meta(dirs[i], cid, sizeof cid, &nid, err, sizeof err);
        if (rc == 0 && !ignore) {
            fprintf(stderr, "Log directory %s is already formatted. Use --ignore-formatted to ignore this "
                            "directory and format the others.\n", dirs[i]);
            broker_config_free(&cfg);
            mimage_free(boot);
            return 1;
        }
        if (rc != 0) unformatted++;
    }
    if (unformatted == 0) {
        printf("All of the log directories are already formatted.\n");
        broker_config_free(&cfg);
        mimage_free(boot);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        char cid[64], err[512];
        int nid;
        if (storage_read_meta(dirs[i], cid, sizeof cid, &nid, err, sizeof err) == 0) continue;
        if (storage_format_dir(dirs[i], cluster_id, cfg.node_id, err, sizeof err) != 0 ||
            bootstrap_write(dirs[i], boot, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            broker_config_free(&cfg);
            mimage_free(boot);
            return 1;
        }
        printf("Formatting %s with metadata.version %s.\n", dirs[i], METADATA_VERSION_NAME);
    }
    broker_config_free(&cfg);
    mimage_free(boot);
    return 0;
}

static int cmd_info(int argc, char **argv) {
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: kafka-storage info [-h] --config CONFIG\n");
            return 0;
        } else {
            fprintf(stderr, "kafka-storage: error: unrecognized arguments: '%s'\n", argv[i]);
            return 1;
        }
    }
    if (!config) {
        fprintf(stderr, "kafka-storage: error: argument --config/-c is required\n");
        return 1;
    }
    broker_config cfg;
    if (load_config(config, &cfg) != 0) return 1;
    const char *dirs[MAX_LOG_DIRS + 1];
    int n = all_dirs(&cfg, dirs, MAX_LOG_DIRS + 1);
    char found[4096] = "", problems[4096] = "", meta[512] = "";
    int nfound = 0, nproblems = 0;
    for (int i = 0; i < n; i++) {
        char cid[64], err[512];
        int nid;
        int rc = storage_read_meta(dirs[i], cid, sizeof cid, &nid, err, sizeof err);
        if (rc == 0) {
            nfound++;
            snprintf(found + strlen(found), sizeof found - strlen(found), "  %s\n", dirs[i]);
            snprintf(meta, sizeof meta, "{cluster.id=%s, node.id=%d, version=1}", cid, nid);
        } else {
            nproblems++;
            if (access(dirs[i], F_OK) != 0)
                snprintf(problems + strlen(problems), sizeof problems - strlen(problems),
                         "  %s does not exist\n", dirs[i]);
            else
                snprintf(problems + strlen(problems), sizeof problems - strlen(problems),
                         "  %s is not formatted.\n", dirs[i]);
        }
    }
    if (nfound) printf("Found log director%s:\n%s\n", nfound == 1 ? "y" : "ies", found);
    if (meta[0]) printf("Found metadata: %s\n\n", meta);
    if (nproblems) printf("Found problem%s:\n%s\n", nproblems == 1 ? "" : "s", problems);
    broker_config_free(&cfg);
    return nproblems ? 1 : 0;
}

int storage_main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "random-uuid")) {
        char id[23];
        storage_random_uuid(id);
        printf("%s\n", id);
        return 0;
    }
    if (!strcmp(argv[1], "format")) return cmd_format(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
    usage(stderr);
    fprintf(stderr, "kafka-storage: error: argument command: invalid choice: '%s' (choose from 'info', "
                    "'format', 'random-uuid')\n", argv[1]);
    return 1;
}
