#[derive(Debug)]
enum DbError {
    Timeout,
}

// `#[tracked]` would record this `Err` with its `Debug` text; `tracked::spawn`
// asks for an `Outcome`, which needs `Display`.
fn main() {
    drop(tracked::spawn("lookup", tracked::TaskType::DATABASE, async {
        Err::<(), DbError>(DbError::Timeout)
    }));
}
