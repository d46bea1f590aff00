use tracked::tracked;

async fn vote(round: u32) -> u32 {
    round
}

#[tracked(type = "Consensus")]
async fn run_round(round: u32) -> u32 {
    use tokio::spawn;
    use tokio::task::{self, spawn_local};

    // Kept as tokio's handle: annotated types and `abort` still work.
    let first: tokio::task::JoinHandle<u32> = tokio::spawn(vote(round));
    let second = ::tokio::task::spawn(vote(round));
    second.abort();
    let third = spawn(async move { vote(round).await });
    let blocking = task::spawn_blocking(move || round + 1);
    let spawn_later = |r| tokio::spawn(vote(r));
    let fourth = spawn_later(round);
    let local = async {
        let _ = spawn_local(async { 0u32 });
    };
    drop(local);

    fn nested() {
        // Not rewritten: nested items are not part of the annotated fn.
        let _ = tokio::spawn(async {});
    }
    let _ = nested;

    first.await.unwrap() + third.await.unwrap() + blocking.await.unwrap() + fourth.await.unwrap()
}

#[tracked]
async fn any_output() {
    struct NotAnOutcome;
    let _ = tokio::spawn(async { NotAnOutcome }).await;
    let _ = tokio::task::spawn_blocking(|| NotAnOutcome).await;
}

fn main() {
    let _ = run_round(1);
    let _ = any_output();
}
