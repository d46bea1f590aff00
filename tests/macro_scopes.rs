//! `#[tracked]` rewrites a call only where its name means tokio's spawn
//! function, as rustc resolves it: a `use` counts in its own block, and a
//! local binding of the same name hides it.

use tracked::{tracked, Query};

#[path = "common/root.rs"]
mod root;
use root::run_in_tracker;

/// The crate's own spawn fn, imported at module level: calls through it
/// are the crate's to make.
mod rt {
    pub(crate) fn spawn<F: std::future::Future>(_future: F) -> &'static str {
        "own"
    }
}
use rt::spawn;

#[tracked]
async fn nested_use() -> (u32, &'static str) {
    let tracked = {
        use tokio::spawn;
        spawn(async { 1 })
    };
    // The `use` above ended with its block: this is `rt::spawn`.
    let own = spawn(async { 2 });
    (tracked.await.unwrap(), own)
}

#[tracked]
async fn shadowed() -> Vec<u32> {
    use tokio::task::*;
    let mut out = Vec::new();
    {
        let spawn = |x: u32| x + 1;
        out.push(spawn(1));
    }
    let call = |spawn: fn(u32) -> u32| spawn(2);
    out.push(call(|x| x * 10));
    match (out.len(), |x: u32| x + 3) {
        (0, _) => {}
        (_, spawn) => out.push(spawn(3)),
    }
    if let Some(spawn) = Some(|x: u32| x + 4) {
        out.push(spawn(4));
    }
    for spawn in [|x: u32| x + 5, |x: u32| x * 5] {
        out.push(spawn(5));
    }
    let mut pending = vec![|x: u32| x + 6];
    while let Some(spawn) = pending.pop() {
        out.push(spawn(6));
    }
    {
        fn spawn(x: u32) -> u32 {
            x + 7
        }
        out.push(spawn(7));
    }
    // No binding hides it here: tokio's, rewritten.
    out.push(spawn(async { 7 }).await.unwrap());
    out
}

#[tracked]
async fn through_tokio_paths() -> u32 {
    use tokio as tk;
    use tokio::spawn;
    let mut handles = vec![
        tk::spawn(async { 1 }),
        tk::task::spawn_blocking(|| 2),
        tokio::spawn::<_>(async { 3 }),
        r#spawn(async { 4 }),
    ];
    {
        use tokio::*;
        handles.push(task::spawn(async { 5 }));
    }
    let mut sum = 0;
    for handle in handles.drain(..) {
        sum += handle.await.unwrap();
    }
    sum
}

#[tracked]
async fn bound_in_macros() -> Vec<u32> {
    use tokio::spawn;
    let mut out = vec![{
        let spawn = |x: u32| x + 1;
        spawn(1)
    }];
    let (joined,) = tokio::join!(async {
        let spawn = |x: u32| x * 2;
        spawn(2)
    });
    out.push(joined);
    {
        #[allow(non_camel_case_types)]
        struct spawn(u32);
        out.push(spawn(3).0);
    }
    // A closure's parameter hides it in `vec!`'s repeated element too.
    #[allow(clippy::useless_vec)] // `vec!` is what is tested
    let calls = vec![|spawn: fn(u32) -> u32| spawn(5); 2];
    out.push(calls[1](|x| x + 1));
    out.push(spawn(async { 4 }).await.unwrap());
    out
}

/// A test double for tokio's spawn, as a service swaps it in under
/// `#[cfg(test)]`: its calls are not `#[tracked]`'s to rewrite.
mod mock {
    pub(crate) fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // tracked: allow(untracked-spawn) -- a stand-in for tokio's, which the tests must tell apart
        tokio::spawn(future)
    }
}

