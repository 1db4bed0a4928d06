//! The Graph client against the testkit's Graph emulator: delta rounds for users and groups,
//! `$batch` re-reads, assignments and certificate sign-in.

use scimsync_core::{
    ErrorCode, GroupQuery, GroupRead, MemberKind, Secret, Source, SourceUser, UserQuery, UserRead,
    UserScope,
};
use scimsync_graph::{CertificateAlgorithm, GraphClient, GraphConfig};
use scimsync_testkit::graph::{GraphEmulator, Tenant, test_only};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

fn config(g: &GraphEmulator, cfg: GraphConfig) -> GraphConfig {
    GraphConfig {
        graph_url: g.url(),
        login_url: g.url(),
        ..cfg
    }
}

fn client(g: &GraphEmulator) -> GraphClient {
    let cfg = GraphConfig::new(
        g.tenant_id(),
        g.client_id(),
        Secret::inline(g.client_secret()),
    );
    GraphClient::with_retry_base(config(g, cfg), Duration::from_millis(5)).unwrap()
}

fn query() -> UserQuery {
    UserQuery {
        attributes: vec!["displayName".into(), "jobTitle".into(), "mail".into()],
        scope: UserScope::All,
        keep: None,
    }
}

fn user(n: usize) -> serde_json::Value {
    json!({"userPrincipalName": format!("user{n}@contoso.com"), "displayName": format!("User {n}"),
           "jobTitle": "Engineer", "mail": format!("user{n}@contoso.com")})
}

/// A tenant with `n` users; the emulator pages delta by 3 so rounds span pages with replays.
async fn emulator(n: usize) -> (GraphEmulator, Vec<String>) {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let ids = (0..n).map(|i| t.add_user(user(i))).collect();
    let g = GraphEmulator::start(t).await.unwrap();
    g.set_delta_page_size(3);
    (g, ids)
}

fn ids_of(users: &[SourceUser]) -> BTreeSet<String> {
    users.iter().map(|u| u.id.clone()).collect()
}

