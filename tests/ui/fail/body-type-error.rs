#[tracked::tracked]
async fn count_votes() -> u32 {
    let votes = "three";
    votes
}

fn main() {}