// Integration tests build with `cfg(test)`: below, the `cfg(not(test))`
// statements are absent.
#[tracked]
async fn chosen_by_cfg() -> u32 {
    // Tokio's under `test`: rewritten.
    let a = {
        #[cfg(not(test))]
        use mock::spawn;
        #[cfg(test)]
        use tokio::spawn;
        spawn(async { 1 })
    };
    // The mock's under `test`: left alone, whatever the order.
    let b = {
        #[cfg(test)]
        use mock::spawn;
        #[cfg(not(test))]
        use tokio::spawn;
        spawn(async { 2 })
    };
    use tokio::spawn;
    // A binding that only exists without `test` does not hide tokio's.
    #[cfg(not(test))]
    let spawn = mock::spawn;
    let c = spawn(async { 3 });
    // One that exists under `test` does.
    #[cfg(test)]
    let spawn = mock::spawn;
    let d = spawn(async { 4 });
    a.await.unwrap() + b.await.unwrap() + c.await.unwrap() + d.await.unwrap()
}

/// A spawn statement under `#[cfg]`, gone under `test`.
#[tracked]
async fn spawn_statement_under_cfg() -> u32 {
    #[cfg(not(test))]
    tokio::spawn(async { 1 });
    2
}

/// Spawns of one name, those before the last one cfg'd out, on their
/// statement: written, or applied by a `cfg_attr`.
#[tracked]
async fn numbered_past_cfg_out() -> u32 {
    #[cfg(any())]
    tokio::spawn(async { 100 });
    #[cfg_attr(test, cfg(any()))]
    let gone = tokio::spawn(async { 200 });
    let kept = tokio::spawn(async { 1 });
    #[cfg_attr(test, cfg(any()))]
    gone.await.unwrap();
    // Tokio's under `test`, in a statement that is never there.
    #[cfg(any())]
    let _never = {
        #[cfg(not(test))]
        use mock::spawn;
        #[cfg(test)]
        use tokio::spawn;
        spawn(async { 300 })
    };
    kept.await.unwrap()
}

/// Two handles, one of them only without `any()` (never).
struct Held {
    #[cfg(any())]
    gone: tokio::task::JoinHandle<u32>,
    kept: tokio::task::JoinHandle<u32>,
}

/// Spawns of one name in a match arm, an array element, a call argument,
/// a `vec!` element and a struct field, every other one cfg'd out.
#[tracked]
async fn numbered_past_cfg_out_parts(n: u32) -> u32 {
    let arm = match n {
        #[cfg(any())]
        0 => tokio::spawn(async { 100 }),
        _ => tokio::spawn(async { 1 }),
    };
    let [element] = [
        #[cfg(any())]
        tokio::spawn(async { 200 }),
        tokio::spawn(async { 2 }),
    ];
    let argument = std::convert::identity(
        #[cfg(any())]
        tokio::spawn(async { 300 }),
        tokio::spawn(async { 3 }),
    );
    let listed = vec![
        #[cfg(any())]
        tokio::spawn(async { 400 }),
        tokio::spawn(async { 4 }),
    ];
    let held = Held {
        #[cfg(any())]
        gone: tokio::spawn(async { 500 }),
        kept: tokio::spawn(async { 5 }),
    };
    let [listed] = <[_; 1]>::try_from(listed).expect("one handle");
    let handles = [arm, element, argument, listed, held.kept];
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    sum
}

type Boxed = std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>>;
/// A spawn function passed around as a value, as a scheduler might.
type Spawner = fn(Boxed) -> tokio::task::JoinHandle<u32>;

// A `cfg` that a `cfg_attr` applies, and a `#[cfg]` on a closure's
// parameter, count as a `#[cfg]` on the statement does: below, those that
// leave a statement or parameter out under `test` (`cfg_attr(test, …)`),
// and those that keep it in (`cfg_attr(not(test), …)` does nothing then).
#[tracked]
async fn chosen_by_cfg_attr() -> u32 {
    // Tokio's under `test`: rewritten.
    let a = {
        #[cfg_attr(test, cfg(not(test)))]
        use mock::spawn;
        #[cfg_attr(not(test), cfg(any()))]
        use tokio::spawn;
        spawn(async { 1 })
    };
    use tokio::spawn;
    // A binding left out under `test` does not hide tokio's...
    #[cfg_attr(test, cfg(not(test)))]
    let spawn = mock::spawn;
    let b = spawn(async { 2 });
    // ...nor does a closure's parameter.
    let spawn_three = |#[cfg(not(test))] spawn: Spawner| spawn(Box::pin(async { 3 }));
    let c = spawn_three(
        #[cfg(not(test))]
        mock::spawn,
    );
    // One kept in does.
    #[cfg_attr(not(test), cfg(any()))]
    let spawn = mock::spawn;
    let d = spawn(async { 4 });
    a.await.unwrap() + b.await.unwrap() + c.await.unwrap() + d.await.unwrap()
}

