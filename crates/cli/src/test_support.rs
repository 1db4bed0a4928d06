//! A job whose last cycle held its disables and deletes, built by running the engine over the
//! test kit's in-memory source and target (never by writing the engine's keys by hand).

use scimsync_config::{Apply, Mapping, MappingValue};
use scimsync_core::{SourceUser, SystemClock, UserScope};
use scimsync_engine::{CycleReport, Engine, JobSpec, Mode};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget};
use serde_json::json;

fn mapping(target: &str, source: &str, matching: Option<u32>) -> Mapping {
    Mapping {
        target: target.into(),
        value: MappingValue::Direct {
            source: source.into(),
        },
        matching,
        apply: Apply::Always,
        default: None,
        required: false,
        line: 1,
    }
}

fn user(n: usize) -> SourceUser {
    let attrs = json!({
        "userPrincipalName": format!("person{n:02}@contoso.example"),
        "displayName": format!("Person {n:02}"),
        "accountEnabled": true,
    });
    SourceUser {
        id: format!("u{n:02}"),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

/// Job `app` with ten users provisioned, then `gone` of them removed from the source (soft
/// deleted) in a cycle with a deletion threshold of 2: the second report, and the store.
pub(crate) async fn held_job(gone: usize) -> (CycleReport, MemoryStore) {
    let mut spec = JobSpec::new(
        "app",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping("displayName", "displayName", None),
        ],
    );
    spec.deletion_threshold = 2;
    let source = MemorySource::new((1..=10).map(user).collect());
    let target = MemoryTarget::new();
    let store = MemoryStore::new();
    let engine = Engine::new(&spec, &source, &target, &store, &SystemClock);
    let first = engine.run(Mode::Apply).await.expect("initial cycle");
    assert_eq!(first.tally.created, 10, "{:?}", first.tally);
    source.edit(|s| {
        let ids: Vec<String> = s.users.iter().take(gone).map(|u| u.id.clone()).collect();
        s.users.retain(|u| !ids.contains(&u.id));
        s.soft_deleted.extend(ids);
    });
    let second = engine.run(Mode::Apply).await.expect("second cycle");
    (second, store)
}

/// Job `app` with ten users provisioned and nothing changed since: the preview of its next
/// cycle.
pub(crate) async fn steady_preview() -> CycleReport {
    let spec = JobSpec::new(
        "app",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping("displayName", "displayName", None),
        ],
    );
    let source = MemorySource::new((1..=10).map(user).collect());
    let target = MemoryTarget::new();
    let store = MemoryStore::new();
    let engine = Engine::new(&spec, &source, &target, &store, &SystemClock);
    engine.run(Mode::Apply).await.expect("initial cycle");
    engine.run(Mode::Preview).await.expect("preview")
}
