/* fetch_session.c - incremental fetch sessions (see fetch_session.h). */
#include "broker/fetch_session.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "protocol/errors.h"

static fsession *sessions[FSESSION_CACHE_SLOTS];
static int nsessions;
static broker *the_broker;

void fsession_init(broker *b) { the_broker = b; }

static void session_free(fsession *s) {
    for (int i = 0; i < s->nparts; i++) free(s->parts[i].topic);
    free(s->parts);
    free(s);
}

void fsession_shutdown(void) {
    for (int i = 0; i < nsessions; i++) session_free(sessions[i]);
    nsessions = 0;
}

int fsession_count(void) { return nsessions; }

fsession *fsession_get(int32_t id) {
    for (int i = 0; i < nsessions; i++)
        if (sessions[i]->id == id) return sessions[i];
    return NULL;
}

void fsession_remove(int32_t id) {
    for (int i = 0; i < nsessions; i++) {
        if (sessions[i]->id == id) {
            session_free(sessions[i]);
            sessions[i] = sessions[--nsessions];
            return;
        }
    }
}

static bool same_topic(const fsession_part *p, const kstr *topic, const kuuid *topic_id, int16_t version) {
    if (version >= 13) return memcmp(p->topic_id.b, topic_id->b, 16) == 0;
    return kstr_eq_c(*topic, p->topic);
}

fsession_part *fsession_find_part(fsession *s, const kstr *topic, const kuuid *topic_id, int32_t partition,
                                  int16_t version) {
    for (int i = 0; i < s->nparts; i++)
        if (s->parts[i].partition == partition && same_topic(&s->parts[i], topic, topic_id, version))
            return &s->parts[i];
    return NULL;
}

/* Add or update one partition from a request. */
static int put_part(fsession *s, int16_t version, const FetchRequest_FetchTopic *ft,
                    const FetchRequest_FetchPartition *fp) {
    fsession_part *p = fsession_find_part(s, &ft->topic, &ft->topic_id, fp->partition, version);
    if (!p) {
        if (s->nparts == s->cap) {
            int nc = s->cap ? s->cap * 2 : 8;
            fsession_part *np = realloc(s->parts, sizeof(*np) * (size_t)nc);
            if (!np) return -1;
            s->parts = np;
            s->cap = nc;
        }
        p = &s->parts[s->nparts];
        memset(p, 0, sizeof *p);
        /* Keep both the name and the id, whichever the request used. */
        topic_rt *t = version >= 13 ? broker_topic_by_id(the_broker, &ft->topic_id) : broker_topic(the_broker, ft->topic);
        if (version >= 13) {
            p->topic_id = ft->topic_id;
            p->topic = strdup(t ? t->name : "");
        } else {
            p->topic = strndup(ft->topic.len > 0 ? ft->topic.p : "", ft->topic.len > 0 ? (size_t)ft->topic.len : 0);
            if (t) p->topic_id = t->id;
        }
        if (!p->topic) return -1;
        p->partition = fp->partition;
        s->nparts++;
    }
    p->fetch_offset = fp->fetch_offset;
    p->max_bytes = fp->partition_max_bytes;
    p->current_leader_epoch = fp->current_leader_epoch;
    return 0;
}

static int32_t new_session_id(void) {
    for (;;) {
        int32_t id;
        if (getrandom(&id, sizeof id, 0) != sizeof id) id = rand();
        id &= 0x7fffffff;
        if (id != 0 && !fsession_get(id)) return id;
    }
}

fsession *fsession_create(broker *b, int16_t version, const FetchRequest *r) {
    if (nsessions == FSESSION_CACHE_SLOTS) {
        /* evict the least recently used */
        int lru = 0;
        for (int i = 1; i < nsessions; i++)
            if (sessions[i]->last_used_ms < sessions[lru]->last_used_ms) lru = i;
        session_free(sessions[lru]);
        sessions[lru] = sessions[--nsessions];
    }
    fsession *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->id = new_session_id();
    s->epoch = 1;
    s->last_used_ms = loop_now_ms(b->loop);
    for (int i = 0; i < r->topics_count; i++)
        for (int j = 0; j < r->topics[i].partitions_count; j++)
            if (put_part(s, version, &r->topics[i], &r->topics[i].partitions[j]) < 0) {
                session_free(s);
                return NULL;
            }
    sessions[nsessions++] = s;
    return s;
}

static int32_t next_epoch(int32_t e) { return e == INT32_MAX ? 1 : e + 1; }

fsession *fsession_update(broker *b, int16_t version, const FetchRequest *r, int16_t *err) {
    fsession *s = fsession_get(r->session_id);
    if (!s) {
        *err = KERR_FETCH_SESSION_ID_NOT_FOUND;
        return NULL;
    }
    if (s->epoch != r->session_epoch) {
        *err = KERR_INVALID_FETCH_SESSION_EPOCH;
        return NULL;
    }
    for (int i = 0; i < r->topics_count; i++)
        for (int j = 0; j < r->topics[i].partitions_count; j++)
            if (put_part(s, version, &r->topics[i], &r->topics[i].partitions[j]) < 0) {
                *err = KERR_UNKNOWN_SERVER_ERROR;
                return NULL;
            }
    for (int i = 0; i < r->forgotten_topics_data_count; i++) {
        const FetchRequest_ForgottenTopic *ft = &r->forgotten_topics_data[i];
        for (int j = 0; j < ft->partitions_count; j++) {
            fsession_part *p = fsession_find_part(s, &ft->topic, &ft->topic_id, ft->partitions[j], version);
            if (!p) continue;
            free(p->topic);
            /* keep the order of the rest: answers follow the session's order */
            int idx = (int)(p - s->parts);
            memmove(&s->parts[idx], &s->parts[idx + 1], sizeof(*p) * (size_t)(s->nparts - idx - 1));
            s->nparts--;
        }
    }
    s->epoch = next_epoch(s->epoch);
    s->last_used_ms = loop_now_ms(b->loop);
    return s;
}
