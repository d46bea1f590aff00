//! What an annotated fn's future holds: its arguments once, all of them
//! until the body ends (as an `async fn`'s future does), with borrowed
//! arguments of every shape.

use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;
use tracked::tracked;

/// An argument that counts its drops.
struct Flag(Arc<AtomicUsize>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn plain_buffer(buffer: [u8; 1024]) -> usize {
    tokio::task::yield_now().await;
    buffer.len()
}

#[tracked]
async fn tracked_buffer(buffer: [u8; 1024]) -> usize {
    tokio::task::yield_now().await;
    buffer.len()
}

#[test]
fn an_annotated_fn_stores_its_arguments_no_more_often_than_the_plain_fn() {
    let plain = std::mem::size_of_val(&plain_buffer([0; 1024]));
    let tracked = std::mem::size_of_val(&tracked_buffer([0; 1024]));
    // The wrapper adds its site and state (tens of bytes); a second copy of
    // the argument, as an `async fn` around the body would hold, adds 1 KiB.
    assert!(
        tracked <= plain + 64,
        "tracked {tracked} bytes, plain {plain} bytes"
    );
}

#[tracked]
async fn holds_unused(
    _named: Flag,
    _: Flag,
    (used, _rest): (Flag, Flag),
    started: oneshot::Sender<()>,
    go: oneshot::Receiver<()>,
) -> usize {
    started.send(()).unwrap();
    go.await.unwrap();
    used.0.load(Ordering::SeqCst)
}

struct Peer {
    id: String,
    _flag: Flag,
}

impl Peer {
    /// Uses one field of `self`: the rest of `self` must not be dropped
    /// before the body ends.
    #[tracked]
    async fn into_id(self, started: oneshot::Sender<()>, go: oneshot::Receiver<()>) -> String {
        started.send(()).unwrap();
        go.await.unwrap();
        self.id
    }
}

#[tokio::test]
async fn arguments_the_body_does_not_use_live_until_the_body_ends() {
    let drops = Arc::new(AtomicUsize::new(0));
    let flag = || Flag(Arc::clone(&drops));
    let (started_tx, started) = oneshot::channel();
    let (go, go_rx) = oneshot::channel();
    let future = holds_unused(flag(), flag(), (flag(), flag()), started_tx, go_rx);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "nothing dropped at the call"
    );
    // tracked: allow(untracked-spawn) -- the annotated fn tracks itself; the test watches its arguments
    let handle = tokio::spawn(future);
    started.await.unwrap();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "nothing dropped while running"
    );
    go.send(()).unwrap();
    assert_eq!(handle.await.unwrap(), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 4, "all dropped at the end");

    let drops = Arc::new(AtomicUsize::new(0));
    let peer = Peer {
        id: "p1".to_owned(),
        _flag: Flag(Arc::clone(&drops)),
    };
    let (started_tx, started) = oneshot::channel();
    let (go, go_rx) = oneshot::channel();
    // tracked: allow(untracked-spawn) -- the annotated method tracks itself
    let handle = tokio::spawn(peer.into_id(started_tx, go_rx));
    started.await.unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0, "self is held whole");
    go.send(()).unwrap();
    assert_eq!(handle.await.unwrap(), "p1");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// An argument that logs its name when dropped.
struct Named(&'static str, Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Drop for Named {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

#[allow(unused_variables)]
async fn plain_order(a: Named, b: Named, c: Named) {
    tokio::task::yield_now().await;
    let _ = &b;
}

#[tracked]
async fn tracked_order(
    #[allow(unused_variables)] a: Named,
    b: Named,
    #[allow(unused_variables)] c: Named,
) {
    tokio::task::yield_now().await;
    let _ = &b;
}

async fn plain_all(a: Named, b: Named, c: Named) {
    tokio::task::yield_now().await;
    let _ = (&a, &b, &c);
}

#[tracked]
async fn tracked_all(a: Named, b: Named, c: Named) {
    tokio::task::yield_now().await;
    let _ = (&a, &b, &c);
}

/// The order `run` drops its three arguments in: run to the end, or
/// dropped after its first poll.
fn drop_order<F: Future<Output = ()>>(
    run: impl Fn(Named, Named, Named) -> F,
    to_the_end: bool,
) -> Vec<&'static str> {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let named = |name| Named(name, Arc::clone(&log));
    let mut future = Box::pin(run(named("a"), named("b"), named("c")));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending(), "yields once");
    if to_the_end {
        assert!(future.as_mut().poll(&mut cx).is_ready());
    }
    drop(future);
    let order = log.lock().unwrap().clone();
    order
}

