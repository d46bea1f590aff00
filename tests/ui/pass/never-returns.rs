use tracked::tracked;

/// `!` is stable only as a fn's return type: the attribute keeps it
/// nameable in the future's output and in the body's inferred type.
#[tracked(type = "Network")]
async fn serve_forever(port: u16) -> ! {
    loop {
        let _ = tokio::spawn(async move { port }).await;
    }
}

/// Kept an `async fn` by an attribute that may be a macro.
#[tracked]
#[cfg_attr(all(), allow(unused_mut))]
async fn kept_async_forever() -> ! {
    loop {
        tokio::task::yield_now().await;
    }
}

#[tracked]
async fn diverges_through_a_call() -> ! {
    panic!("never returns")
}

async fn caller() -> u16 {
    if std::env::args().count() > 100 {
        serve_forever(1).await
    } else {
        0
    }
}

fn main() {
    let _ = caller();
    let _ = kept_async_forever();
    let _ = diverges_through_a_call();
    // tracked: allow(untracked-spawn) -- never called; checks the types only
    let _spawn = || tokio::spawn(serve_forever(2));
}
