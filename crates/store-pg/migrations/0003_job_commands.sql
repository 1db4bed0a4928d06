-- scimsync state store, schema version 3: admin actions forwarded between `serve` replicas.
--
-- A replica asked for an action on a job it does not run queues it here; the replica holding
-- the job's lease claims it (`taken_by`), carries it out as if asked directly (its writes are
-- fenced like any other) and stores the outcome, which the asking replica reads back.
CREATE TABLE scimsync_job_commands (
    id           bigserial PRIMARY KEY,
    job          text COLLATE "C" NOT NULL,
    action       text NOT NULL,          -- JSON: what the admin asked for
    submitted_by text NOT NULL,          -- the replica whose API took the request
    submitted_at timestamptz NOT NULL DEFAULT now(),
    taken_by     text,                   -- the replica carrying it out
    taken_at     timestamptz,
    outcome      text,                   -- JSON: the result or the error, once done
    done_at      timestamptz
);
CREATE INDEX scimsync_job_commands_queued ON scimsync_job_commands (job, id)
    WHERE taken_by IS NULL;
