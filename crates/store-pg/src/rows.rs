//! Objects and log entries as rows: the column encoding and the two writes a commit makes.
//!
//! Timestamps are split so they read back exactly; JSON goes in as text so `json` columns keep
//! it verbatim.

use crate::fail::Fail;
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::GenericClient;
use scimsync_core::{LogEntry, ObjectState, StateChange};

/// Split a time into what `timestamptz` keeps (whole microseconds, rounded down) and the
/// nanoseconds below, so the pair reads back exactly.
pub(crate) fn split_time(t: DateTime<Utc>) -> (DateTime<Utc>, i16) {
    let below = t.timestamp_subsec_nanos() % 1000;
    (t - Duration::nanoseconds(i64::from(below)), below as i16)
}

pub(crate) fn join_time(at: DateTime<Utc>, below: i16) -> DateTime<Utc> {
    at + Duration::nanoseconds(i64::from(below))
}

pub(crate) const OBJECT_COLUMNS: &str = "source_id, target_id, hash, confirmed::text, active, outcome, \
                              updated_at, updated_at_ns";

pub(crate) fn object_from(row: &tokio_postgres::Row) -> Result<ObjectState, Fail> {
    let source_id: String = row.try_get(0)?;
    let bad = |what: &str, e: serde_json::Error| {
        Fail(format!("object {source_id:?}: {what} does not decode: {e}"))
    };
    let confirmed: String = row.try_get(3)?;
    let outcome: String = row.try_get(5)?;
    Ok(ObjectState {
        target_id: row.try_get(1)?,
        hash: row.try_get(2)?,
        confirmed: serde_json::from_str(&confirmed).map_err(|e| bad("confirmed", e))?,
        active: row.try_get(4)?,
        outcome: serde_json::from_value(serde_json::Value::String(outcome))
            .map_err(|e| bad("outcome", e))?,
        updated_at: join_time(row.try_get(6)?, row.try_get(7)?),
        source_id,
    })
}

fn outcome_text(o: &ObjectState) -> Result<String, Fail> {
    match serde_json::to_value(o.outcome)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(Fail(format!("outcome encodes as {other}, not a string"))),
    }
}

pub(crate) async fn upsert_object(
    c: &impl GenericClient,
    job: &str,
    o: &ObjectState,
) -> Result<(), Fail> {
    let confirmed = serde_json::to_string(&o.confirmed)?;
    let outcome = outcome_text(o)?;
    let (at, ns) = split_time(o.updated_at);
    let statement = c
        .prepare_cached(
            "INSERT INTO scimsync_objects (job, source_id, target_id, hash, confirmed, active, \
         outcome, updated_at, updated_at_ns) \
         VALUES ($1, $2, $3, $4, $5::text::json, $6, $7, $8, $9) \
         ON CONFLICT (job, source_id) DO UPDATE SET target_id = EXCLUDED.target_id, \
         hash = EXCLUDED.hash, confirmed = EXCLUDED.confirmed, active = EXCLUDED.active, \
         outcome = EXCLUDED.outcome, updated_at = EXCLUDED.updated_at, \
         updated_at_ns = EXCLUDED.updated_at_ns",
        )
        .await?;
    c.execute(
        &statement,
        &[
            &job,
            &o.source_id,
            &o.target_id,
            &o.hash,
            &confirmed,
            &o.active,
            &outcome,
            &at,
            &ns,
        ],
    )
    .await?;
    Ok(())
}

/// An object's row brought to `change` (nothing for a log entry alone).
pub(crate) async fn apply_change(
    c: &impl GenericClient,
    job: &str,
    change: &StateChange,
) -> Result<(), Fail> {
    match change {
        StateChange::Put(o) => upsert_object(c, job, o).await,
        StateChange::Remove { source_id } => {
            c.execute(
                "DELETE FROM scimsync_objects WHERE job = $1 AND source_id = $2",
                &[&job, source_id],
            )
            .await?;
            Ok(())
        }
        StateChange::None => Ok(()),
    }
}

pub(crate) async fn insert_log(
    c: &impl GenericClient,
    job: &str,
    entry: &LogEntry,
) -> Result<(), Fail> {
    let text = serde_json::to_string(entry)?;
    let (at, ns) = split_time(entry.activity_date_time);
    let statement = c
        .prepare_cached(
            "INSERT INTO scimsync_logs (job, cycle_id, activity_at, activity_ns, entry) \
             VALUES ($1, $2, $3, $4, $5::text::json)",
        )
        .await?;
    c.execute(&statement, &[&job, &entry.cycle_id, &at, &ns, &text])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_split_and_join_exactly() {
        let t = DateTime::parse_from_rfc3339("2026-12-06T22:45:01.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let (at, ns) = split_time(t);
        assert_eq!(ns, 789);
        assert_eq!(at.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(join_time(at, ns), t);
        let old = DateTime::parse_from_rfc3339("1969-07-20T20:17:40.000000999Z")
            .unwrap()
            .with_timezone(&Utc);
        let (at, ns) = split_time(old);
        assert_eq!(join_time(at, ns), old);
    }
}
