//! Prometheus text at `GET /metrics` (behind the admin token like everything else).
//!
//! Two sources: the `metrics` recorder, which the SCIM and Graph clients feed (request
//! latency histograms `scimsync_scim_request_duration_seconds` and
//! `scimsync_graph_request_duration_seconds`, 429s in `scimsync_throttled_total`), and the
//! jobs' state read at scrape time (operations by action and status, cycles and their
//! duration, escrows, quarantine, held deletions, progress, store size). The counters read
//! from the state survive a restart of `serve`, as Entra's "Statistics to date" do.

use crate::ApiState;
use crate::logs::{JobStores, blocking, name_of};
use axum::Router;
use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use scimsync_core::StoreError;
use scimsync_service::JobStatus;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// Latency buckets in seconds: SCIM apps answer in tens of milliseconds, throttled Graph
/// pages in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once; later calls return the same handle)
/// and start its upkeep thread. `None` if another recorder was installed first: then
/// `/metrics` shows only the job metrics.
pub fn install_recorder() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was installed already; /metrics shows job metrics only"
                );
                return None;
            }
            let upkeep = handle.clone();
            // Histograms are drained into their buckets by upkeep; without it they grow.
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; upkeep runs at each scrape");
            }
            Some(handle)
        })
        .clone()
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(s): State<ApiState>, stores: Option<Extension<JobStores>>) -> Response {
    let mut text = match RECORDER.get().cloned().flatten() {
        Some(h) => {
            h.run_upkeep();
            h.render()
        }
        None => String::new(),
    };
    let statuses = s.handle.jobs();
    let stores = stores.map(|Extension(s)| s).unwrap_or_default();
    let stored = blocking(move || read_stored(&stores))
        .await
        .unwrap_or_default();
    text.push_str(&job_metrics(&statuses, &stored));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// What the metrics need from one job's store.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub job: String,
    pub totals: scimsync_engine::CycleTotals,
    pub last_duration_ms: Option<u64>,
    pub objects: usize,
    pub size_bytes: Option<u64>,
}

fn read_stored(stores: &JobStores) -> Result<Vec<Stored>, StoreError> {
    let mut out = Vec::new();
    for (job, js) in stores.iter() {
        let st = &*js.store;
        out.push(Stored {
            job: job.clone(),
            totals: scimsync_engine::cycle_totals(st, job)?,
            last_duration_ms: scimsync_engine::cycle_history(st, job)?
                .last()
                .map(|c| c.duration_ms),
            objects: st.list(job)?.len(),
            size_bytes: js.dir.as_deref().map(dir_size),
        });
    }
    Ok(out)
}

/// Bytes of every file under `dir` (sled's own count needs the open database handle).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// The job metrics in Prometheus text format, one family at a time (the format wants a
/// family's samples together).
pub(crate) fn job_metrics(statuses: &[JobStatus], stored: &[Stored]) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };

    f.head(
        "scimsync_operations_total",
        "counter",
        "Objects processed by provisioning action and status, since the job's state was created.",
    );
    for s in stored {
        for (action, by_status) in &s.totals.operations {
            for (status, n) in by_status {
                f.sample(
                    "scimsync_operations_total",
                    &[("job", &s.job), ("action", action), ("status", status)],
                    *n as f64,
                );
            }
        }
    }
    f.head(
        "scimsync_cycle_duration_seconds",
        "summary",
        "Duration of apply cycles.",
    );
    for s in stored {
        let labels = [("job", s.job.as_str())];
        f.sample(
            "scimsync_cycle_duration_seconds_sum",
            &labels,
            s.totals.duration_ms as f64 / 1000.0,
        );
        f.sample(
            "scimsync_cycle_duration_seconds_count",
            &labels,
            s.totals.cycles as f64,
        );
    }
    f.head(
        "scimsync_last_cycle_duration_seconds",
        "gauge",
        "Duration of the job's last apply cycle.",
    );
    for s in stored {
        if let Some(ms) = s.last_duration_ms {
            f.sample(
                "scimsync_last_cycle_duration_seconds",
                &[("job", &s.job)],
                ms as f64 / 1000.0,
            );
        }
    }
    f.head(
        "scimsync_objects_managed",
        "gauge",
        "Objects linked between source and target.",
    );
    for s in stored {
        f.sample(
            "scimsync_objects_managed",
            &[("job", &s.job)],
            s.objects as f64,
        );
    }
    f.head(
        "scimsync_store_size_bytes",
        "gauge",
        "Size of the job's state store on disk.",
    );
    for s in stored {
        if let Some(b) = s.size_bytes {
            f.sample("scimsync_store_size_bytes", &[("job", &s.job)], b as f64);
        }
    }

    f.head(
        "scimsync_escrow_size",
        "gauge",
        "Objects waiting in escrow for a retry.",
    );
    for j in statuses {
        f.sample(
            "scimsync_escrow_size",
            &[("job", &j.name)],
            j.escrow_count as f64,
        );
    }
    f.head(
        "scimsync_quarantined",
        "gauge",
        "1 while the job is in quarantine, with the reason as a label.",
    );
    for j in statuses {
        let reason = j
            .quarantine
            .as_ref()
            .map(|q| q.reason.as_str().to_string())
            .unwrap_or_default();
        f.sample(
            "scimsync_quarantined",
            &[("job", &j.name), ("reason", &reason)],
            f64::from(u8::from(j.quarantine.is_some())),
        );
    }
    f.head(
        "scimsync_deletions_held",
        "gauge",
        "1 while deletions wait for an admin's approval (accidental deletions prevention).",
    );
    for j in statuses {
        f.sample(
            "scimsync_deletions_held",
            &[("job", &j.name)],
            f64::from(u8::from(j.deletions_held)),
        );
    }
    f.head(
        "scimsync_job_state",
        "gauge",
        "1 for the job's current state.",
    );
    for j in statuses {
        f.sample(
            "scimsync_job_state",
            &[("job", &j.name), ("state", &name_of(&j.state))],
            1.0,
        );
    }
    f.head(
        "scimsync_cycle_progress_ratio",
        "gauge",
        "Share of the running cycle's objects done (0 to 1).",
    );
    for j in statuses {
        if let Some(p) = j.progress.filter(|p| p.total > 0) {
            f.sample(
                "scimsync_cycle_progress_ratio",
                &[("job", &j.name), ("phase", p.phase)],
                p.done as f64 / p.total as f64,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn job_metrics_group_samples_by_family_and_escape_labels() {
        let mut totals = scimsync_engine::CycleTotals {
            cycles: 2,
            duration_ms: 4500,
            ..Default::default()
        };
        totals.operations.insert(
            "create".into(),
            BTreeMap::from([("success".to_string(), 3u64), ("failure".to_string(), 1)]),
        );
        let stored = vec![Stored {
            job: "a\"b".into(),
            totals,
            last_duration_ms: Some(1500),
            objects: 3,
            size_bytes: Some(4096),
        }];
        let text = job_metrics(&[], &stored);
        assert!(text.contains(
            "scimsync_operations_total{job=\"a\\\"b\",action=\"create\",status=\"failure\"} 1"
        ));
        assert!(text.contains("scimsync_cycle_duration_seconds_sum{job=\"a\\\"b\"} 4.5"));
        assert!(text.contains("scimsync_store_size_bytes{job=\"a\\\"b\"} 4096"));
        // Each family is declared once.
        assert_eq!(text.matches("# TYPE scimsync_operations_total").count(), 1);
    }
}
