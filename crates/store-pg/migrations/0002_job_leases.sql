-- scimsync state store, schema version 2: job leases for several `serve` replicas.
--
-- One row per job, never deleted: `epoch` only grows, so a writer fenced on an old epoch can
-- never match again (a release only expires the row). Writes of a fenced store check `epoch`
-- in their own transaction with FOR SHARE, so a takeover (which updates the row) waits for
-- in-flight writes and every later write of the old holder is refused.
CREATE TABLE scimsync_job_leases (
    job        text COLLATE "C" PRIMARY KEY,
    owner      text NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