#[tracked]
async fn bound_in_macro_patterns() -> u32 {
    use tokio::spawn;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Spawner>();
    tx.send(mock::spawn).unwrap();
    let mut handles = Vec::new();
    // A pattern's binding hides tokio's in its handler...
    tokio::select! {
        Some(spawn) = rx.recv() => handles.push(spawn(Box::pin(async { 1 }))),
        else => {}
    }
    let spawner: Option<Spawner> = Some(mock::spawn);
    // ...and in `matches!`'s guard.
    let spawned = matches!(spawner, Some(spawn) if {
        handles.push(spawn(Box::pin(async { 2 })));
        true
    });
    assert!(spawned);
    let mut sum = 0;
    // Elsewhere, it is tokio's.
    tokio::select! {
        biased;
        Ok(three) = spawn(async { 3 }), if handles.len() == 2 => sum += three,
    }
    for handle in handles {
        sum += handle.await.unwrap();
    }
    sum
}

/// Spawns in a macro's arguments searched token by token (`vec![x; n]`
/// does not parse as expressions between commas), every other one cfg'd
/// out by a `#[cfg]` written among those tokens.
#[tracked]
async fn cfg_out_in_scanned_tokens() -> u32 {
    let sums: Vec<u32> = vec![
        {
            #[cfg(any())]
            tokio::spawn(async { 100 });
            let (kept,) = (
                #[cfg(any())]
                tokio::spawn(async { 200 }),
                tokio::spawn(async { 1 }),
            );
            kept.await.unwrap()
        };
        2
    ];
    sums.iter().sum()
}

/// A stand-in for the `futures` crate's `select!` (not a dependency here),
/// taking its syntax, which is all `#[tracked]` looks at: branches
/// `pattern = future => handler`, `default => handler` and
/// `complete => handler`, in any order. It awaits the branches' futures in
/// order and runs the handler of the first whose output matches its
/// pattern, else `default`'s; `complete`'s never runs. Handlers are `()`.
mod futures {
    macro_rules! select {
        (@arms $done:lifetime) => {};
        (@arms $done:lifetime default => $handler:expr $(, $($rest:tt)*)?) => {
            $crate::futures::select!(@arms $done $($($rest)*)?);
            $handler;
        };
        (@arms $done:lifetime complete => $handler:expr $(, $($rest:tt)*)?) => {
            $crate::futures::select!(@arms $done $($($rest)*)?);
        };
        (@arms $done:lifetime $pat:pat = $future:expr => $handler:expr $(, $($rest:tt)*)?) => {
            if let $pat = $future.await {
                $handler;
                break $done;
            }
            $crate::futures::select!(@arms $done $($($rest)*)?);
        };
        ($($arms:tt)*) => {
            'select: {
                $crate::futures::select!(@arms 'select $($arms)*);
            }
        };
    }
    pub(crate) use select;
    // Biased or not, the syntax is the same.
    pub(crate) use select as select_biased;
}

#[tracked]
async fn bound_in_futures_select() -> u32 {
    use tokio::spawn;
    let mut handles = Vec::new();
    // With `default` and `complete` arms around it, a branch's binding
    // hides tokio's in its handler...
    futures::select! {
        default => {},
        Some(spawn) = std::future::ready(Some(mock::spawn as Spawner)) =>
            handles.push(spawn(Box::pin(async { 1 }))),
        complete => {},
    }
    // ...and not in another branch's, nor in `default`'s or `complete`'s,
    // where it is tokio's; in `select_biased!` too.
    futures::select_biased! {
        Some(spawn) = std::future::ready(None::<Spawner>) => handles.push(spawn(Box::pin(async { 0 }))),
        Some(two) = std::future::ready(None::<u32>) => handles.push(spawn(async move { two })),
        default => handles.push(spawn(async { 2 })),
        complete => handles.push(spawn(async { 0 })),
    }
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    sum
}