fn changes(r: UserRead) -> (Vec<SourceUser>, Vec<String>, Vec<String>, String) {
    match r {
        UserRead::Changes {
            upserts,
            soft_deleted,
            hard_deleted,
            watermark,
        } => (upserts, soft_deleted, hard_deleted, watermark),
        other => panic!("expected Changes, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_round_reads_users_outside_keep_slim_over_replayed_pages() {
    let (g, ids) = emulator(7).await;
    let graph = client(&g);
    let keep: BTreeSet<String> = [ids[1].clone(), ids[5].clone()].into();
    let q = UserQuery {
        keep: Some(std::sync::Arc::new(keep.clone())),
        ..query()
    };
    let UserRead::Full { users, .. } = graph.read_user_changes(&q, None).await.unwrap() else {
        panic!("the first round is a full read");
    };
    assert_eq!(users.len(), 7, "every user is still returned, once");
    for u in &users {
        if keep.contains(&u.id) {
            assert_eq!(u.str("jobTitle"), Some("Engineer"), "kept whole");
            assert!(u.str("mail").is_some());
        } else {
            let mut names: Vec<&str> = u.attrs.keys().map(String::as_str).collect();
            names.sort_unstable();
            assert_eq!(
                names,
                [
                    "accountEnabled",
                    "displayName",
                    "objectId",
                    "userPrincipalName"
                ],
                "slim: what an unassigned user's decision reads"
            );
        }
    }
}

#[tokio::test]
async fn user_delta_rounds_report_exactly_what_changed() {
    let (g, ids) = emulator(8).await;
    g.soft_delete_user(&ids[7]);
    let graph = client(&g);

    let UserRead::Full {
        users,
        soft_deleted,
        fallback_reason,
        watermark,
    } = graph.read_user_changes(&query(), None).await.unwrap()
    else {
        panic!("the first round is a full read");
    };
    assert_eq!(users.len(), 7, "replayed items are not duplicated");
    assert_eq!(ids_of(&users), ids[..7].iter().cloned().collect());
    assert_eq!(soft_deleted, BTreeSet::from([ids[7].clone()]));
    assert_eq!(fallback_reason, None);
    let mut mark = watermark.expect("a deltaLink");

    // One attribute changes: the user comes back complete (unchanged attributes included).
    g.update_user(&ids[2], json!({"jobTitle": "Manager"}));
    let (upserts, soft, hard, next) = changes(
        graph
            .read_user_changes(&query(), Some(&mark))
            .await
            .unwrap(),
    );
    assert_eq!(ids_of(&upserts), BTreeSet::from([ids[2].clone()]));
    let u = &upserts[0];
    assert_eq!(u.str("jobTitle"), Some("Manager"));
    assert_eq!(u.str("displayName"), Some("User 2"));
    assert_eq!(u.str("userPrincipalName"), Some("user2@contoso.com"));
    assert!(soft.is_empty() && hard.is_empty());
    assert_ne!(next, mark);
    mark = next;

    // Nothing changes: empty lists and a new watermark.
    let (upserts, soft, hard, next) = changes(
        graph
            .read_user_changes(&query(), Some(&mark))
            .await
            .unwrap(),
    );
    assert!(upserts.is_empty() && soft.is_empty() && hard.is_empty());
    assert_ne!(next, mark);
    mark = next;

    g.soft_delete_user(&ids[3]);
    let (upserts, soft, hard, next) = changes(
        graph
            .read_user_changes(&query(), Some(&mark))
            .await
            .unwrap(),
    );
    assert!(upserts.is_empty() && hard.is_empty());
    assert_eq!(soft, vec![ids[3].clone()]);
    mark = next;

    g.restore_user(&ids[3]);
    let (upserts, soft, hard, next) = changes(
        graph
            .read_user_changes(&query(), Some(&mark))
            .await
            .unwrap(),
    );
    assert_eq!(ids_of(&upserts), BTreeSet::from([ids[3].clone()]));
    assert!(soft.is_empty() && hard.is_empty());
    mark = next;

    g.hard_delete_user(&ids[4]);
    let (upserts, soft, hard, _) = changes(
        graph
            .read_user_changes(&query(), Some(&mark))
            .await
            .unwrap(),
    );
    assert!(upserts.is_empty() && soft.is_empty());
    assert_eq!(hard, vec![ids[4].clone()]);
}

#[tokio::test]
async fn rejected_watermarks_fall_back_to_a_full_read() {
    let (g, _) = emulator(4).await;
    let graph = client(&g);
    let UserRead::Full { watermark, .. } = graph.read_user_changes(&query(), None).await.unwrap()
    else {
        panic!("full");
    };
    let mark = watermark.unwrap();

    g.expire_delta_tokens(); // → 400 syncStateNotFound
    match graph
        .read_user_changes(&query(), Some(&mark))
        .await
        .unwrap()
    {
        UserRead::Full {
            users,
            fallback_reason: Some(reason),
            watermark: Some(_),
            ..
        } => {
            assert_eq!(users.len(), 4);
            assert!(reason.contains("syncStateNotFound"), "{reason}");
        }
        other => panic!("expected a fallback full read, got {other:?}"),
    }

    let UserRead::Full { watermark, .. } = graph.read_user_changes(&query(), None).await.unwrap()
    else {
        panic!("full");
    };
    g.reset_delta_next(); // → 410 Gone + Location
    match graph
        .read_user_changes(&query(), watermark.as_deref())
        .await
        .unwrap()
    {
        UserRead::Full {
            fallback_reason: Some(reason),
            ..
        } => assert!(reason.contains("410"), "{reason}"),
        other => panic!("expected a fallback full read, got {other:?}"),
    }

    // A deltaLink for another host is never followed (it would get our token).
    match graph
        .read_user_changes(
            &query(),
            Some("https://elsewhere.example/v1.0/users/delta?$deltatoken=x"),
        )
        .await
        .unwrap()
    {
        UserRead::Full {
            fallback_reason: Some(reason),
            ..
        } => assert!(reason.contains("another Graph host"), "{reason}"),
        other => panic!("expected a fallback full read, got {other:?}"),
    }
}

#[tokio::test]
async fn users_by_id_batches_retry_throttled_items_and_skip_unknown_ids() {
    let (g, ids) = emulator(25).await;
    let graph = client(&g);
    g.throttle_batch_items(3, 0.01);
    let mut wanted = ids.clone();
    wanted.push("00000000-0000-0000-0000-00000000dead".into());
    wanted.push(ids[0].clone()); // repeated ids are read once
    let users = graph.read_users_by_id(&wanted, &query()).await.unwrap();
    assert_eq!(ids_of(&users), ids.iter().cloned().collect());
    assert_eq!(users.len(), 25);
    assert!(users.iter().all(|u| u.str("jobTitle") == Some("Engineer")));
    let batches = g
        .requests()
        .iter()
        .filter(|r| r.path_and_query == "/v1.0/$batch")
        .count();
    assert_eq!(
        batches, 3,
        "26 ids in batches of 20, plus one retry of the throttled items"
    );
}

#[tokio::test]
async fn assignments_split_users_and_groups() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let a = t.add_user(user(1));
    let b = t.add_user(user(2));
    let grp = t.add_group(json!({"displayName": "sg-Sales", "members": [b]}));
    let role = t.add_app_role("Admin", "Administrator");
    t.assign(&a);
    t.assign_role(&a, &role);
    t.assign(&grp);
    let g = GraphEmulator::start(t).await.unwrap();
    let graph = client(&g);
    let assignments = graph
        .read_assignments(g.service_principal_id())
        .await
        .unwrap();
    let mut roles: Vec<&str> = assignments.users[&a]
        .iter()
        .map(|r| &*r.app_role_id)
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        ["00000000-0000-0000-0000-000000000000", role.as_str()]
    );
    assert_eq!(assignments.users.len(), 1);
    assert_eq!(&*assignments.groups[&grp][0].principal_type, "Group");

    // The full snapshot still expands the group to its direct members.
    let snap = graph
        .read_users(&UserQuery {
            attributes: vec![],
            scope: UserScope::Assigned {
                service_principal_id: g.service_principal_id().into(),
            },
            keep: None,
        })
        .await
        .unwrap();
    assert_eq!(snap.assigned, Some(BTreeSet::from([a, b])));
}

