// Borrow errors about an argument name it, as they do in the plain
// `async fn`: the body's async block is the user's, not the macro's.

#[tracked::tracked]
async fn moved(jobs: Vec<u32>) {
    drop(jobs);
    drop(jobs);
}

#[tracked::tracked]
async fn not_mut(count: u32) {
    count += 1;
    let _ = count;
}

struct Pool {
    size: u32,
}

impl Pool {
    #[tracked::tracked]
    async fn grow(&self) {
        self.size += 1;
    }
}

#[tracked::tracked]
async fn borrowed(name: String) -> &'static str {
    &name
}

fn main() {}