#[tracked]
async fn hidden_by_glob() -> u32 {
    use tokio::spawn;
    let own = {
        // May bring in a `spawn` of its own, which hides tokio's: it does.
        use mock::*;
        spawn(async { 1 })
    };
    own.await.unwrap() + spawn(async { 2 }).await.unwrap()
}

/// Runs `future` in a fresh tracker and returns the names of the children
/// of the unit `#[tracked]` fn `unit` once all have finished.
async fn children_of<F>(unit: &str, future: F) -> Vec<String>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (tracker, _) = run_in_tracker(future).await;
    let name = format!("{}::{unit}", module_path!());
    let finished = tracker.finished(&Query::new());
    let unit = finished.iter().find(|t| t.name == name).expect("the unit");
    let children = tracker.finished(&Query::new().parent(unit.id));
    children.into_iter().map(|t| t.name.into_owned()).collect()
}

#[tokio::test]
async fn a_use_in_a_block_counts_in_that_block_only() {
    let children = children_of("nested_use", async {
        assert_eq!(nested_use().await, (1, "own"));
    })
    .await;
    assert_eq!(children, ["macro_scopes::nested_use::async_block"]);
}

#[tokio::test]
async fn a_local_binding_hides_an_imported_spawn_fn() {
    let children = children_of("shadowed", async {
        assert_eq!(shadowed().await, [2, 20, 6, 8, 10, 25, 12, 14, 7]);
    })
    .await;
    assert_eq!(children, ["macro_scopes::shadowed::async_block"]);
}

#[tokio::test]
async fn every_path_to_tokio_is_rewritten() {
    let children = children_of("through_tokio_paths", async {
        assert_eq!(through_tokio_paths().await, 15);
    })
    .await;
    assert_eq!(children.len(), 5, "{children:?}");
}

#[tokio::test]
async fn bindings_in_macro_arguments_and_items_hide_an_import() {
    let children = children_of("bound_in_macros", async {
        assert_eq!(bound_in_macros().await, [2, 4, 3, 6, 4]);
    })
    .await;
    assert_eq!(children, ["macro_scopes::bound_in_macros::async_block"]);
}

#[tokio::test]
async fn a_cfg_on_a_use_or_let_counts_under_that_cfg_only() {
    let mut children = children_of("chosen_by_cfg", async {
        assert_eq!(chosen_by_cfg().await, 10);
    })
    .await;
    children.sort();
    // A spawn is numbered whether or not it is tokio's under this cfg, so
    // each keeps its name under every cfg: `b` is `#2`.
    assert_eq!(
        children,
        [
            "macro_scopes::chosen_by_cfg::async_block",
            "macro_scopes::chosen_by_cfg::async_block#3"
        ]
    );
    let sites = tracked::catalogue().in_module(module_path!());
    let spawns = sites
        .iter()
        .filter(|site| site.name().contains("chosen_by_cfg::"));
    assert_eq!(spawns.count(), 2, "a site only where it is tokio's spawn");
}

#[tokio::test]
async fn a_cfg_on_a_spawn_statement_stays_on_it() {
    let children = children_of("spawn_statement_under_cfg", async {
        assert_eq!(spawn_statement_under_cfg().await, 2);
    })
    .await;
    assert!(children.is_empty(), "{children:?}");
}

