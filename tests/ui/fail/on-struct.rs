#[tracked::tracked]
struct Round {
    votes: u32,
}

fn main() {}
