//! Directory extensions (`extension_<appIdNoDashes>_<name>`, issue 13 §3) as mapping sources,
//! over the shared doubles: the engine asks the source for them by their exact name, and a
//! mapping or expression that reads one produces the target value.

use crate::test_support::mapping;
use crate::{Engine, JobSpec, Mode};
use scimsync_config::{Apply, Clause, Mapping, MappingValue, Operator, ScopingFilter};
use scimsync_core::{
    ManualClock, Source, SourceError, SourceSnapshot, SourceUser, UserQuery, UserRead, UserScope,
};
use scimsync_store::MemoryStore;
use scimsync_testkit::doubles::{MemorySource, MemoryTarget};
use serde_json::{Value, json};
use std::sync::Mutex;

const COST_CENTER: &str = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_costCenter";
const SKILLS: &str = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_skills";
const PENSIONABLE: &str = "extension_b7d8e648520f41d3b9c0fdeb91768a0a_permanent_pensionable";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The in-memory source, remembering the attribute lists it was asked for.
struct Recording {
    inner: MemorySource,
    queries: Mutex<Vec<Vec<String>>>,
}

impl Recording {
    fn record(&self, q: &UserQuery) {
        self.queries.lock().unwrap().push(q.attributes.clone());
    }
}

impl Source for Recording {
    async fn read_users(&self, query: &UserQuery) -> Result<SourceSnapshot, SourceError> {
        self.record(query);
        self.inner.read_users(query).await
    }

    async fn read_user_changes(
        &self,
        query: &UserQuery,
        watermark: Option<&str>,
    ) -> Result<UserRead, SourceError> {
        self.record(query);
        self.inner.read_user_changes(query, watermark).await
    }

    async fn read_users_by_id(
        &self,
        ids: &[String],
        query: &UserQuery,
    ) -> Result<Vec<SourceUser>, SourceError> {
        self.record(query);
        self.inner.read_users_by_id(ids, query).await
    }
}

fn user(id: &str, upn: &str, ext: Value) -> SourceUser {
    let mut attrs = json!({"userPrincipalName": upn, "accountEnabled": true});
    for (k, v) in ext.as_object().unwrap() {
        attrs[k] = v.clone();
    }
    SourceUser {
        id: id.into(),
        attrs: attrs.as_object().unwrap().clone().into_iter().collect(),
    }
}

fn expression(target: &str, text: &str) -> Mapping {
    Mapping {
        target: target.into(),
        value: MappingValue::Expression { text: text.into() },
        matching: None,
        apply: Apply::Always,
        default: None,
        required: false,
        line: 1,
    }
}

fn job() -> JobSpec {
    JobSpec::new(
        "t",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping(&format!("{ENTERPRISE}:costCenter"), COST_CENTER, None),
            expression("title", &format!("Join(\", \", [{SKILLS}])")),
            expression(
                "nickName",
                &format!("IIF([{PENSIONABLE}], \"permanent\", \"temporary\")"),
            ),
        ],
    )
}

async fn cycle(job: &JobSpec, source: &Recording, target: &MemoryTarget, store: &MemoryStore) {
    let clock = ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .into(),
    );
    Engine::new(job, source, target, store, &clock)
        .run(Mode::Apply)
        .await
        .unwrap();
}

fn created(target: &MemoryTarget, user_name: &str) -> scimsync_core::Attrs {
    target
        .users()
        .into_values()
        .find(|a| a["userName"] == user_name)
        .unwrap_or_else(|| panic!("{user_name} not created: {:?}", target.users()))
}