/// The names of the catalogue's spawn sites of the `#[tracked]` fn `unit`.
fn spawn_sites_of(unit: &str) -> Vec<&'static str> {
    let sites = tracked::catalogue().in_module(module_path!());
    let prefix = format!("{}::{unit}::", module_path!());
    let mut names: Vec<&'static str> = sites
        .iter()
        .map(|site| site.name())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn a_cfg_d_out_spawn_statement_has_no_site_and_moves_no_number() {
    let children = children_of("numbered_past_cfg_out", async {
        assert_eq!(numbered_past_cfg_out().await, 1);
    })
    .await;
    // The third spawn of its name is `#3` in every build.
    let kept = ["macro_scopes::numbered_past_cfg_out::async_block#3"];
    assert_eq!(children, kept);
    assert_eq!(spawn_sites_of("numbered_past_cfg_out"), kept);
}

#[tokio::test]
async fn a_cfg_d_out_arm_element_argument_or_field_spawn_has_no_site_and_moves_no_number() {
    let mut children = children_of("numbered_past_cfg_out_parts", async {
        assert_eq!(numbered_past_cfg_out_parts(0).await, 15);
    })
    .await;
    children.sort();
    let mut kept = [
        "macro_scopes::numbered_past_cfg_out_parts::async_block#2",
        "macro_scopes::numbered_past_cfg_out_parts::async_block#4",
        "macro_scopes::numbered_past_cfg_out_parts::async_block#6",
        "macro_scopes::numbered_past_cfg_out_parts::async_block#8",
        "macro_scopes::numbered_past_cfg_out_parts::async_block#10",
    ];
    kept.sort_unstable();
    assert_eq!(children, kept);
    assert_eq!(spawn_sites_of("numbered_past_cfg_out_parts"), kept);
}

#[tokio::test]
async fn a_cfg_applied_by_cfg_attr_or_on_a_closure_parameter_counts_under_that_cfg_only() {
    let mut children = children_of("chosen_by_cfg_attr", async {
        assert_eq!(chosen_by_cfg_attr().await, 10);
    })
    .await;
    children.sort();
    assert_eq!(
        children,
        [
            "macro_scopes::chosen_by_cfg_attr::async_block",
            "macro_scopes::chosen_by_cfg_attr::async_block#2",
            "macro_scopes::chosen_by_cfg_attr::async_block#3"
        ]
    );
}

#[tokio::test]
async fn bindings_in_select_and_matches_patterns_hide_an_import() {
    let children = children_of("bound_in_macro_patterns", async {
        assert_eq!(bound_in_macro_patterns().await, 6);
    })
    .await;
    assert_eq!(
        children,
        ["macro_scopes::bound_in_macro_patterns::async_block"]
    );
}

#[tokio::test]
async fn a_cfg_d_out_spawn_in_tokens_searched_one_by_one_has_no_site() {
    let children = children_of("cfg_out_in_scanned_tokens", async {
        assert_eq!(cfg_out_in_scanned_tokens().await, 2);
    })
    .await;
    let kept = ["macro_scopes::cfg_out_in_scanned_tokens::async_block#3"];
    assert_eq!(children, kept);
    assert_eq!(spawn_sites_of("cfg_out_in_scanned_tokens"), kept);
}

#[tokio::test]
async fn bindings_in_futures_select_with_default_and_complete_arms_hide_an_import() {
    let children = children_of("bound_in_futures_select", async {
        assert_eq!(bound_in_futures_select().await, 3);
    })
    .await;
    assert_eq!(
        children,
        ["macro_scopes::bound_in_futures_select::async_block#2"]
    );
    // Every spawn tokio's where it is written declares its site, run or not.
    assert_eq!(
        spawn_sites_of("bound_in_futures_select"),
        [
            "macro_scopes::bound_in_futures_select::async_block",
            "macro_scopes::bound_in_futures_select::async_block#2",
            "macro_scopes::bound_in_futures_select::async_block#3",
        ]
    );
}

#[tokio::test]
async fn a_glob_import_of_an_inner_block_hides_an_outer_import() {
    let children = children_of("hidden_by_glob", async {
        assert_eq!(hidden_by_glob().await, 3);
    })
    .await;
    assert_eq!(children, ["macro_scopes::hidden_by_glob::async_block"]);
}
