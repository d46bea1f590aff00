//! `owner = …` may use any argument, including the bindings of a
//! destructuring pattern, as the macro documents.

use std::time::Duration;

use tracked::{tracked, Query, TaskType, Tracker};

struct Session {
    tenant: String,
    _peers: Vec<u32>,
}

#[tracked(owner = format!("{tenant}/{shard}"))]
async fn from_patterns(
    Session { tenant, .. }: Session,
    (shard, mut notes): (u32, Vec<String>),
    ref label: String,
) -> String {
    notes.push(label.clone());
    format!("{tenant}:{shard}:{}", notes.join(","))
}

#[tracked(owner = "fixed")]
async fn owner_not_from_patterns((a, b): (u32, u32), &c: &u32) -> u32 {
    a + b + c
}

#[tokio::test]
async fn the_owner_can_use_the_bindings_of_a_destructured_argument() {
    let tracker = Tracker::new();
    let session = Session {
        tenant: "acme".to_owned(),
        _peers: vec![1],
    };
    let output = tracker
        .spawn("root", TaskType::GENERAL, async move {
            let text = from_patterns(session, (3, vec!["w".to_owned()]), "x".to_owned()).await;
            (text, owner_not_from_patterns((1, 2), &3).await)
        })
        .await
        .unwrap();
    assert_eq!(output, ("acme:3:w,x".to_owned(), 6));
    for _ in 0..100 {
        if tracker.stats().total.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let owner_of = |fn_name: &str| {
        let name = format!("{}::{fn_name}", module_path!());
        let tasks = tracker.finished(&Query::new().name_prefix(name));
        assert_eq!(tasks.len(), 1);
        tasks[0].owner.as_deref().map(str::to_owned)
    };
    assert_eq!(owner_of("from_patterns").as_deref(), Some("acme/3"));
    assert_eq!(
        owner_of("owner_not_from_patterns").as_deref(),
        Some("fixed")
    );
}
