-- scimsync state store, schema version 1: objects, meta (and records), provisioning logs.
-- Applied by scimsync-store-pg at open, in one transaction, under an advisory lock.
--
-- Ids and keys are COLLATE "C" so ORDER BY is byte order: the order the trait documents and
-- sled gives (source id order, key order), whatever the database's default collation.
-- Timestamps are timestamptz (microseconds) plus the nanoseconds below them, so a value
-- written is read back exactly. JSON columns are `json` (text kept verbatim), not `jsonb`.
-- Every table leads with `job`: a later migration can add a job_leases(job, owner, epoch,
-- expires_at) table and fence each commit on it without touching these.

CREATE TABLE scimsync_objects (
    job           text COLLATE "C" NOT NULL,
    source_id     text COLLATE "C" NOT NULL,
    target_id     text NOT NULL,
    hash          text NOT NULL,
    confirmed     json NOT NULL,
    active        boolean NOT NULL,
    outcome       text NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_at_ns smallint NOT NULL DEFAULT 0 CHECK (updated_at_ns BETWEEN 0 AND 999),
    PRIMARY KEY (job, source_id)
);

-- Job metadata and the records stored under `rec/<kind>/<id>` keys (escrows, group mirror,
-- confirmed members, held deletions, watermarks, cycle history, approvals).
CREATE TABLE scimsync_meta (
    job   text COLLATE "C" NOT NULL,
    key   text COLLATE "C" NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (job, key)
);

-- Provisioning log: `seq` gives commit order (oldest first), across jobs.
CREATE TABLE scimsync_logs (
    job         text COLLATE "C" NOT NULL,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    cycle_id    text COLLATE "C" NOT NULL,
    activity_at timestamptz NOT NULL,
    activity_ns smallint NOT NULL DEFAULT 0 CHECK (activity_ns BETWEEN 0 AND 999),
    entry       json NOT NULL,
    PRIMARY KEY (job, seq)
);
CREATE INDEX scimsync_logs_by_cycle ON scimsync_logs (job, cycle_id, seq);
CREATE INDEX scimsync_logs_by_time ON scimsync_logs (job, activity_at);