#[tokio::test]
async fn group_delta_merges_member_chunks_and_reports_membership_changes() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    let users: Vec<String> = (0..7).map(|i| t.add_user(user(i))).collect();
    let inner = t.add_group(json!({"displayName": "sg-Inner"}));
    let mut members = users[..5].to_vec();
    members.push(inner.clone());
    let big =
        t.add_group(json!({"displayName": "sg-Big", "description": "many", "members": members}));
    let g = GraphEmulator::start(t).await.unwrap();
    g.set_group_member_chunk(2);
    g.set_delta_page_size(2);
    let graph = client(&g);
    let q = GroupQuery {
        attributes: vec!["description".into(), "securityEnabled".into()],
    };

    let GroupRead::Full {
        groups,
        members,
        watermark,
        ..
    } = graph.read_groups(&q, None).await.unwrap()
    else {
        panic!("full");
    };
    assert_eq!(groups.len(), 2);
    let sg = groups.iter().find(|x| x.id == big).unwrap();
    assert_eq!(sg.attrs["displayName"], "sg-Big");
    assert_eq!(sg.attrs["description"], "many");
    assert_eq!(sg.attrs["securityEnabled"], true);
    let got = &members[&big];
    assert_eq!(got.len(), 6, "all chunks merged: {got:?}");
    assert!(got.contains(&(inner.clone(), MemberKind::Group)));
    assert!(got.contains(&(users[0].clone(), MemberKind::User)));

    g.add_member(&big, &users[6]);
    g.remove_member(&big, &users[1]);
    let GroupRead::Changes {
        upserts,
        deleted,
        members_added,
        members_removed,
        watermark,
    } = graph.read_groups(&q, watermark.as_deref()).await.unwrap()
    else {
        panic!("changes");
    };
    assert_eq!(upserts.len(), 1);
    assert_eq!(upserts[0].attrs["description"], "many");
    assert!(deleted.is_empty());
    assert_eq!(
        members_added[&big],
        vec![(users[6].clone(), MemberKind::User)]
    );
    assert_eq!(
        members_removed[&big],
        vec![(users[1].clone(), MemberKind::User)]
    );

    g.delete_group(&inner);
    let GroupRead::Changes {
        deleted,
        members_removed,
        ..
    } = graph.read_groups(&q, Some(&watermark)).await.unwrap()
    else {
        panic!("changes");
    };
    assert_eq!(deleted, vec![inner.clone()]);
    assert_eq!(members_removed[&big], vec![(inner, MemberKind::Group)]);

    g.expire_delta_tokens();
    match graph.read_groups(&q, Some(&watermark)).await.unwrap() {
        GroupRead::Full {
            fallback_reason: Some(_),
            groups,
            ..
        } => assert_eq!(groups.len(), 1),
        other => panic!("expected a fallback full read, got {other:?}"),
    }
}

fn cert_client(g: &GraphEmulator, key: &str, algorithm: CertificateAlgorithm) -> GraphClient {
    let cfg = GraphConfig::with_certificate(
        g.tenant_id(),
        g.client_id(),
        test_only::CERT_A_PEM,
        Secret::inline(key),
        algorithm,
    );
    GraphClient::with_retry_base(config(g, cfg), Duration::from_millis(5)).unwrap()
}

#[tokio::test]
async fn certificate_sign_in_is_verified_by_the_emulator() {
    let mut t = Tenant::new("contoso.onmicrosoft.com");
    t.add_user(user(1));
    t.register_certificate(test_only::CERT_A_PEM);
    let g = GraphEmulator::start(t).await.unwrap();

    for alg in [CertificateAlgorithm::Ps256, CertificateAlgorithm::Rs256] {
        let graph = cert_client(&g, test_only::KEY_A_PEM, alg);
        graph.token().await.unwrap();
        let snap = graph.read_users(&query()).await.unwrap();
        assert_eq!(snap.users.len(), 1);
    }

    // Certificate A's thumbprint, but signed with key B: refused and explained.
    let graph = cert_client(&g, test_only::KEY_B_PEM, CertificateAlgorithm::Ps256);
    let err = graph.token().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::GraphAuthenticationFailed);
    assert!(err.message.contains("AADSTS700027"), "{}", err.message);
    assert!(
        err.message.contains("certificate registered"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("PRIVATE KEY"));
    let refused = g.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 1, "a refused assertion is not retried");
}

#[test]
fn a_broken_certificate_key_is_a_configuration_error() {
    let cfg = GraphConfig::with_certificate(
        "contoso.onmicrosoft.com",
        "app",
        test_only::CERT_A_PEM,
        Secret::inline("not a key"),
        CertificateAlgorithm::Rs256,
    );
    let err = GraphClient::new(cfg).unwrap_err();
    assert_eq!(err.code, ErrorCode::ConfigInvalid);
}