/// Arguments are dropped last first, as an `async fn`'s are, whether the
/// body uses them or not, when it ends and when it is dropped part-way.
#[test]
fn arguments_are_dropped_in_the_order_an_async_fn_drops_them() {
    for to_the_end in [true, false] {
        let plain = drop_order(plain_order, to_the_end);
        assert_eq!(plain, ["c", "b", "a"]);
        assert_eq!(drop_order(tracked_order, to_the_end), plain);
        assert_eq!(
            drop_order(tracked_all, to_the_end),
            drop_order(plain_all, to_the_end)
        );
    }
}

#[tracked]
#[allow(
    elided_lifetimes_in_paths,
    reason = "a lifetime the macro cannot see must still be captured"
)]
async fn lengths(hidden: Cow<str>, elided: &str, named: &mut Vec<usize>) -> usize {
    tokio::task::yield_now().await;
    named.push(hidden.len());
    named.push(elided.len());
    named.iter().sum()
}

#[tracked]
async fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    tokio::task::yield_now().await;
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

struct Store<T> {
    items: Vec<T>,
}

impl<T> Store<T>
where
    T: Clone + Send + Sync,
{
    #[tracked(type = "Database")]
    async fn first_matching(&self, wanted: impl Fn(&T) -> bool) -> Option<&T> {
        tokio::task::yield_now().await;
        self.items.iter().find(|item| wanted(item))
    }

    #[tracked(type = "Database")]
    async fn push(&mut self, mut item: T, times: usize) -> usize {
        for _ in 1..times {
            self.items.push(item.clone());
        }
        item = item.clone();
        self.items.push(item);
        self.items.len()
    }
}

#[tokio::test]
async fn borrowed_arguments_of_every_shape_are_captured() {
    let mut seen = vec![1];
    assert_eq!(lengths(Cow::Borrowed("abc"), "de", &mut seen).await, 6);
    assert_eq!(seen, [1, 3, 2]);
    assert_eq!(longest("ab", "abc").await, "abc");

    let mut store = Store { items: vec![1, 2] };
    assert_eq!(store.push(3, 2).await, 4);
    assert_eq!(store.first_matching(|n| *n > 2).await, Some(&3));
}

trait Service {
    fn serve(&self, request: u32) -> impl Future<Output = u32> + Send;
}

struct Echo(u32);

impl Service for Echo {
    #[tracked(type = "Network")]
    async fn serve(&self, request: u32) -> u32 {
        tokio::task::yield_now().await;
        request + self.0
    }
}

#[tokio::test]
async fn a_trait_method_declared_to_return_a_send_future_can_be_annotated() {
    let echo = Arc::new(Echo(1));
    // tracked: allow(untracked-spawn) -- proves the annotated method's future is `Send + 'static`
    let handle = tokio::spawn(async move { echo.serve(41).await });
    assert_eq!(handle.await.unwrap(), 42);
}

// An `async fn` that does not await is what `clippy::unused_async` expects;
// the annotated fn's expansion is not one, yet the expectation holds
// (`cargo clippy --all-targets -- -D warnings` reports it otherwise).
#[tracked]
#[expect(clippy::unused_async, reason = "the trait-like signature is async")]
async fn answers() -> u32 {
    42
}

#[tracked]
#[expect(clippy::unused_async, clippy::cast_possible_truncation)]
async fn truncates(wide: u64) -> u32 {
    wide as u32
}

#[tracked]
#[expect(clippy::unused_async)]
#[tracing::instrument]
async fn instrumented_answer() -> u32 {
    42
}

#[tokio::test]
async fn fns_expecting_unused_async_run() {
    assert_eq!(answers().await, 42);
    assert_eq!(truncates(7).await, 7);
    assert_eq!(instrumented_answer().await, 42);
}

/// An argument named like an item of the body: `guard` the argument is
/// hidden there by `fn guard`, yet the future holds it until the body
/// ends, as an `async fn`'s does.
#[tracked]
async fn hidden_by_an_item(guard: Named, log: Arc<std::sync::Mutex<Vec<&'static str>>>) {
    fn guard() -> &'static str {
        "body runs"
    }
    tokio::task::yield_now().await;
    log.lock().unwrap().push(guard());
}

/// The same with a spawn fn imported in the body over an argument.
#[tracked]
#[allow(unused_variables)]
async fn hidden_by_an_import(spawn: fn(u32) -> u32) -> u32 {
    use tokio::spawn;
    spawn(async { 1 }).await.unwrap()
}

#[tokio::test]
async fn an_argument_hidden_by_an_item_of_the_body_lives_until_it_ends() {
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let future = hidden_by_an_item(Named("guard dropped", Arc::clone(&log)), Arc::clone(&log));
    log.lock().unwrap().push("future created");
    future.await;
    assert_eq!(
        *log.lock().unwrap(),
        ["future created", "body runs", "guard dropped"]
    );
    assert_eq!(hidden_by_an_import(|x| x).await, 1);
}