#[tokio::test]
async fn a_mapping_from_a_directory_extension_produces_the_target_value() {
    let source = Recording {
        inner: MemorySource::new(vec![
            user(
                "u1",
                "adele@x",
                json!({COST_CENTER: "CC-4711", SKILLS: ["SQL", "Rust"], PENSIONABLE: true}),
            ),
            // No cost center: nothing is sent for it. (An IIF condition on an empty value
            // fails, as in Entra, so the boolean is set.)
            user("u2", "alex@x", json!({PENSIONABLE: false})),
        ]),
        queries: Mutex::new(Vec::new()),
    };
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    cycle(&job(), &source, &target, &store).await;

    let adele = created(&target, "adele@x");
    assert_eq!(adele[&format!("{ENTERPRISE}:costCenter")], json!("CC-4711"));
    assert_eq!(adele["title"], json!("SQL, Rust"));
    assert_eq!(adele["nickName"], json!("permanent"));
    let alex = created(&target, "alex@x");
    assert!(
        !alex.contains_key(&format!("{ENTERPRISE}:costCenter")),
        "{alex:?}"
    );
    assert_eq!(alex["nickName"], json!("temporary"));

    // The source was asked for the extensions by their exact, case-sensitive names.
    let queries = source.queries.lock().unwrap().clone();
    assert!(!queries.is_empty());
    for q in &queries {
        for name in [COST_CENTER, SKILLS, PENSIONABLE] {
            assert!(q.iter().any(|a| a == name), "{name} not requested: {q:?}");
        }
    }

    // A changed extension value is one update of its target.
    source.inner.edit(|s| {
        let u = s.users.iter_mut().find(|u| u.id == "u1").unwrap();
        u.attrs.insert(COST_CENTER.into(), json!("CC-0815"));
    });
    cycle(&job(), &source, &target, &store).await;
    assert_eq!(
        created(&target, "adele@x")[&format!("{ENTERPRISE}:costCenter")],
        json!("CC-0815")
    );
}

#[tokio::test]
async fn a_scoping_filter_on_a_directory_extension_selects_by_its_value() {
    let mut job = JobSpec::new(
        "t",
        UserScope::All,
        vec![
            mapping("userName", "userPrincipalName", Some(1)),
            mapping(&format!("{ENTERPRISE}:costCenter"), COST_CENTER, None),
        ],
    );
    job.scoping = vec![ScopingFilter {
        name: None,
        clauses: vec![Clause {
            attribute: COST_CENTER.into(),
            operator: Operator::parse("EQUALS").unwrap(),
            value: Some("CC-4711".into()),
            line: 1,
        }],
        line: 1,
    }];
    let source = Recording {
        inner: MemorySource::new(vec![
            user("u1", "adele@x", json!({COST_CENTER: "CC-4711"})),
            user("u2", "alex@x", json!({COST_CENTER: "CC-0815"})),
        ]),
        queries: Mutex::new(Vec::new()),
    };
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    cycle(&job, &source, &target, &store).await;
    let names: Vec<Value> = target
        .users()
        .into_values()
        .map(|a| a["userName"].clone())
        .collect();
    assert_eq!(names, vec![json!("adele@x")]);
}

/// An attribute only a scoping clause names is still asked for: otherwise every user would
/// read as not matching it and fall out of scope.
#[tokio::test]
async fn an_attribute_only_a_scoping_filter_names_is_selected() {
    let mut job = JobSpec::new(
        "t",
        UserScope::All,
        vec![mapping("userName", "userPrincipalName", Some(1))],
    );
    job.scoping = vec![ScopingFilter {
        name: None,
        clauses: vec![Clause {
            attribute: COST_CENTER.into(),
            operator: Operator::parse("EQUALS").unwrap(),
            value: Some("CC-4711".into()),
            line: 1,
        }],
        line: 1,
    }];
    let source = Recording {
        inner: MemorySource::new(vec![user("u1", "adele@x", json!({COST_CENTER: "CC-4711"}))]),
        queries: Mutex::new(Vec::new()),
    };
    let (target, store) = (MemoryTarget::new(), MemoryStore::new());
    cycle(&job, &source, &target, &store).await;
    let queries = source.queries.lock().unwrap().clone();
    assert!(
        queries.iter().all(|q| q.iter().any(|a| a == COST_CENTER)),
        "{queries:?}"
    );
    assert_eq!(target.users().len(), 1);
}
